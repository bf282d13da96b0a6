"""The promotion gate: is a challenger better than the champion, like for like?

Raw validation scores of two runs mean the same only when both runs were validated on the same texts. A run on
another source, on the `smoke` subset, or on a re-made split is validated on other texts, so the gate scores both
registered bundles itself, with serving's own runtime (a bundle can score any text), on the challenger's
validation split and on the champion's:

    promote  <=>  challenger > champion + margin on the challenger's split
             and  challenger >= champion - tolerance on the champion's split

So an intended change of data (a cleaner split, new sources) promotes a model that is better on it, and a model
trained on other data does not displace one that serves the current data better. When both runs have the same
data fingerprint there is one split and the rule is "better on it". Texts either model trained on are left out of
both splits before scoring, so neither side is scored on what it memorised.

The margin, and the reuse of the challenger's split. That split is the one its own run already used to choose
the epoch (the best checkpoint), the class offsets, the temperature (argmax-neutral: no effect on macro-F1) and
int8-or-fp32, so scoring the challenger on it is slightly optimistic: each choice kept what happened to score well
on these very texts. Removing the reuse needs texts no choice has seen, a separate "gate" split cut by data
preparation and logged with each run (the test split must stay unseen by every choice, or the reported test
figures lose their meaning); data preparation does not cut one today. So the gate bounds the bias instead: the
challenger must lead by more than `margin`, one standard error of the challenger-minus-champion difference on
these texts, measured by batch means (`noise_margin`). The optimism of those choices is of the order of the
split's sampling noise (it is that noise the choices pick up), so a lead within one standard error is not taken
as evidence. A lead of exactly zero never promotes, as before. `promote --version N` remains the override.

Each training run logs its validation split and hashed keys of its training texts (`log_evaluation_set`, under
`data/`); runs from before that are read from the prepared data on this machine when its fingerprint matches the
run's data card. Without either, the gate falls back to the logged selection scores if both fingerprints are equal
and otherwise refuses: a deliberate `promote --version N` is then the way.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from serving.contract.names import (
    DIGEST_TAG,
    FEEDBACK_USED_TAG,
    GATE_CONCURRENCY_TAG,
    GATE_REASON_TAG,
    GATE_VERDICT_TAG,
)
from serving.contract.registry import ChampionRef, champion_bundle
from training.config import Workspace
from training.registry.evaluation_sets import EvaluationSet, data_fingerprint, evaluation_set
from training.task_spec import TaskSpec
from training.tracking.evaluation_set import text_key
from training.tracking.feedback import feedback_holdout
from training.tracking.store import SELECTION_SCORE

log = logging.getLogger(__name__)

MIN_ROWS = 50  # fewer texts left to compare on than this, and the gate refuses rather than guess
# The noise margin: the split is dealt into NOISE_PARTS interleaved parts (in an order set by the texts' hashes,
# so neither file order nor labels line up with the parts), both bundles are scored on each part, and the spread of
# the per-part differences gives the standard error of the difference on the whole split (batch means: works for
# any corpus metric the task table names, macro-F1 or BLEU, without per-text scores). MARGIN_SE of them is the
# margin. Parts smaller than MIN_PART_ROWS texts say little; with fewer than two parts the margin is 0.
NOISE_PARTS = 10
MIN_PART_ROWS = 5
MARGIN_SE = 1.0
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
    # how far the challenger had to lead on its own split (the noise margin, or the tolerance for logged scores)
    margin: float = 0.0
    # concurrent gates (training/registry/promotion.py): whom this gate waited behind for the promotion lock, and
    # the champions it was gated against before the one it was finally decided against
    concurrency: str = ""
    # a challenger trained on production feedback (`make retrain FEEDBACK=1`): how many corrections it used, and
    # both models' scores on the corrections held out from its training (reported; the rule above decides)
    feedback_used: str = ""
    feedback_held_out: int = 0
    feedback_scores: tuple[float, float] | None = None  # (challenger, champion)

    def scores(self) -> dict[str, float]:
        """The four scores (two when both runs share a split), named for MLflow."""
        out = {}
        for s in self.splits:
            out[f"gate/challenger_on_{s.split}_split"] = s.challenger
            out[f"gate/champion_on_{s.split}_split"] = s.champion
        if self.feedback_scores is not None:
            out["gate/challenger_on_feedback_holdout"], out["gate/champion_on_feedback_holdout"] = self.feedback_scores
        return out

    def summary(self) -> str:
        parts = [f"{s.split}'s split ({s.rows} texts): {s.challenger:.4f} vs {s.champion:.4f}" for s in self.splits]
        return (
            f"{self.reason}"
            + (
                f" [{self.metric} challenger vs champion on " + "; ".join(parts) + f", margin {self.margin:.4f}]"
                if parts
                else ""
            )
            + self._feedback_summary()
        )

    def _feedback_summary(self) -> str:
        if not self.feedback_used:
            return ""
        line = f"; trained on {self.feedback_used} correction(s) from production"
        if self.feedback_scores is None:
            return line + f", {self.feedback_held_out} held out (none to score on)"
        mine, theirs = self.feedback_scores
        return line + f"; on the {self.feedback_held_out} held-out corrections {self.metric} {mine:.4f} vs {theirs:.4f}"


def decide(
    client: MlflowClient,
    task: TaskSpec,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    ws: Workspace | None = None,
    cache: Path | None = None,
    min_rows: int = MIN_ROWS,
) -> GateDecision:
    """Whether `challenger` should replace `champion` (see the module docstring for the rule), and, for a
    challenger trained on production feedback, both models' scores on its held-out corrections."""
    decision = _decide(client, task, challenger, champion, ws, cache, min_rows)
    held = feedback_holdout(client, challenger.run_id)
    if held is None:
        return decision
    used = client.get_run(challenger.run_id).data.tags.get(FEEDBACK_USED_TAG, "0")
    scores = None
    if held and champion is not None and str(champion.version) != str(challenger.version):
        with tempfile.TemporaryDirectory() as tmp:
            scores = tuple(
                task.score_bundle(_bundle(task.name, _uri(client), cache or Path(tmp), version), held)
                for version in (challenger, champion)
            )
    return replace(decision, feedback_used=used, feedback_held_out=len(held), feedback_scores=scores)


