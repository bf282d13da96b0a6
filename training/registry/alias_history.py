"""Every move of a task's `champion` alias, recorded as a small MLflow run and read back in order.

Why runs: they need no extra storage, they travel with the store, and the MLflow UI lists them (experiment
`memoria-alias-history`, one row per move, searchable by task); `python -m training history --task T` prints
them. A record says which version the alias left and reached, why (promoted, forced, rolled back), the
selection scores of both, and who moved it, from which host, when. A gate's move also says whom it waited behind
for the promotion lock and which champions it was gated against before (concurrent gates, promotion.py).
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from serving.contract.names import (
    ALIAS_HISTORY_EXPERIMENT,
    ALIAS_TAG,
    CHAMPION,
    FEEDBACK_HELD_OUT_TAG,
    FEEDBACK_USED_TAG,
    FROM_VERSION_TAG,
    GATE_CHALLENGER_FINGERPRINT_TAG,
    GATE_CHAMPION_FINGERPRINT_TAG,
    GATE_CONCURRENCY_TAG,
    GATE_METHOD_TAG,
    GATE_REASON_TAG,
    HOST_TAG,
    REASON_TAG,
    TASK_TAG,
    TO_VERSION_TAG,
    USER_TAG,
)
from training.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING

if TYPE_CHECKING:
    from training.registry.gate import GateDecision

EXPERIMENT = ALIAS_HISTORY_EXPERIMENT
REASONS = ("promoted", "forced", "rolled back")


@dataclass(frozen=True)
class AliasMove:
    task: str
    from_version: str  # "" when there was no champion
    to_version: str
    reason: str
    from_score: float | None
    to_score: float | None
    user: str
    host: str
    at: float  # seconds since the epoch
    gate: str = ""  # the gate's reason and like-for-like scores, for a promotion
    concurrency: str = ""  # whom the gate waited behind for the lock, the champions it was gated against before

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.at))
        scores = f"{_fmt(self.from_score)} -> {_fmt(self.to_score)}"
        move = f"v{self.from_version or '-'} -> v{self.to_version}"
        line = f"{when} UTC  {move}  {self.reason:<11}  {scores}  {self.user}@{self.host}"
        line += f"\n      gate: {self.gate}" if self.gate else ""
        return line + (f"\n      concurrency: {self.concurrency}" if self.concurrency else "")


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.4f}"


def _experiment(client: MlflowClient) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    location = None
    uri = getattr(getattr(client, "_tracking_client", None), "tracking_uri", "")  # the registry's own store
    if uri.startswith("sqlite:///"):  # keep a local store's folders together (these runs log no artifacts)
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts" / EXPERIMENT).resolve().as_uri()
    return client.create_experiment(
        EXPERIMENT,
        artifact_location=location,
        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},  # opens on its runs
    )


def record_move(
    client: MlflowClient,
    task: str,
    from_version: str,
    to_version: str,
    reason: str,
    from_score: float | None,
    to_score: float | None,
    decision: GateDecision | None = None,
) -> AliasMove:
    """Record one move. `decision` (a gate's) adds its method, reason, data fingerprints and like-for-like scores."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}, got {reason!r}")
    move = AliasMove(
        task,
        from_version,
        to_version,
        reason,
        from_score,
        to_score,
        getpass.getuser(),
        socket.gethostname(),
        time.time(),
    )
    run = client.create_run(
        _experiment(client),
        run_name=f"{task}: v{from_version or '-'} -> v{to_version} ({reason})",
        tags={
            TASK_TAG: task,
            ALIAS_TAG: CHAMPION,
            FROM_VERSION_TAG: from_version,
            TO_VERSION_TAG: to_version,
            REASON_TAG: reason,
            USER_TAG: move.user,
            HOST_TAG: move.host,
            **_gate_tags(decision),
        },
    )
    scores = {"from_score": from_score, "to_score": to_score, **(decision.scores() if decision else {})}
    for key, value in scores.items():
        if value is not None and value == value and abs(value) != float("inf"):
            client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return move


def _gate_tags(decision: GateDecision | None) -> dict[str, str]:
    if decision is None:
        return {}
    return {
        GATE_METHOD_TAG: decision.method,
        GATE_REASON_TAG: decision.summary()[:5000],
        GATE_CHALLENGER_FINGERPRINT_TAG: decision.challenger_fingerprint,
        GATE_CHAMPION_FINGERPRINT_TAG: decision.champion_fingerprint,
        **({GATE_CONCURRENCY_TAG: decision.concurrency[:5000]} if decision.concurrency else {}),
        # a move to a model retrained on production feedback says how many corrections it learned from
        **(
            {FEEDBACK_USED_TAG: decision.feedback_used, FEEDBACK_HELD_OUT_TAG: str(decision.feedback_held_out)}
            if decision.feedback_used
            else {}
        ),
    }


def read_history(client: MlflowClient, task: str) -> list[AliasMove]:
    """The task's alias moves, oldest first."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    runs = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`{TASK_TAG}` = '{task}'", order_by=["attributes.start_time ASC"]
    )
    out = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        out.append(
            AliasMove(
                task=task,
                from_version=tags.get(FROM_VERSION_TAG, ""),
                to_version=tags.get(TO_VERSION_TAG, ""),
                reason=tags.get(REASON_TAG, ""),
                from_score=metrics.get("from_score"),
                to_score=metrics.get("to_score"),
                user=tags.get(USER_TAG, ""),
                host=tags.get(HOST_TAG, ""),
                at=run.info.start_time / 1000,
                gate=tags.get(GATE_REASON_TAG, ""),
                concurrency=tags.get(GATE_CONCURRENCY_TAG, ""),
            )
        )
    return out
