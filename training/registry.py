"""MLflow Model Registry: register verified bundles, move the `champion` alias, roll back.

A version is registered only after its bundle passed parity and re-opened cleanly with serving's own loader,
and the alias moves last, so `models:/<task>@champion` never points at something half-written. Earlier
champions stay registered; `rollback` moves the alias back to the one before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.bundle import load_bundle
from serving.resolve import CHAMPION, DIGEST_TAG  # serving reads what registration writes
from training.alias_history import record_move
from training.config import Workspace
from training.export import export_bundle
from training.gate import METRIC, TOLERANCE, GateDecision, decide, log_decision
from training.tracking import SELECTION_SCORE, use_store

log = logging.getLogger(__name__)

PREVIOUS_TAG = "memoria.previous_champion"  # on a version: the version that was champion before it
ROLLED_BACK_TAG = "memoria.rolled_back"  # on a version the alias was rolled back from: never auto-promoted again
BUNDLES = "bundles"  # a run's bundles, one folder per bundle digest: re-publishing never overwrites a registered one
PARITY_METRIC = "export/parity_max_abs_diff"
QUANTIZATION_PREFIX = "quantization/"  # metrics of the int8-or-fp32 decision (training/quantize.py)
SERVED_TAG = "memoria.served_precision"  # on a sentiment run: "int8" or "fp32", the graph its bundle serves
REASON_TAG = "memoria.quantization_reason"


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
    served_precision: str = ""  # "int8" or "fp32" for a sentiment bundle (training/quantize.py), "" otherwise
    gate: str = ""  # the promotion gate's reason and scores (training/gate.py)


def champion(client: MlflowClient, task: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(task, CHAMPION)
    except MlflowException:
        return None


def score_of(client: MlflowClient, version: ModelVersion) -> float:
    return float(client.get_run(version.run_id).data.metrics.get(SELECTION_SCORE, float("-inf")))


def publish_run(ws: Workspace, run_id: str) -> PublishResult:
    """Export the run's model to a bundle, verify it, log it to the run, register it, promote it if better."""
    client = use_store(ws)
    run = client.get_run(run_id)
    task = run.data.tags.get("memoria.task")
    if task is None:
        raise ValueError(f"run {run_id} is not a memoria training run (no memoria.task tag)")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(client.download_artifacts(run_id, "model", tmp))
        report = export_bundle(model_dir, Path(tmp) / "bundle", run_id, run.data.metrics, ws)
        bundle = load_bundle(report.bundle_dir, task)  # exactly what serving will do
        artifact_path = f"{BUNDLES}/{bundle.short_digest}"
        client.log_artifacts(run_id, str(bundle.path), artifact_path)
    client.log_metric(run_id, PARITY_METRIC, report.parity["max_abs_diff"])
    if "quantization" in report.manifest:
        log_quantization(client, run_id, report.manifest["quantization"])
    version = register(client, task, run_id, f"{run.info.artifact_uri}/{artifact_path}", bundle.digest, bundle.manifest)
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
        tags=[RunTag(SERVED_TAG, section["served"]), RunTag(REASON_TAG, section["reason"][:5000])],
    )


