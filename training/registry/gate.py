"""The promotion gate: is a challenger better than the champion, like for like?

Raw validation scores of two runs mean the same only when both runs were validated on the same texts. A run on
another source, on the `smoke` subset, or on a re-made split is validated on other texts, so the gate scores both
registered bundles itself, with serving's own runtime (a bundle can score any text), on the challenger's
validation split and on the champion's:

    promote  <=>  challenger > champion on the challenger's split
             and  challenger >= champion - tolerance on the champion's split

So an intended change of data (a cleaner split, new sources) promotes a model that is better on it, and a model
trained on other data does not displace one that serves the current data better. When both runs have the same
data fingerprint there is one split and the rule is "better on it". Texts either model trained on are left out of
both splits before scoring, so neither side is scored on what it memorised.

Each training run logs its validation split and hashed keys of its training texts (`log_evaluation_set`, under
`data/`); runs from before that are read from the prepared data on this machine when its fingerprint matches the
run's data card. Without either, the gate falls back to the logged selection scores if both fingerprints are equal
and otherwise refuses: a deliberate `promote --version N` is then the way.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from serving.contract.names import DIGEST_TAG, GATE_REASON_TAG, GATE_VERDICT_TAG
from serving.contract.registry import ChampionRef, champion_bundle
from training.config import Workspace
from training.registry.evaluation_sets import EvaluationSet, data_fingerprint, evaluation_set
from training.task_spec import TaskSpec
from training.tracking.evaluation_set import text_key
from training.tracking.store import SELECTION_SCORE

log = logging.getLogger(__name__)

MIN_ROWS = 50  # fewer texts left to compare on than this, and the gate refuses rather than guess
# Each task's metric and tolerance are the task table's (training/tasks/): macro-F1 (0..1) of the served argmax,
# BLEU (0..100) of greedy decoding; a challenger may be worse on the champion's split by about the run-to-run
# spread of one config over seeds (sentiment ~0.5 point of macro-F1, translation ~0.5 BLEU).


# --- the decision -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitScores:
    split: str  # "challenger" or "champion": whose validation split
    fingerprint: str
    rows: int  # texts scored
    left_out: int  # texts of the split that one of the two models trained on
    challenger: float
    champion: float


@dataclass(frozen=True)
class GateDecision:
    task: str
    challenger_version: str
    champion_version: str
    promote: bool
    reason: str
    method: str  # "re-scored", "selection scores (same data)", "refused", "no champion"
    metric: str
    tolerance: float
    challenger_fingerprint: str = ""
    champion_fingerprint: str = ""
    splits: tuple[SplitScores, ...] = field(default_factory=tuple)

    def scores(self) -> dict[str, float]:
        """The four scores (two when both runs share a split), named for MLflow."""
        out = {}
        for s in self.splits:
            out[f"gate/challenger_on_{s.split}_split"] = s.challenger
            out[f"gate/champion_on_{s.split}_split"] = s.champion
        return out

    def summary(self) -> str:
        parts = [f"{s.split}'s split ({s.rows} texts): {s.challenger:.4f} vs {s.champion:.4f}" for s in self.splits]
        return f"{self.reason}" + (
            f" [{self.metric} challenger vs champion on " + "; ".join(parts) + "]" if parts else ""
        )


def decide(
    client: MlflowClient,
    task: TaskSpec,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    ws: Workspace | None = None,
    cache: Path | None = None,
    min_rows: int = MIN_ROWS,
) -> GateDecision:
    """Whether `challenger` should replace `champion` (see the module docstring for the rule)."""
    base = {
        "task": task.name,
        "challenger_version": str(challenger.version),
        "champion_version": str(champion.version) if champion is not None else "",
        "metric": task.metric,
        "tolerance": task.tolerance,
    }
    if champion is None:
        return GateDecision(**base, promote=True, reason="no champion yet", method="no champion")
    if str(champion.version) == str(challenger.version):
        return GateDecision(**base, promote=False, reason="already champion", method="no champion")
    fingerprints = {
        "challenger_fingerprint": data_fingerprint(client, challenger.run_id),
        "champion_fingerprint": data_fingerprint(client, champion.run_id),
    }
    ours = evaluation_set(client, challenger.run_id, task, ws)
    theirs = evaluation_set(client, champion.run_id, task, ws)
    same = fingerprints["challenger_fingerprint"] == fingerprints["champion_fingerprint"] != ""
    if ours is not None and (theirs is not None or same):
        with tempfile.TemporaryDirectory() as tmp:
            bundles = {
                name: _bundle(task.name, _uri(client), cache or Path(tmp), version)
                for name, version in (("challenger", challenger), ("champion", champion))
            }
            return _rescore(task, base, fingerprints, ours, theirs, bundles, min_rows)
    if same:
        mine, current = _selection_score(client, challenger), _selection_score(client, champion)
        better = mine > current
        reason = f"same data, logged {SELECTION_SCORE} {mine:.4f} {'>' if better else '<='} champion's {current:.4f}"
        return GateDecision(
            **base, **fingerprints, promote=better, reason=reason, method="selection scores (same data)"
        )
    whose = " and ".join(name for name, found in (("challenger", ours), ("champion", theirs)) if found is None)
    reason = (
        f"refused: the data fingerprints differ or are unknown, and the {whose}'s validation split and training "
        "texts are neither logged with its run nor prepared here (a run from before they were logged, its data "
        "re-made since): the two cannot be scored like for like; compare by hand and `promote --version` to override"
    )
    return GateDecision(**base, **fingerprints, promote=False, reason=reason, method="refused")


def _rescore(
    task: TaskSpec,
    base: dict[str, Any],
    fingerprints: dict[str, str],
    ours: EvaluationSet,
    theirs: EvaluationSet | None,
    bundles: dict[str, Any],
    min_rows: int,
) -> GateDecision:
    trained_on = ours.train_keys | (theirs.train_keys if theirs is not None else frozenset())  # None: same data
    named = [("challenger", ours)]
    if theirs is not None and theirs.fingerprint != ours.fingerprint:
        named.append(("champion", theirs))
    splits = []
    for name, evaluation in named:
        rows = [row for row in evaluation.rows if text_key(row[task.input_field]) not in trained_on]
        if len(rows) < min_rows:
            reason = (
                f"refused: only {len(rows)} of the {name}'s {len(evaluation.rows)} validation texts are unseen by "
                f"both models (< {min_rows}); `promote --version` to override"
            )
            return GateDecision(**base, **fingerprints, promote=False, reason=reason, method="refused")
        scores = {side: task.score_bundle(bundle, rows) for side, bundle in bundles.items()}
        splits.append(SplitScores(name, evaluation.fingerprint, len(rows), len(evaluation.rows) - len(rows), **scores))
    own, other = splits[0], splits[-1]
    better = own.challenger > own.champion
    not_worse = other.challenger >= other.champion - base["tolerance"]
    if better and not_worse:
        reason = "better on its own validation split" + (
            f" and within {base['tolerance']} on the champion's" if len(splits) > 1 else ""
        )
    elif not better:
        reason = "not better than the champion on its own validation split"
    else:
        reason = f"worse than the champion on the champion's validation split by more than {base['tolerance']}"
    return GateDecision(
        **base, **fingerprints, promote=better and not_worse, reason=reason, method="re-scored", splits=tuple(splits)
    )


def _uri(client: MlflowClient) -> str:
    return client._tracking_client.tracking_uri  # the store the client reads (MLflow has no public accessor)


def _bundle(task: str, uri: str, cache: Path, version: ModelVersion) -> Any:
    ref = ChampionRef(str(version.version), version.source, version.tags.get(DIGEST_TAG, ""))
    return champion_bundle(task, uri, cache, ref).bundle


def _selection_score(client: MlflowClient, version: ModelVersion) -> float:
    return float(client.get_run(version.run_id).data.metrics.get(SELECTION_SCORE, float("-inf")))


def log_decision(client: MlflowClient, run_id: str, decision: GateDecision) -> None:
    """On the challenger's run: the verdict and reason as tags, the scores as metrics, everything as JSON."""
    client.set_tag(run_id, GATE_VERDICT_TAG, "promoted" if decision.promote else "not promoted")
    client.set_tag(run_id, GATE_REASON_TAG, decision.summary()[:5000])
    for key, value in decision.scores().items():
        client.log_metric(run_id, key, value)
    against = f"v{decision.champion_version}" if decision.champion_version else "none"
    client.log_text(run_id, json.dumps(asdict(decision), indent=2), f"gate/against-{against}.json")
