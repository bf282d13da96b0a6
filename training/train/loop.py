"""`train(cfg, ws) -> TrainResult`: one MLflow run per call, the same skeleton for every task.

The task-specific parts (data, tokenizers, model, evaluation, plots) come from a recipe in training/train/recipes/;
this file owns what must be identical everywhere: seeding, the tracked run, the Trainer with clipping, early
stopping and a wall-clock cap, restoring the best epoch, and saving what export needs.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import MLFlowLogger

from serving.contract.names import CUT_SHORT_TAG, PRESET_TAG, TASK_TAG
from training.config import TaskConfig, Workspace
from training.task_spec import TaskSpec
from training.tracking.store import SELECTION_SCORE, start_run
from training.train.distributed import check_node_launch, is_rank_zero, one_process_after
from training.train.moving_average import MovingAverage

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
    # `build` runs on every process of a multi-process run, where only rank 0 has an MLflow run: it logs nothing,
    # and rank 0 calls `log_inputs` after it to record what the run read
    def build(self, workdir: Path) -> tuple[L.LightningModule, Any, Any]: ...  # module, train, val loaders
    def log_inputs(self) -> None: ...
    def evaluate(self, module: L.LightningModule, trainer: L.Trainer, workdir: Path) -> dict[str, float]: ...
    def save_model(self, module: L.LightningModule, out_dir: Path) -> None: ...


def train(
    task: TaskSpec,
    cfg: TaskConfig,
    ws: Workspace,
    progress: bool = True,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> TrainResult | None:
    """Train one model of `task` (an entry of the task table), log everything to MLflow, return the run id and
    final metrics. `tags` are added to the
    run's (a study names its variant with them); `parent_run_id` nests the run under another (a sweep's parent).

    With `optim.devices` > 1 this runs in every process of a DDP run; only rank 0 tracks, evaluates and saves, and
    the others return None once the fit is over (see `_train_as_worker`)."""
    started = time.time()
    check_node_launch(cfg.optim.num_nodes)
    L.seed_everything(cfg.optim.seed, workers=True, verbose=False)
    recipe = task.recipe(task, cfg, ws, progress)
    recipe.prepare()
    if not is_rank_zero():
        return _train_as_worker(cfg, recipe, progress)
    tags = {TASK_TAG: task.name, PRESET_TAG: cfg.preset, **(tags or {})}
    with (
        start_run(ws, task.name, task.run_name(cfg), cfg, tags, parent_run_id) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        module, train_loader, val_loader = recipe.build(workdir)
        recipe.log_inputs()
        trainer = make_trainer(cfg, ws, run.info.run_id, recipe.monitor, workdir / "checkpoints", progress)
        device = trainer.strategy.root_device
        devices = f"{trainer.num_devices} device(s), optim.accelerator={cfg.optim.accelerator}"
        print(f"{task.name}: training on {device} ({devices})", flush=True)
        mlflow.set_tag("memoria.device", str(device))
        with one_process_after():
            trainer.fit(module, train_loader, val_loader)
        why = cut_short(trainer, cfg)
        if why:
            log.warning("RUN CUT SHORT: %s", why)
            print(f"WARNING: run cut short: {why}", flush=True)
        mlflow.set_tag(CUT_SHORT_TAG, "true" if why else "false")
        best = _restore_best(trainer, module)
        metrics = {SELECTION_SCORE: best, "epochs_trained": float(trainer.current_epoch)}
        metrics["train/steps"] = float(trainer.global_step)
        metrics.update(recipe.evaluate(module, _evaluation_trainer(trainer, cfg, progress), workdir))
        metrics["train_seconds"] = time.time() - started
        mlflow.log_metrics(metrics)
        mlflow.log_param("selection_metric", recipe.monitor)
        model_dir = workdir / "model"
        recipe.save_model(module, model_dir)
        mlflow.log_artifacts(str(model_dir), "model")
        return TrainResult(run.info.run_id, cfg.task, metrics, time.time() - started)


def _train_as_worker(cfg: TaskConfig, recipe: Recipe, progress: bool) -> None:
    """A process of a multi-process run other than rank 0: build the same module and loaders, train in step with
    the others, then leave. Rank 0 owns the MLflow run, the evaluation, the saved model and publishing.

    Why Lightning's `ddp` (the launcher re-runs this command once per extra process, with LOCAL_RANK set) and not
    `ddp_spawn` (which pickles the module into fresh processes): only `ddp` takes the same path under torchrun or
    SLURM, on several machines; `ddp_spawn` needs everything picklable (the BLEU sample holds a lambda) and brings
    back to the calling process only the weights, not the epoch count, best score or the module's own state. The
    price is this function: every rank runs the command, so what must happen once is kept to rank 0."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        module, train_loader, val_loader = recipe.build(workdir)
        # The checkpoint directory is rank 0's (ModelCheckpoint broadcasts it); only rank 0 writes there.
        trainer = make_trainer(cfg, None, None, recipe.monitor, workdir / "checkpoints", progress)
        with one_process_after():
            trainer.fit(module, train_loader, val_loader)
    return None


