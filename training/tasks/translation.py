"""The translation entry of the task table: a Spanish sentence -> English (encoder-decoder with attention).

Parts that pull in torch, Lightning, scikit-learn or onnxruntime are imported when called, so a command that only
reads the registry (history, status, rollback) starts without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import TranslationConfig, TranslationDataConfig, Workspace
from training.config.translation import translation_preset
from training.data.prepared import Prepared
from training.data.translation.corpus import find_prepared, pinned_artifacts, prepare_translation
from training.export.data_summary import translation_summary
from training.task_spec import TaskSpec


def _prepare(cfg: TranslationDataConfig, ws: Workspace, progress: bool) -> Prepared:
    return prepare_translation(cfg, ws, progress=progress)


def _run_name(cfg: TranslationConfig) -> str:
    return f"translation-{cfg.model.encoder.cell}-{cfg.model.decoder_cell}-{cfg.preset}"


def _recipe(task: TaskSpec, cfg: TranslationConfig, ws: Workspace, progress: bool) -> Any:
    from training.train.recipes.translation import TranslationRecipe

    return TranslationRecipe(task, cfg, ws, progress)


def _export(model: Any, out_dir: Path, ws: Workspace | None) -> tuple[dict[str, Any], dict[str, Any]]:
    from training.export.translation import export_translation

    return export_translation(model, out_dir, ws)


def _score(bundle: Any, rows: Any) -> float:
    from training.registry.scoring import translation_bleu

    return translation_bleu(bundle, rows)


def _peers(cfg: TranslationConfig, ws: Workspace) -> dict[str, dict[str, Any]]:
    from training.peers.apertium import run_apertium

    return {"apertium": run_apertium(cfg, ws)}


TRANSLATION = TaskSpec(
    name="translation",
    config=TranslationConfig,
    preset=translation_preset,
    input_field="source",
    metric="BLEU",
    tolerance=0.5,  # BLEU points
    score_bundle=_score,
    headline_metrics=("test/bleu", "test/chrf"),
    run_name=_run_name,
    prepare_data=_prepare,
    find_prepared=find_prepared,
    pinned_artifacts=lambda cfg: pinned_artifacts(cfg.data),
    summarize_data=translation_summary,
    recipe=_recipe,
    export_graphs=_export,
    run_peers=_peers,
)
