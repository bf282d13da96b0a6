"""A run's model folder -> a verified model bundle (ONNX graph(s) + tokenizers + manifest), for any task.

The task's exporter (the task table's `export_graphs`: training/export/sentiment.py, training/export/translation.py)
writes and parity-checks its graphs and returns the manifest's task part; this module adds what every bundle
carries (tokenizers, config, metrics, parity, the training data's summary, source run, versions) and writes the
manifest last (serving/contract/bundle.py), so a folder that failed half-way is never a bundle. The manifest is
signed with the team's key (training/export/signing.py): serving refuses a bundle it cannot trace to that key.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving.contract.bundle import write_manifest
from training.config import Workspace
from training.export.data_summary import data_summary
from training.export.drift_profile import write_drift_profile
from training.export.onnx import versions
from training.export.signing import signer
from training.model_folder import RunModel
from training.task_spec import TaskSpec


@dataclass(frozen=True)
class ExportReport:
    bundle_dir: Path
    manifest: dict[str, Any]
    parity: dict[str, Any]


def export_bundle(
    task: TaskSpec,
    model: RunModel,
    out_dir: Path,
    run_id: str,
    metrics: dict[str, float],
    ws: Workspace | None = None,
) -> ExportReport:
    """Build and verify a bundle in `out_dir` from a run's model folder (read once, config parsed once).

    `ws` locates the run's prepared data, on which a sentiment export scores its int8 candidate and every export
    summarises its training data; without it (or without the data) the bundle still exports and says why."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest, parity = task.export_graphs(model, out_dir, ws)
    for name in model.tokenizers.values():
        shutil.copy2(model.dir / name, out_dir / name)
    data = data_summary(task, model.config, ws, model.tokenizer(task.input_field), manifest["max_input_tokens"])
    # the vocabulary and reference distributions serving compares live inputs with (serving/drift.py)
    manifest.update(write_drift_profile(task, model.config, ws, out_dir, {**manifest, "tokenizers": model.tokenizers}))
    manifest.update(
        task=model.task,
        tokenizers=model.tokenizers,
        config=model.raw["config"],  # as the run logged it
        metrics={k: float(v) for k, v in metrics.items()},
        parity=parity,
        data=data,  # what the model card (GET /models) shows of the training data: training/export/data_summary.py
        source_run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
    )
    full = write_manifest(out_dir, manifest, sign=signer())
    return ExportReport(out_dir, full, parity)
