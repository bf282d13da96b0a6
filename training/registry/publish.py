"""MLflow Model Registry: a run's model -> verified bundle -> registered version -> the gate (promotion.py).

A version is registered only after its bundle passed parity and re-opened cleanly with serving's own loader
(serving/contract/bundle.py), and only then may the alias move.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.contract.bundle import load_bundle
from serving.contract.names import (
    DATA_FINGERPRINT_TAG,
    DIGEST_TAG,
    GIT_COMMIT_TAG,
    PRESET_TAG,
    QUANTIZATION_REASON_TAG,
    SERVED_PRECISION_TAG,
    TASK_TAG,
)
from training.config import Workspace
from training.export.bundle import export_bundle
from training.model_folder import read_model_folder
from training.registry.promotion import champion, gate_and_promote, score_of
from training.task_spec import TaskSpec
from training.tracking.store import SELECTION_SCORE, use_store

log = logging.getLogger(__name__)

BUNDLES = "bundles"  # a run's bundles, one folder per bundle digest: re-publishing never overwrites a registered one
PARITY_METRIC = "export/parity_max_abs_diff"
QUANTIZATION_PREFIX = "quantization/"  # metrics of the int8-or-fp32 decision (training/export/quantize.py)


@dataclass(frozen=True)
class PublishResult:
    task: str
    run_id: str
    version: str
    score: float
    promoted: bool
    champion_version: str
    bundle_digest: str
    parity_max_abs_diff: float
    served_precision: str = ""  # "int8" or "fp32" for a sentiment bundle (training/export/quantize.py), "" otherwise
    gate: str = ""  # the promotion gate's reason and scores (training/registry/gate.py)


def publish_run(ws: Workspace, run_id: str, task: TaskSpec) -> PublishResult:
    """Export the run's model to a bundle, verify it, log it to the run, register it, promote it if better."""
    client = use_store(ws)
    run = client.get_run(run_id)
    if run.data.tags.get(TASK_TAG) != task.name:
        raise ValueError(f"run {run_id} is not a memoria {task.name} training run (its {TASK_TAG} tag)")
    with tempfile.TemporaryDirectory() as tmp:
        model = read_model_folder(Path(client.download_artifacts(run_id, "model", tmp)), task.config)
        report = export_bundle(task, model, Path(tmp) / "bundle", run_id, run.data.metrics, ws)
        bundle = load_bundle(report.bundle_dir, task.name)  # exactly what serving will do
        artifact_path = f"{BUNDLES}/{bundle.short_digest}"
        client.log_artifacts(run_id, str(bundle.path), artifact_path)
    client.log_metric(run_id, PARITY_METRIC, report.parity["max_abs_diff"])
    if "quantization" in report.manifest:
        log_quantization(client, run_id, report.manifest["quantization"])
    source = f"{run.info.artifact_uri}/{artifact_path}"
    version = register(client, task.name, run_id, source, bundle.digest, bundle.manifest)
    return _promote_and_report(client, task, version, ws)


def log_quantization(client: MlflowClient, run_id: str, section: dict[str, Any]) -> None:
    """The bundle's int8-or-fp32 decision on the source run, where runs are compared: its numbers as
    `quantization/...` metrics (`served_int8` 1/0), the served graph and the reason as tags (tags, not params:
    params cannot change, and a re-publish of the run after the prepared data changed may decide otherwise)."""
    metrics = {"served_int8": 1.0 if section["served"] == "int8" else 0.0}
    for key, value in section.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[key] = float(value)
    for batch, row in section.get("latency_one_thread", {}).items():
        metrics.update({f"{key}_{batch}": float(value) for key, value in row.items()})
    stamp = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(f"{QUANTIZATION_PREFIX}{key}", value, stamp, 0) for key, value in sorted(metrics.items())],
        tags=[
            RunTag(SERVED_PRECISION_TAG, section["served"]),
            RunTag(QUANTIZATION_REASON_TAG, section["reason"][:5000]),
        ],
    )


