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

import gzip
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serving.resolve import DIGEST_TAG, ChampionRef, champion_bundle
from training.config import Workspace
from training.tracking import SELECTION_SCORE

log = logging.getLogger(__name__)

VALIDATION_ARTIFACT = "data/validation.jsonl.gz"
TRAIN_KEYS_ARTIFACT = "data/train_keys.txt.gz"
CARD_ARTIFACT = "data/card.json"
TEXT_FIELD = {"sentiment": "text", "translation": "source"}
# The served metric each task is compared on: macro-F1 (0..1) of the argmax, BLEU (0..100) of greedy decoding
# (beam 1: the same for both bundles, and 5x cheaper than a beam; single reference, as `val/bleu`).
METRIC = {"sentiment": "macro-F1", "translation": "BLEU"}
# How much worse than the champion a challenger may be on the champion's split, in the metric's own unit: about
# the run-to-run spread of one config over seeds (sentiment ~0.5 point of macro-F1, translation ~0.5 BLEU).
TOLERANCE = {"sentiment": 0.005, "translation": 0.5}
MIN_ROWS = 50  # fewer texts left to compare on than this, and the gate refuses rather than guess


def text_key(text: str) -> str:
    """The identity of a text for "did this model train on it": case- and spacing-insensitive, hashed short."""
    return hashlib.blake2b(" ".join(text.casefold().split()).encode(), digest_size=8).hexdigest()


# --- what each run logs -----------------------------------------------------------------------------------------


def log_evaluation_set(task: str, prepared_dir: Path) -> None:
    """Inside a training run: log the validation split the run is selected on and the keys of its training texts,
    so the gate can score any later bundle on them even after the prepared data is re-made (~0.2 MB per run)."""
    field_name = TEXT_FIELD[task]
    with tempfile.TemporaryDirectory() as tmp:
        validation = Path(tmp) / Path(VALIDATION_ARTIFACT).name
        validation.write_bytes(gzip.compress((Path(prepared_dir) / "validation.jsonl").read_bytes(), mtime=0))
        keys = sorted({text_key(row[field_name]) for row in _jsonl(Path(prepared_dir) / "train.jsonl")})
        train_keys = Path(tmp) / Path(TRAIN_KEYS_ARTIFACT).name
        train_keys.write_bytes(gzip.compress("\n".join(keys).encode(), mtime=0))
        for path in (validation, train_keys):
            mlflow.log_artifact(str(path), "data")


# --- what the gate reads back -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationSet:
    """A run's validation rows, the keys of its training texts, and where they were read from."""

    fingerprint: str
    rows: list[dict[str, Any]]
    train_keys: frozenset[str]
    origin: str


