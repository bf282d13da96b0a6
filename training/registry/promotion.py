"""Who is champion, and moving the alias: through the gate, by hand, or back (rollback); every move recorded.

The alias moves last, after the bundle was verified and registered, so `models:/<task>@champion` never points at
something half-written. Earlier champions stay registered; `rollback` moves the alias back to the one before.
Every move happens under the task's promotion lock (promotion_lock.py) right after a re-read of the champion, so
gates that finish together, on one machine or many, settle on the better model (see `gate_and_promote`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.contract.names import CHAMPION, PREVIOUS_TAG, ROLLED_BACK_TAG
from training.config import Workspace
from training.registry.alias_history import record_move
from training.registry.gate import GateDecision, decide, log_decision
from training.registry.promotion_lock import LockTiming, promotion_lock
from training.task_spec import TaskSpec
from training.tracking.store import SELECTION_SCORE

log = logging.getLogger(__name__)

# Each extra round means another gate's promotion landed meanwhile, and a gate promotes at most once: N gates that
# finish together need up to N rounds for the last of them (six in test_registry.py's race, which once lost its best
# candidate to a bound of five). Twenty in a row is a runaway, not a race.
MAX_GATINGS = 20


def champion(client: MlflowClient, task: str) -> ModelVersion | None:
    """The champion, or None when there is none (no registered model, or no alias yet). Any other error (the
    server unreachable, a locked database) is raised: read as "no champion", it would let any candidate in."""
    try:
        return client.get_model_version_by_alias(task, CHAMPION)
    except MlflowException as e:
        if getattr(e, "error_code", "") in NOT_FOUND:
            return None
        raise


# what the registry answers for a missing registered model, and for a missing alias
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def score_of(client: MlflowClient, version: ModelVersion) -> float:
    return float(client.get_run(version.run_id).data.metrics.get(SELECTION_SCORE, float("-inf")))


def promote_if_better(
    client: MlflowClient,
    task: TaskSpec,
    candidate: ModelVersion,
    ws: Workspace | None = None,
    timing: LockTiming | None = None,
) -> bool:
    """Move `champion` to `candidate` if there is none yet or the like-for-like gate (training/registry/gate.py) says
    it is better. A version that was rolled back never comes back by itself (only `promote --version N`, a deliberate
    override). The decision is logged on the candidate's run."""
    return gate_and_promote(client, task, candidate, ws, timing).promote


def gate_and_promote(
    client: MlflowClient,
    task: TaskSpec,
    candidate: ModelVersion,
    ws: Workspace | None = None,
    timing: LockTiming | None = None,
) -> GateDecision:
    """The gate's decision for `candidate` against the current champion, acted on: the alias moved if it says so.

    Why concurrent gates cannot lose the better model, on any store: the gate scores without holding anything
    (seconds), then takes the task's promotion lock (training/registry/promotion_lock.py), reads the champion
    again and writes only if it is still the one it scored against. Every move of the alias (gate, `promote
    --version`, rollback) happens under that lock, right after such a re-read, so no other move can fall between
    the last read and the write. If the champion moved while it scored, the gate lets the lock go and gates again
    against the new champion: a slow, worse gate that finishes last meets the better model and stays out."""
    name = task.name
    if candidate.tags.get(ROLLED_BACK_TAG):
        log.info("%s version %s was rolled back: not promoted again automatically", name, candidate.version)
        reason = "rolled back earlier: only `promote --version` brings it back"
        return GateDecision(name, str(candidate.version), "", False, reason, "refused", task.metric, task.tolerance)
    against = champion(client, name)
    regated: list[str] = []
    for _ in range(MAX_GATINGS):
        decision = decide(client, task, candidate, against, ws)  # the slow part: no lock held
        with promotion_lock(client, name, str(candidate.version), "gate", timing) as (lock, report):
            now = champion(client, name)
            if _version(now) == _version(against):
                decision = replace(decision, concurrency=_concurrency(report.line(), regated))
                if decision.promote:
                    lock.ensure_held()
                    _move(client, name, now, str(candidate.version), "promoted", decision)
                break
        regated.append(f"the champion moved v{_version(against) or '-'} -> v{_version(now) or '-'} while it scored")
        log.info("%s v%s: %s; gating again", name, candidate.version, regated[-1])
        against = now
    else:
        reason = (
            f"refused: the champion moved {MAX_GATINGS} times while this gate scored; run `make export` again "
            "or `promote --version` to override"
        )
        decision = GateDecision(
            name,
            str(candidate.version),
            _version(against),
            False,
            reason,
            "refused",
            task.metric,
            task.tolerance,
            concurrency=_concurrency("", regated),
        )
    if decision.champion_version != str(candidate.version):
        log_decision(client, candidate.run_id, decision)
    return decision


def _version(version: ModelVersion | None) -> str:
    return str(version.version) if version is not None else ""


def _concurrency(waited: str, regated: list[str]) -> str:
    parts = [waited] if waited else []
    if regated:
        parts.append("gated again: " + "; ".join(regated))
    return ", ".join(parts)


def promote(
    client: MlflowClient,
    task: str,
    version: str,
    reason: str = "forced",
    decision: GateDecision | None = None,
    timing: LockTiming | None = None,
) -> None:
    """Move `champion` to `version` and record the move (`forced`: a person chose it; clears a rollback mark;
    `decision`: the gate's, whose scores go into the record). Under the promotion lock, like every move."""
    with promotion_lock(client, task, str(version), reason, timing) as (lock, _):
        current = champion(client, task)
        lock.ensure_held()
        _move(client, task, current, str(version), reason, decision)


def _move(
    client: MlflowClient,
    task: str,
    current: ModelVersion | None,
    version: str,
    reason: str,
    decision: GateDecision | None = None,
) -> None:
    """The write itself; callers hold the promotion lock and read `current` under it."""
    if current is not None and str(current.version) != version:
        client.set_model_version_tag(task, version, PREVIOUS_TAG, str(current.version))
    client.set_registered_model_alias(task, CHAMPION, version)
    if reason == "forced" and ROLLED_BACK_TAG in client.get_model_version(task, version).tags:
        client.delete_model_version_tag(task, version, ROLLED_BACK_TAG)
    _record(client, task, current, version, reason, decision)


def rollback(client: MlflowClient, task: str, timing: LockTiming | None = None) -> str:
    """Move `champion` back to the version it replaced; returns that version. The version rolled back from is
    marked, so a later `make export` or training cannot promote it again by itself."""
    first = champion(client, task)
    if first is None:
        raise ValueError(f"{task} has no champion to roll back")
    with promotion_lock(client, task, str(first.version), "rollback", timing) as (lock, _):
        current = champion(client, task)  # under the lock: the champion a gate may have moved meanwhile
        if current is None:
            raise ValueError(f"{task} has no champion to roll back")
        previous = current.tags.get(PREVIOUS_TAG)
        if not previous:
            raise ValueError(f"{task} version {current.version} replaced no earlier champion")
        lock.ensure_held()
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