def _evaluation_trainer(trainer: L.Trainer, cfg: TaskConfig, progress: bool) -> L.Trainer:
    """The Trainer a recipe evaluates with. After a multi-process fit rank 0 evaluates alone, on one device: the
    fit's DDP Trainer would start a process group again and wait for workers that have left. It logs nothing
    itself (the recipe returns what it measures, and `train` logs that)."""
    if trainer.world_size == 1:
        return trainer
    return L.Trainer(
        accelerator=cfg.optim.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )


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
        if not trainer.is_global_zero:  # one line per epoch, not one per process
            return
        now = time.monotonic()
        shown = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/loss"))}
        parts = [f"{k}={v:.4g}" for k, v in sorted(shown.items()) if not k.endswith("_step")]
        left = f", {self.max_minutes - (now - self.started) / 60:.1f} min left in the cap" if self.max_minutes else ""
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {' '.join(parts)} "
            f"({now - self.epoch_started:.0f}s{left})",
            flush=True,
        )


class StepBudget(L.Callback):
    """Stop after `max_steps` optimiser steps the way early stopping does (`trainer.should_stop`), so Lightning
    validates the partial epoch and the best-epoch checkpoint can be that last one. Lightning's own `max_steps`
    ends the loop without that validation: the steps after the last full epoch would be trained and thrown away."""

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.max_steps:
            trainer.should_stop = True


def cut_short(trainer: L.Trainer, cfg: TaskConfig) -> str:
    """Why the wall-clock guard stopped this fit before its epochs or steps were done, or "" if it did not."""
    optim = cfg.optim
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None or optim.max_minutes <= 0 or (timer.time_remaining("train") or 0.0) > 0:
        return ""
    # Lightning counts an epoch the guard stopped halfway as done (current_epoch moves on), so a cut in the last
    # epoch would read as a finished run: count the steps the epochs hold instead.
    batches = trainer.num_training_batches
    if math.isfinite(batches):
        epochs_done = trainer.global_step >= optim.max_epochs * int(batches)
        epoch = trainer.global_step // max(int(batches), 1) + 1
    else:
        epochs_done = trainer.current_epoch >= optim.max_epochs
        epoch = trainer.current_epoch + 1
    steps_done = optim.max_steps > 0 and trainer.global_step >= optim.max_steps
    early_stopped = any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks)
    if epochs_done or steps_done or early_stopped:
        return ""
    planned = f"{optim.max_steps} steps" if optim.max_steps > 0 else f"{optim.max_epochs} epochs"
    return (
        f"the optim.max_minutes guard ({optim.max_minutes:g} min) stopped training after {trainer.global_step} steps "
        f"(epoch {epoch}) of the {planned} the preset asks for: this model depends on how busy "
        "the machine was; raise the guard or train on a quieter machine to get the preset's model"
    )


def make_trainer(
    cfg: TaskConfig, ws: Workspace | None, run_id: str | None, monitor: str, ckpt_dir: Path, progress: bool
) -> L.Trainer:
    """The fit's Trainer; logging to MLflow run `run_id` in `ws`'s store, or not at all without one (the ranks
    other than 0 of a multi-process run)."""
    optim = cfg.optim
    callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, monitor=monitor, mode="max", save_top_k=1, filename="best"),
        EarlyStopping(monitor=monitor, mode="max", patience=optim.patience),
    ]
    if optim.max_steps > 0:
        callbacks.append(StepBudget(optim.max_steps))
    if optim.ema_decay > 0:
        callbacks.append(MovingAverage(optim.ema_decay))
    if not progress:
        callbacks.append(EpochLines(optim.max_minutes))
    logger = MLFlowLogger(experiment_name=cfg.task, tracking_uri=ws.tracking_uri, run_id=run_id) if run_id else False
    trainer = L.Trainer(
        max_epochs=optim.max_epochs,
        max_time={"minutes": optim.max_minutes} if optim.max_minutes > 0 else None,
        limit_train_batches=optim.limit_train_batches,
        gradient_clip_val=optim.gradient_clip_norm,
        gradient_clip_algorithm="norm",
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=optim.log_every_n_steps,
        accelerator=optim.accelerator,
        devices=optim.devices,
        num_nodes=optim.num_nodes,
        strategy=optim.strategy,
        # Lightning cannot put its DistributedSampler into our length-bucketing batch sampler; that one shards
        # itself across processes (training/data/batching.py).
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )
    if trainer.is_global_zero != is_rank_zero():
        raise RuntimeError(
            f"Lightning makes this process rank {trainer.global_rank}, but its environment said otherwise before the "
            "Trainer existed (training/train/distributed.py): the MLflow run would be started on the wrong process"
        )
    return trainer


def _restore_best(trainer: L.Trainer, module: L.LightningModule) -> float:
    """Load the best epoch's weights back into `module`; return its monitored score."""
    ckpt = trainer.checkpoint_callback
    if ckpt is None or not ckpt.best_model_path:
        raise RuntimeError("training produced no checkpoint (no validation epoch finished)")
    state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    return float(ckpt.best_model_score)