def _promote_and_report(client: MlflowClient, task: str, version: ModelVersion, ws: Workspace) -> PublishResult:
    decision = gate_and_promote(client, task, version, ws)
    current = champion(client, task)
    run = client.get_run(version.run_id)
    return PublishResult(
        task=task,
        run_id=version.run_id,
        version=str(version.version),
        score=score_of(client, version),
        promoted=decision.promote,
        champion_version=str(current.version) if current else "",
        bundle_digest=version.tags.get(DIGEST_TAG, ""),
        parity_max_abs_diff=float(run.data.metrics.get(PARITY_METRIC, "nan")),
        served_precision=run.data.tags.get(SERVED_TAG, ""),
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
    lines = [f"**{tags.get('mlflow.runName', run.info.run_id)}** (preset `{tags.get('memoria.preset', '?')}`)"]
    architecture = manifest.get("architecture", {})
    if architecture.get("members"):
        lines.append(f"members: {', '.join(architecture['members'])}; {architecture.get('parameters', '?')} parameters")
    fingerprint = tags.get("memoria.data_fingerprint", "")
    lines.append(f"data: fingerprint `{fingerprint[:12] or 'unknown'}`")
    shown = [f"{key} {metrics[key]:.4f}" for key in HEADLINE_METRICS if key in metrics]
    if shown:
        lines.append("scores: " + ", ".join(shown))
    if manifest.get("quantization", {}).get("served"):
        lines.append(f"serves: {manifest['quantization']['served']}")
    commit = tags.get("memoria.git_commit", "unknown")[:12]
    lines.append(f"bundle sha256 `{digest[:12]}` from run `{run.info.run_id}`, commit `{commit}`")
    return "  \n".join(lines)  # markdown line breaks


def promote_if_better(client: MlflowClient, task: str, candidate: ModelVersion, ws: Workspace | None = None) -> bool:
    """Move `champion` to `candidate` if there is none yet or the like-for-like gate (training/gate.py) says it is
    better. A version that was rolled back never comes back by itself (only `promote --version N`, a deliberate
    override). The decision is logged on the candidate's run."""
    return gate_and_promote(client, task, candidate, ws).promote


def gate_and_promote(
    client: MlflowClient, task: str, candidate: ModelVersion, ws: Workspace | None = None
) -> GateDecision:
    """The gate's decision for `candidate` against the current champion, acted on: the alias moved if it says so."""
    if candidate.tags.get(ROLLED_BACK_TAG):
        log.info("%s version %s was rolled back: not promoted again automatically", task, candidate.version)
        reason = "rolled back earlier: only `promote --version` brings it back"
        return GateDecision(task, str(candidate.version), "", False, reason, "refused", METRIC[task], TOLERANCE[task])
    with promotion_lock(client, task):
        current = champion(client, task)
        decision = decide(client, task, candidate, current, ws)
        if decision.promote:
            promote(client, task, candidate.version, reason="promoted", decision=decision)
    if current is None or str(current.version) != str(candidate.version):
        log_decision(client, candidate.run_id, decision)
    if not decision.promote:
        return decision
    # Compare-and-set: the lock covers processes sharing a local store; against a remote tracking server another
    # gate may have written meanwhile. Whoever finds another champion after its own write gates against it once
    # more and takes the alias back if it is still the better one, so concurrent gates settle on the best.
    after = champion(client, task)
    if after is not None and str(after.version) != str(candidate.version):
        again = decide(client, task, candidate, after, ws)
        if again.promote:
            promote(client, task, candidate.version, reason="promoted", decision=again)
    return decision


@contextlib.contextmanager
def promotion_lock(client: MlflowClient, task: str) -> Iterator[None]:
    """An exclusive lock per task, held from reading the champion to moving it: two trainings that finish
    together cannot both read the old champion and leave the worse of them promoted. A file lock beside a local
    SQLite store; with a remote tracking server, the compare-and-set in promote_if_better is what remains."""
    uri = getattr(getattr(client, "_tracking_client", None), "tracking_uri", "")
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri.removeprefix("sqlite:///")).parent / f".promotion-{task}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def promote(
    client: MlflowClient, task: str, version: str, reason: str = "forced", decision: GateDecision | None = None
) -> None:
    """Move `champion` to `version` and record the move (`forced`: a person chose it; clears a rollback mark;
    `decision`: the gate's, whose scores go into the record)."""
    current = champion(client, task)
    version = str(version)
    if current is not None and str(current.version) != version:
        client.set_model_version_tag(task, version, PREVIOUS_TAG, str(current.version))
    client.set_registered_model_alias(task, CHAMPION, version)
    if reason == "forced" and ROLLED_BACK_TAG in client.get_model_version(task, version).tags:
        client.delete_model_version_tag(task, version, ROLLED_BACK_TAG)
    _record(client, task, current, version, reason, decision)


def rollback(client: MlflowClient, task: str) -> str:
    """Move `champion` back to the version it replaced; returns that version. The version rolled back from is
    marked, so a later `make export` or training cannot promote it again by itself."""
    current = champion(client, task)
    if current is None:
        raise ValueError(f"{task} has no champion to roll back")
    previous = current.tags.get(PREVIOUS_TAG)
    if not previous:
        raise ValueError(f"{task} version {current.version} replaced no earlier champion")
    client.set_model_version_tag(task, str(current.version), ROLLED_BACK_TAG, "true")
    client.set_registered_model_alias(task, CHAMPION, previous)
    _record(client, task, current, previous, "rolled back")
    return previous


def _record(
    client: MlflowClient,
    task: str,
    current: ModelVersion | None,
    to_version: str,
    reason: str,
    decision: GateDecision | None = None,
) -> None:
    from_version = str(current.version) if current is not None else ""
    if from_version == to_version:
        return
    target = client.get_model_version(task, to_version)
    record_move(
        client,
        task,
        from_version,
        to_version,
        reason,
        score_of(client, current) if current is not None else None,
        score_of(client, target),
        decision,
    )


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


def export_best(ws: Workspace, task: str) -> PublishResult:
    """`make export`: publish the experiment's best run (or just re-check promotion if already registered)."""
    client = use_store(ws)
    run_id = best_run_id(client, task)
    existing = registered_version_of(client, task, run_id)
    if existing is None:
        return publish_run(ws, run_id)
    return _promote_and_report(client, task, existing, ws)