def data_fingerprint(client: MlflowClient, run_id: str) -> str:
    """The fingerprint of the prepared data a run trained on (its data card's), or "" if it logged none."""
    run = client.get_run(run_id)
    if run.data.tags.get("memoria.data_fingerprint", "unknown") != "unknown":
        return run.data.tags["memoria.data_fingerprint"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return str(
                json.loads(Path(client.download_artifacts(run_id, CARD_ARTIFACT, tmp)).read_text())["fingerprint"]
            )
    except (MlflowException, OSError, KeyError, ValueError):
        return ""


def data_change(client: MlflowClient, before_run: str, after_run: str) -> str:
    """One line for `make retrain`: whether the data a new run read is the data its champion read, and if not, which
    part of the data card moved (pipeline version, pinned input, preparation config)."""
    cards = []
    for run_id in (before_run, after_run):
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cards.append(json.loads(Path(client.download_artifacts(run_id, CARD_ARTIFACT, tmp)).read_text()))
        except (MlflowException, OSError, ValueError):
            return "the champion's data card is not logged: cannot tell whether the data changed"
    before, after = cards
    if before.get("fingerprint") == after.get("fingerprint"):
        return f"same prepared data as the champion (fingerprint {str(after.get('fingerprint'))[:12]})"
    moved = [key for key in ("pipeline_version", "input", "config") if before.get(key) != after.get(key)]
    return (
        f"the data changed since the champion: fingerprint {str(before.get('fingerprint'))[:12]} -> "
        f"{str(after.get('fingerprint'))[:12]} ({', '.join(moved) or 'card'} differ; see data/card.json of both runs)"
    )


def evaluation_set(client: MlflowClient, run_id: str, task: str, ws: Workspace | None) -> EvaluationSet | None:
    fingerprint = data_fingerprint(client, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            validation = Path(client.download_artifacts(run_id, VALIDATION_ARTIFACT, tmp))
            keys = Path(client.download_artifacts(run_id, TRAIN_KEYS_ARTIFACT, tmp))
        except (MlflowException, OSError):
            pass
        else:
            rows = [json.loads(line) for line in gzip.decompress(validation.read_bytes()).decode().splitlines() if line]
            train_keys = frozenset(gzip.decompress(keys.read_bytes()).decode().split())
            return EvaluationSet(fingerprint, rows, train_keys, "logged with the run")
    return _from_prepared_data(client, run_id, task, fingerprint, ws)


def _from_prepared_data(
    client: MlflowClient, run_id: str, task: str, fingerprint: str, ws: Workspace | None
) -> EvaluationSet | None:
    """A run from before evaluation sets were logged: the prepared data on this machine, if it is the run's."""
    if ws is None or not fingerprint:
        return None
    from training.config import from_dict

    try:
        with tempfile.TemporaryDirectory() as tmp:
            logged = json.loads(Path(client.download_artifacts(run_id, "config.json", tmp)).read_text())
        cfg = from_dict(task, logged)
    except (MlflowException, OSError, ValueError, TypeError, KeyError):
        return None
    if task == "sentiment":
        from training.data.sentiment_corpus import find_prepared
    else:
        from training.data.translation_corpus import find_prepared
    prepared = find_prepared(cfg.data, ws)
    if prepared is None or prepared.card.get("fingerprint") != fingerprint:
        return None
    rows = list(_jsonl(prepared.dir / "validation.jsonl"))
    keys = frozenset(text_key(row[TEXT_FIELD[task]]) for row in _jsonl(prepared.dir / "train.jsonl"))
    return EvaluationSet(fingerprint, rows, keys, "prepared data with the run's fingerprint")


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        yield from (json.loads(line) for line in f if line.strip())


# --- scoring ----------------------------------------------------------------------------------------------------


def score_bundle(bundle: Any, task: str, rows: Sequence[dict[str, Any]]) -> float:
    """The task's metric of a bundle on `rows`, computed by serving's own predictors (onnxruntime, no torch)."""
    if task == "sentiment":
        from serving.sentiment import SentimentPredictor
        from training.decision import macro_f1

        predictor = SentimentPredictor(bundle)
        index = {label: i for i, label in enumerate(predictor.labels)}
        predicted = predictor.probabilities([row["text"] for row in rows]).argmax(axis=1)
        truth = np.array([index[row["label"]] for row in rows])
        return macro_f1(predicted, truth, len(predictor.labels))
    import sacrebleu

    from serving.translation import TranslationPredictor

    hypotheses = TranslationPredictor(bundle).translate([row["source"] for row in rows], beam_size=1)
    return float(sacrebleu.corpus_bleu(hypotheses, [[row["target"] for row in rows]]).score)


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
    task: str,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    ws: Workspace | None = None,
    cache: Path | None = None,
    min_rows: int = MIN_ROWS,
) -> GateDecision:
    """Whether `challenger` should replace `champion` (see the module docstring for the rule)."""
    base = {
        "task": task,
        "challenger_version": str(challenger.version),
        "champion_version": str(champion.version) if champion is not None else "",
        "metric": METRIC[task],
        "tolerance": TOLERANCE[task],
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
                name: _bundle(task, _uri(client), cache or Path(tmp), version)
                for name, version in (("challenger", challenger), ("champion", champion))
            }
            return _rescore(base, fingerprints, ours, theirs, bundles, min_rows)
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
    base: dict[str, Any],
    fingerprints: dict[str, str],
    ours: EvaluationSet,
    theirs: EvaluationSet | None,
    bundles: dict[str, Any],
    min_rows: int,
) -> GateDecision:
    task = base["task"]
    trained_on = ours.train_keys | (theirs.train_keys if theirs is not None else frozenset())  # None: same data
    named = [("challenger", ours)]
    if theirs is not None and theirs.fingerprint != ours.fingerprint:
        named.append(("champion", theirs))
    splits = []
    for name, evaluation in named:
        rows = [row for row in evaluation.rows if text_key(row[TEXT_FIELD[task]]) not in trained_on]
        if len(rows) < min_rows:
            reason = (
                f"refused: only {len(rows)} of the {name}'s {len(evaluation.rows)} validation texts are unseen by "
                f"both models (< {min_rows}); `promote --version` to override"
            )
            return GateDecision(**base, **fingerprints, promote=False, reason=reason, method="refused")
        scores = {side: score_bundle(bundle, task, rows) for side, bundle in bundles.items()}
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
    client.set_tag(run_id, "memoria.gate.verdict", "promoted" if decision.promote else "not promoted")
    client.set_tag(run_id, "memoria.gate.reason", decision.summary()[:5000])
    for key, value in decision.scores().items():
        client.log_metric(run_id, key, value)
    against = f"v{decision.champion_version}" if decision.champion_version else "none"
    client.log_text(run_id, json.dumps(asdict(decision), indent=2), f"gate/against-{against}.json")
