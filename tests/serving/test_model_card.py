"""The model card behind GET /models (serving/model_card.py) and the training data summary that export writes into
each bundle (training/export/data_summary.py), on the tiny champions of the `store` fixture: real MLflow, real bundles,
the real CLI for the peer."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serving.contract.bundle import load_bundle, write_manifest
from serving.contract.drift_profile import load_profile
from serving.contract.drift_signals import NOVELTY_BOUNDS, novelty, words
from serving.contract.input_profile import TOKEN_BUCKETS, histogram
from serving.contract.names import DIGEST_TAG
from serving.contract.registry import ServedBundle, champion_bundle
from serving.model_card import UNKNOWN, ModelCards, _without_local_paths, model_card
from tests.serving_harness import SENTIMENT_ARGS, cli
from training.export.signing import signer

TEXT_FIELD = {"sentiment": "text", "translation": "source"}


def champion(store: dict[str, str], task: str, cache: Path) -> ServedBundle:
    return champion_bundle(task, store["MLFLOW_TRACKING_URI"], cache)


def split_rows(store: dict[str, str], task: str, split: str) -> list[dict]:
    (folder,) = (Path(store["MEMORIA_HOME"]) / "data" / task).iterdir()  # one prepared source per task here
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("task", ["sentiment", "translation"])
def test_the_bundle_says_what_it_was_trained_on_counted_as_serving_counts(
    store: dict[str, str], tmp_path: Path, task: str
) -> None:
    # given the champion's bundle and the prepared splits its run read
    served = champion(store, task, tmp_path)
    data = served.bundle.manifest["data"]
    train = split_rows(store, task, "train")
    # then the summary names the data and the split sizes
    assert data["available"] and len(data["fingerprint"]) == 64
    assert data["splits"] == {name: len(split_rows(store, task, name)) for name in ("train", "validation", "test")}
    if task == "sentiment":
        assert list(data["classes"]) == ["negative", "neutral", "positive"]
        assert data["classes"] == {label: sum(row["label"] == label for row in train) for label in data["classes"]}
    else:
        assert sum(data["domains"].values()) == len(train)
    # and its input profile is what the served predictor reports to the metrics for the same texts
    texts = [row[TEXT_FIELD[task]] for row in train]
    if task == "sentiment":
        from serving.sentiment import SentimentPredictor

        counts = [(r["tokens"], r["unknown"]) for r in SentimentPredictor(served.bundle).predict(texts)]
    else:
        from serving.translation import TranslationPredictor

        counts = [(n, unk) for _, n, unk in TranslationPredictor(served.bundle).translate_with_stats(texts, 1)]
    inputs = data["inputs"]
    assert inputs["split"] == "train" and inputs["texts"] == len(texts)
    assert inputs["tokens"] == histogram([n for n, _ in counts], TOKEN_BUCKETS)
    # and its drift profile: every training word, and the references counted as serving bins live texts
    profile = load_profile(served.bundle)
    assert profile is not None
    assert profile.vocabulary == {w for text in texts for w in words(text)}
    assert profile.signals["input_tokens"].counts == inputs["tokens"]["counts"]
    held_out = [row[TEXT_FIELD[task]] for row in split_rows(store, task, "validation")]
    novelty_bins = [profile.signals["novelty"].bin_of("novelty", novelty(t, profile.vocabulary)) for t in held_out]
    assert profile.signals["novelty"].counts == [novelty_bins.count(i) for i in range(len(NOVELTY_BOUNDS) + 1)]
    assert served.bundle.manifest["drift_profile"] in served.bundle.manifest["files"]  # checksummed and signed


def test_histogram_buckets_follow_prometheus_le() -> None:
    assert histogram([0, 1, 1.5, 2, 3, 300], (1, 2, 4)) == {"le": [1, 2, 4, "+Inf"], "counts": [2, 2, 1, 1]}


@pytest.mark.parametrize("task", ["sentiment", "translation"])
def test_a_registry_champion_card_says_version_digest_scores_parity_and_why(
    store: dict[str, str], tmp_path: Path, task: str
) -> None:
    served = champion(store, task, tmp_path)
    card = model_card(served, store["MLFLOW_TRACKING_URI"])
    registered = MlflowClient(store["MLFLOW_TRACKING_URI"]).get_model_version_by_alias(task, "champion")
    assert card["model"] == served.label and card["origin"] == "registry"
    assert card["registry_version"] == str(registered.version) == "1"
    assert card["bundle_digest"] == registered.tags[DIGEST_TAG] == served.bundle.digest
    assert card["data"]["fingerprint"] == served.bundle.manifest["data"]["fingerprint"]
    metric = "test/macro_f1" if task == "sentiment" else "test/bleu"
    assert metric in card["evaluation"]["model"] and all(k.startswith("test/") for k in card["evaluation"]["model"])
    assert card["parity"]["max_abs_diff"] <= 1e-4
    # the alias history (training/registry/alias_history.py) says when and why v1 became champion
    assert card["champion"]["reason"] == "promoted" and card["champion"]["gate"] == "no champion yet"
    datetime.fromisoformat(card["champion"]["since"])
    # no baseline run in this store: the peer is unknown, and the card says how to get one
    assert card["evaluation"]["peer"] == {
        "status": UNKNOWN,
        "reason": f"no peer run on the same data: make baseline TASK={task}",
    }
    json.dumps(card)  # served as JSON as it is


def test_the_peer_is_the_baseline_run_on_the_same_data(store: dict[str, str], tmp_path: Path) -> None:
    # given a copy of the store (a copied store keeps working: serving/contract/store_location.py) with a TF-IDF
    # peer run
    root = Path(store["MEMORIA_HOME"])
    copy = tmp_path / "copy"
    for part in ("data", "mlruns"):
        shutil.copytree(root / part, copy / part)
    uri = f"sqlite:///{copy}/mlruns/mlflow.db"
    env = {**store, "MEMORIA_HOME": str(copy), "MLFLOW_TRACKING_URI": uri}
    peers = json.loads(cli(env, "baseline", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS))
    peer_metrics = peers["tfidf"]  # the baseline the card compares with (VADER, the lexicon peer, is logged beside it)
    # when the champion's card is built
    card = model_card(champion_bundle("sentiment", uri, tmp_path / "cache"), uri)
    # then it compares the champion with that run, metric by metric
    peer = card["evaluation"]["peer"]
    assert peer["status"] == "known" and peer["run_id"] == peer_metrics["run_id"]
    assert "logistic regression" in peer["name"]
    (seen,) = MlflowClient(uri).get_run(peer["run_id"]).inputs.dataset_inputs  # the runs table names its data too
    assert seen.dataset.name == "sentiment/csv"
    assert peer["metrics"]["test/macro_f1"] == pytest.approx(peer_metrics["test/macro_f1"], abs=1e-4)
    model = card["evaluation"]["model"]["test/macro_f1"]
    assert peer["model_minus_peer"]["test/macro_f1"] == pytest.approx(model - peer["metrics"]["test/macro_f1"])


def test_a_bundle_given_by_path_has_a_card_with_unknowns_said_out_loud(store: dict[str, str], tmp_path: Path) -> None:
    # given the champion's bundle copied to a folder, once as exported and once as exported before data summaries
    registry = champion(store, "sentiment", tmp_path / "cache")
    path = tmp_path / "bundle"
    shutil.copytree(registry.bundle.path, path)
    old = tmp_path / "old-bundle"
    shutil.copytree(registry.bundle.path, old)
    manifest = {k: v for k, v in registry.bundle.manifest.items() if k not in ("data", "format", "files")}
    write_manifest(old, manifest, sign=signer())  # re-sealed with the team's key: served bundles are signed
    cards = ModelCards()
    uri = store["MLFLOW_TRACKING_URI"]
    # when served by path, there is no registry to ask why it serves
    card = cards.card(ServedBundle(load_bundle(path, "sentiment"), "path"), uri)
    assert card["origin"] == "path" and card["registry_version"] == UNKNOWN
    assert card["champion"]["reason"] == UNKNOWN and card["evaluation"]["peer"]["status"] == UNKNOWN
    assert card["data"] == registry.bundle.manifest["data"]  # the manifest still says what it learned from
    assert card["bundle_created_at"] == registry.bundle.manifest["created_at"]
    old_card = cards.card(ServedBundle(load_bundle(old, "sentiment"), "path"), uri)
    assert old_card["data"]["available"] is False and "before data summaries" in old_card["data"]["reason"]
    # and a card is built once per served bundle, not per request
    assert cards.card(ServedBundle(load_bundle(path, "sentiment"), "path"), uri) is card


def test_a_store_that_fails_leaves_unknowns_without_its_error_words(
    store: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The card is open: an error's text (a store URI with user@host, a file path) goes to the log, not the card."""
    served = champion(store, "sentiment", tmp_path / "cache")
    (tmp_path / "a-file").write_text("not a folder")
    broken = f"sqlite:///{tmp_path}/a-file/mlflow.db"  # cannot be opened: the error names the path
    with caplog.at_level("WARNING", logger="bentoml.memoria"):
        card = model_card(served, broken)
    assert card["champion"]["note"] == "alias history unreadable (see the server log)"
    assert card["evaluation"]["peer"] == {"status": UNKNOWN, "reason": "peer runs unreadable (see the server log)"}
    text = json.dumps(card)
    assert str(tmp_path) not in text and "Error" not in text
    assert "a-file" in caplog.text and "FileExistsError" in caplog.text  # the reason is kept, in the log


def test_the_card_names_no_one_and_no_local_path(store: dict[str, str], tmp_path: Path) -> None:
    card = model_card(champion(store, "sentiment", tmp_path / "cache"), store["MLFLOW_TRACKING_URI"])
    assert "moved_by" not in card["champion"] and card["champion"]["history_run_id"]
    assert "@" not in json.dumps(card["champion"])
    scrubbed = _without_local_paths({"a": ["/home/ana/data/glove.txt", "sentiment/v1 sha256:ab", "/"], "b": 3})
    assert scrubbed == {"a": [".../glove.txt", "sentiment/v1 sha256:ab", "/"], "b": 3}
