"""`train(cfg, ws) -> TrainResult`: one MLflow run per call, the same skeleton for every task.

The task-specific parts (data, tokenizers, model, evaluation, plots) come from a recipe in training/recipes/;
this file owns what must be identical everywhere: seeding, the tracked run, the Trainer with clipping, early
stopping and a wall-clock cap, restoring the best epoch, and saving what export needs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from training.config import TaskConfig, Workspace
from training.tracking import SELECTION_SCORE, start_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment: str
    metrics: dict[str, float]
    seconds: float


class Recipe(Protocol):
    """What a task supplies to `train`."""

    monitor: str  # validation metric that picks the best epoch (higher is better)

    def prepare(self) -> None: ...
    def build(self, workdir: Path) -> tuple[L.LightningModule, Any, Any]: ...  # module, train, val loaders
    def evaluate(self, module: L.LightningModule, trainer: L.Trainer, workdir: Path) -> dict[str, float]: ...
    def save_model(self, module: L.LightningModule, out_dir: Path) -> None: ...


def recipe_for(cfg: TaskConfig, ws: Workspace, progress: bool) -> Recipe:
    if cfg.task == "sentiment":
        from training.recipes.sentiment import SentimentRecipe

        return SentimentRecipe(cfg, ws, progress)
    from training.recipes.translation import TranslationRecipe

    return TranslationRecipe(cfg, ws, progress)


def run_name(cfg: TaskConfig) -> str:
    cell = cfg.model.cell if cfg.task == "sentiment" else f"{cfg.model.encoder.cell}-{cfg.model.decoder_cell}"
    return f"{cfg.task}-{cell}-{cfg.preset}"


def train(cfg: TaskConfig, ws: Workspace, progress: bool = True, tags: dict[str, str] | None = None) -> TrainResult:
    """Train one model, log everything to MLflow, return the run id and final metrics. `tags` are added to the
    run's (a study names its variant with them)."""
    started = time.time()
    L.seed_everything(cfg.optim.seed, workers=True, verbose=False)
    recipe = recipe_for(cfg, ws, progress)
    recipe.prepare()
    tags = {"memoria.task": cfg.task, "memoria.preset": cfg.preset, **(tags or {})}
    with start_run(ws, cfg.task, run_name(cfg), cfg, tags) as run, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        module, train_loader, val_loader = recipe.build(workdir)
        trainer = make_trainer(cfg, ws, run.info.run_id, recipe.monitor, workdir / "checkpoints", progress)
        trainer.fit(module, train_loader, val_loader)
        best = _restore_best(trainer, module)
        metrics = {SELECTION_SCORE: best, "epochs_trained": float(trainer.current_epoch)}
        metrics.update(recipe.evaluate(module, trainer, workdir))
        metrics["train_seconds"] = time.time() - started
        mlflow.log_metrics(metrics)
        mlflow.log_param("selection_metric", recipe.monitor)
        model_dir = workdir / "model"
        recipe.save_model(module, model_dir)
        mlflow.log_artifacts(str(model_dir), "model")
        return TrainResult(run.info.run_id, cfg.task, metrics, time.time() - started)


class EpochLines(L.Callback):
    """One line per epoch when there is no progress bar (a log file, CI): metrics, epoch time, time left in the cap.
    Without it a run piped to a file is silent for many minutes."""

    def __init__(self, max_minutes: float) -> None:
        self.max_minutes = max_minutes
        self.started = self.epoch_started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # (Lightning 2 runs the epoch's validation before this hook, and the module's own validation-end hook after
        # the callbacks' one: here every metric of the epoch is in.)
        now = time.monotonic()
        shown = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/loss"))}
        parts = [f"{k}={v:.4g}" for k, v in sorted(shown.items()) if not k.endswith("_step")]
        left = f", {self.max_minutes - (now - self.started) / 60:.1f} min left in the cap" if self.max_minutes else ""
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {' '.join(parts)} "
            f"({now - self.epoch_started:.0f}s{left})",
            flush=True,
        )


def make_trainer(
    cfg: TaskConfig, ws: Workspace, run_id: str, monitor: str, ckpt_dir: Path, progress: bool
) -> L.Trainer:
    optim = cfg.optim
    callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, monitor=monitor, mode="max", save_top_k=1, filename="best"),
        EarlyStopping(monitor=monitor, mode="max", patience=optim.patience),
    ]
    if not progress:
        callbacks.append(EpochLines(optim.max_minutes))
    return L.Trainer(
        max_epochs=optim.max_epochs,
        max_time={"minutes": optim.max_minutes} if optim.max_minutes > 0 else None,
        limit_train_batches=optim.limit_train_batches,
        gradient_clip_val=optim.gradient_clip_norm,
        gradient_clip_algorithm="norm",
        logger=MLFlowLogger(experiment_name=cfg.task, tracking_uri=ws.tracking_uri, run_id=run_id),
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=optim.log_every_n_steps,
        accelerator="auto",
        devices=1,
        num_sanity_val_steps=0,
    )


def _restore_best(trainer: L.Trainer, module: L.LightningModule) -> float:
    """Load the best epoch's weights back into `module`; return its monitored score."""
    ckpt = trainer.checkpoint_callback
    if ckpt is None or not ckpt.best_model_path:
        raise RuntimeError("training produced no checkpoint (no validation epoch finished)")
    state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    return float(ckpt.best_model_score)
