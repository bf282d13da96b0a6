"""Who is champion, and moving the alias: through the gate, by hand, or back (rollback); every move recorded.

The alias moves last, after the bundle was verified and registered, so `models:/<task>@champion` never points at
something half-written. Earlier champions stay registered; `rollback` moves the alias back to the one before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.contract.names import CHAMPION, PREVIOUS_TAG, ROLLED_BACK_TAG
from training.config import Workspace
from training.registry.alias_history import record_move
from training.registry.gate import GateDecision, decide, log_decision
from training.task_spec import TaskSpec
from training.tracking.store import SELECTION_SCORE

log = logging.getLogger(__name__)


def champion(client: MlflowClient, task: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(task, CHAMPION)
    except MlflowException:
        return None


def score_of(client: MlflowClient, version: ModelVersion) -> float:
    return float(client.get_run(version.run_id).data.metrics.get(SELECTION_SCORE, float("-inf")))


def promote_if_better(
    client: MlflowClient, task: TaskSpec, candidate: ModelVersion, ws: Workspace | None = None
) -> bool:
    """Move `champion` to `candidate` if there is none yet or the like-for-like gate (training/registry/gate.py) says it
    is
    better. A version that was rolled back never comes back by itself (only `promote --version N`, a deliberate
    override). The decision is logged on the candidate's run."""
    return gate_and_promote(client, task, candidate, ws).promote


def gate_and_promote(
    client: MlflowClient, task: TaskSpec, candidate: ModelVersion, ws: Workspace | None = None
) -> GateDecision:
    """The gate's decision for `candidate` against the current champion, acted on: the alias moved if it says so."""
    name = task.name
    if candidate.tags.get(ROLLED_BACK_TAG):
        log.info("%s version %s was rolled back: not promoted again automatically", name, candidate.version)
        reason = "rolled back earlier: only `promote --version` brings it back"
        return GateDecision(name, str(candidate.version), "", False, reason, "refused", task.metric, task.tolerance)
    with promotion_lock(client, name):
        current = champion(client, name)
        decision = decide(client, task, candidate, current, ws)
        if decision.promote:
            promote(client, name, candidate.version, reason="promoted", decision=decision)
    if current is None or str(current.version) != str(candidate.version):
        log_decision(client, candidate.run_id, decision)
    if not decision.promote:
        return decision
    # Compare-and-set: the lock covers processes sharing a local store; against a remote tracking server another
    # gate may have written meanwhile. Whoever finds another champion after its own write gates against it once
    # more and takes the alias back if it is still the better one, so concurrent gates settle on the best.
    after = champion(client, name)
    if after is not None and str(after.version) != str(candidate.version):
        again = decide(client, task, candidate, after, ws)
        if again.promote:
            promote(client, name, candidate.version, reason="promoted", decision=again)
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