def _decide(
    client: MlflowClient,
    task: TaskSpec,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    ws: Workspace | None,
    cache: Path | None,
    min_rows: int,
) -> GateDecision:
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
        # No texts to measure the noise on: the task's tolerance (the run-to-run spread over seeds) stands in.
        mine, current = _selection_score(client, challenger), _selection_score(client, champion)
        better = mine > current + task.tolerance
        reason = (
            f"same data, logged {SELECTION_SCORE} {mine:.4f} {'>' if better else '<='} champion's {current:.4f} "
            f"+ margin {task.tolerance}"
        )
        return GateDecision(
            **base,
            **fingerprints,
            promote=better,
            reason=reason,
            method="selection scores (same data)",
            margin=task.tolerance,
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
    margin = 0.0
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
        if name == "challenger" and scores["challenger"] > scores["champion"]:  # a lead to weigh against the noise
            margin = noise_margin(task, bundles, rows)
    own, other = splits[0], splits[-1]
    lead = own.challenger - own.champion
    better = lead > margin
    not_worse = other.challenger >= other.champion - base["tolerance"]
    if better and not_worse:
        reason = f"better on its own validation split by {lead:.4f} (> margin {margin:.4f})" + (
            f" and within {base['tolerance']} on the champion's" if len(splits) > 1 else ""
        )
    elif not better and lead > 0:
        reason = (
            f"ahead of the champion on its own validation split by {lead:.4f}, within the noise margin {margin:.4f} "
            "(one standard error of the difference): not evidence enough; `promote --version` to override"
        )
    elif not better:
        reason = "not better than the champion on its own validation split"
    else:
        reason = f"worse than the champion on the champion's validation split by more than {base['tolerance']}"
    return GateDecision(
        **base,
        **fingerprints,
        promote=better and not_worse,
        reason=reason,
        method="re-scored",
        splits=tuple(splits),
        margin=margin,
    )


def noise_margin(task: TaskSpec, bundles: dict[str, Any], rows: list[dict[str, Any]]) -> float:
    """MARGIN_SE standard errors of (challenger - champion) on `rows`, by batch means over NOISE_PARTS interleaved
    parts: var(difference on the whole split) ~ var(difference on a part) / parts, as for a mean. Paired: both
    bundles are scored on the same part, so what a part's texts share (easy or hard ones) cancels out."""
    ordered = sorted(rows, key=lambda row: text_key(row[task.input_field]))
    parts = min(NOISE_PARTS, len(ordered) // MIN_PART_ROWS)
    if parts < 2:
        return 0.0
    diffs = [
        task.score_bundle(bundles["challenger"], part) - task.score_bundle(bundles["champion"], part)
        for part in (ordered[i::parts] for i in range(parts))
    ]
    return MARGIN_SE * float(np.std(diffs, ddof=1) / np.sqrt(parts))


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
    if decision.concurrency:
        client.set_tag(run_id, GATE_CONCURRENCY_TAG, decision.concurrency[:5000])
    for key, value in decision.scores().items():
        client.log_metric(run_id, key, value)
    against = f"v{decision.champion_version}" if decision.champion_version else "none"
    client.log_text(run_id, json.dumps(asdict(decision), indent=2), f"gate/against-{against}.json")