def _promote_and_report(client: MlflowClient, task: TaskSpec, version: ModelVersion, ws: Workspace) -> PublishResult:
    decision = gate_and_promote(client, task, version, ws)
    current = champion(client, task.name)
    run = client.get_run(version.run_id)
    return PublishResult(
        task=task.name,
        run_id=version.run_id,
        version=str(version.version),
        score=score_of(client, version),
        promoted=decision.promote,
        champion_version=str(current.version) if current else "",
        bundle_digest=version.tags.get(DIGEST_TAG, ""),
        parity_max_abs_diff=float(run.data.metrics.get(PARITY_METRIC, "nan")),
        served_precision=run.data.tags.get(SERVED_PRECISION_TAG, ""),
        gate=decision.summary(),
    )


def register(
    client: MlflowClient, task: str, run_id: str, source: str, digest: str, manifest: dict[str, Any] | None = None
) -> ModelVersion:
    try:
        client.get_registered_model(task)
    except MlflowException:
        client.create_registered_model(task, description=f"memoria {task} model bundles (ONNX + tokenizer)")
    version = client.create_model_version(
        name=task,
        source=source,
        run_id=run_id,
        tags={DIGEST_TAG: digest},
        description=version_description(client.get_run(run_id), digest, manifest or {}),
    )
    log.info("registered %s version %s", task, version.version)
    return version


HEADLINE_METRICS = ("selection_score", "test/macro_f1", "test/accuracy", "test/bleu", "test/chrf")


def version_description(run: Any, digest: str, manifest: dict[str, Any]) -> str:
    """The model card in short, shown beside the version in the MLflow UI: what was trained, on which data, how well,
    what the bundle serves, and where it came from."""
    tags, metrics = run.data.tags, run.data.metrics
    lines = [f"**{tags.get('mlflow.runName', run.info.run_id)}** (preset `{tags.get(PRESET_TAG, '?')}`)"]
    architecture = manifest.get("architecture", {})
    if architecture.get("members"):
        lines.append(f"members: {', '.join(architecture['members'])}; {architecture.get('parameters', '?')} parameters")
    fingerprint = tags.get(DATA_FINGERPRINT_TAG, "")
    lines.append(f"data: fingerprint `{fingerprint[:12] or 'unknown'}`")
    shown = [f"{key} {metrics[key]:.4f}" for key in HEADLINE_METRICS if key in metrics]
    if shown:
        lines.append("scores: " + ", ".join(shown))
    if manifest.get("quantization", {}).get("served"):
        lines.append(f"serves: {manifest['quantization']['served']}")
    commit = tags.get(GIT_COMMIT_TAG, "unknown")[:12]
    lines.append(f"bundle sha256 `{digest[:12]}` from run `{run.info.run_id}`, commit `{commit}`")
    return "  \n".join(lines)  # markdown line breaks


def best_run_id(client: MlflowClient, task: str) -> str:
    """The finished run of the task's experiment with the highest selection score."""
    exp = client.get_experiment_by_name(task)
    if exp is None:
        raise ValueError(f"no {task} experiment yet: train first (make train TASK={task})")
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"attributes.status = 'FINISHED' and metrics.{SELECTION_SCORE} > -1",
        order_by=[f"metrics.{SELECTION_SCORE} DESC"],
        max_results=1,
    )
    if not runs:
        raise ValueError(f"no finished {task} run with a {SELECTION_SCORE} metric")
    return runs[0].info.run_id


def registered_version_of(client: MlflowClient, task: str, run_id: str) -> ModelVersion | None:
    for version in client.search_model_versions(f"name = '{task}' and run_id = '{run_id}'"):
        return version
    return None


def export_best(ws: Workspace, task: TaskSpec) -> PublishResult:
    """`make export`: publish the experiment's best run (or just re-check promotion if already registered)."""
    client = use_store(ws)
    run_id = best_run_id(client, task.name)
    existing = registered_version_of(client, task.name, run_id)
    if existing is None:
        return publish_run(ws, run_id, task)
    return _promote_and_report(client, task, existing, ws)
