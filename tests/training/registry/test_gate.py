"""The promotion gate compares like with like: both bundles are scored by serving's runtime on both runs'
validation splits, texts either model trained on are left out, and the logged selection scores of runs on other
data are never compared as if they meant the same."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from serving.contract.bundle import load_bundle
from tests.training.export.test_export_sentiment import LABELS, write_model_dir
from tests.training.registry.test_registry import fake_training_run
from training.config import Workspace
from training.registry.alias_history import read_history
from training.registry.promotion import champion, promote
from training.tasks import export_model_folder, publish_run, task_named
from training.tracking.evaluation_set import log_evaluation_set, text_key
from training.tracking.store import SELECTION_SCORE, experiment_id, use_store

WORDS = ["good", "bad", "fine", "movie", "plot", "actors", "music", "ending", "story", "scene", "cast", "film"]


def write_split(folder: Path, name: str, counts: dict[str, int], seed: int) -> list[dict[str, str]]:
    """A prepared split with `counts[label]` distinct texts per label (their words do not matter: the models
    below answer one label whatever the text)."""
    rng = np.random.default_rng(seed)
    rows = [
        {"text": " ".join(rng.choice(WORDS, size=6)) + f" {name} {label} {i}", "label": label}
        for label, n in counts.items()
        for i in range(n)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def constant_run(ws: Workspace, tmp: Path, answer: str, selection: float, data: dict[str, dict[str, int]]) -> str:
    """A finished run whose model answers `answer` to every text, with a (deliberately misleading) selection score
    and its own prepared data logged the way training logs it."""
    _, model_dir = write_model_dir(tmp / f"model-{answer}", "gru", seed=1)
    state = torch.load(model_dir / "state_dict.pt")
    state["head.bias"] = torch.full((len(LABELS),), -50.0)
    state["head.bias"][LABELS.index(answer)] = 50.0
    torch.save(state, model_dir / "state_dict.pt")
    prepared = tmp / f"prepared-{answer}"
    for i, (split, counts) in enumerate(data.items()):
        write_split(prepared, split, counts, seed=10 * LABELS.index(answer) + i)
    client = use_store(ws)
    exp = experiment_id(client, ws, "sentiment")
    with mlflow.start_run(experiment_id=exp, tags={"memoria.task": "sentiment"}) as run:
        mlflow.log_metric(SELECTION_SCORE, selection)
        mlflow.log_dict({"fingerprint": f"data-of-{answer}"}, "data/card.json")
        log_evaluation_set("text", prepared)
        mlflow.log_artifacts(str(model_dir), "model")
    return run.info.run_id


def macro_f1_of_constant(answer: str, counts: dict[str, int]) -> float:
    """What a one-label model scores: F1 of that label (the others are 0), averaged over three labels."""
    tp, total = counts.get(answer, 0), sum(counts.values())
    return 2 * tp / (tp + total) / len(LABELS)


def test_a_challenger_on_other_data_is_rescored_on_both_splits(ws: Workspace, tmp_path: Path) -> None:
    """The champion answers `positive`, the challenger `negative`. The challenger's own split is mostly negative,
    the champion's mostly positive: the challenger wins on its split and loses by far on the champion's, so it
    stays out, although its logged selection score (0.99 against 0.10) is far higher."""
    champion_data = {"train": {"positive": 5}, "validation": {"positive": 80, "negative": 20, "neutral": 10}}
    challenger_data = {"train": {"negative": 5}, "validation": {"negative": 70, "positive": 20, "neutral": 10}}
    first = publish_run(ws, constant_run(ws, tmp_path, "positive", 0.10, champion_data))
    assert first.promoted
    second = publish_run(ws, constant_run(ws, tmp_path, "negative", 0.99, challenger_data))
    assert not second.promoted and second.champion_version == first.version

    client = use_store(ws)
    metrics = client.get_run(second.run_id).data.metrics
    own, theirs = challenger_data["validation"], champion_data["validation"]
    expected = {
        "gate/challenger_on_challenger_split": macro_f1_of_constant("negative", own),
        "gate/champion_on_challenger_split": macro_f1_of_constant("positive", own),
        "gate/challenger_on_champion_split": macro_f1_of_constant("negative", theirs),
        "gate/champion_on_champion_split": macro_f1_of_constant("positive", theirs),
    }
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key
    assert expected["gate/challenger_on_challenger_split"] > expected["gate/champion_on_challenger_split"]
    tags = client.get_run(second.run_id).data.tags
    assert tags["memoria.gate.verdict"] == "not promoted"
    assert "worse than the champion on the champion's validation split" in tags["memoria.gate.reason"]
    decision = json.loads(
        Path(client.download_artifacts(second.run_id, f"gate/against-v{first.version}.json", str(tmp_path))).read_text()
    )
    assert (decision["challenger_fingerprint"], decision["champion_fingerprint"]) == (
        "data-of-negative",
        "data-of-positive",
    )
    assert [s["rows"] for s in decision["splits"]] == [100, 110]


def test_a_challenger_better_on_its_split_and_close_on_the_champions_is_promoted(ws: Workspace, tmp_path: Path) -> None:
    """On a balanced champion split the two one-label models tie: within the tolerance, so the challenger that is
    better on its own (new) data is promoted, and the alias history keeps the four scores and both fingerprints."""
    champion_data = {"train": {"positive": 5}, "validation": {"positive": 40, "negative": 40, "neutral": 20}}
    challenger_data = {"train": {"negative": 5}, "validation": {"negative": 70, "positive": 20, "neutral": 10}}
    publish_run(ws, constant_run(ws, tmp_path, "positive", 0.50, champion_data))
    second = publish_run(ws, constant_run(ws, tmp_path, "negative", 0.20, challenger_data))
    assert second.promoted, second.gate
    move = read_history(use_store(ws), "sentiment")[-1]
    assert (move.to_version, move.reason) == (second.version, "promoted")
    assert "better on its own validation split" in move.gate
    run = use_store(ws).search_runs(
        [use_store(ws).get_experiment_by_name("memoria-alias-history").experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert run.data.tags["memoria.gate.challenger_fingerprint"] == "data-of-negative"
    assert run.data.tags["memoria.gate.champion_fingerprint"] == "data-of-positive"
    assert len([k for k in run.data.metrics if k.startswith("gate/")]) == 4
    assert task_named("sentiment").tolerance > 0


def test_texts_either_model_trained_on_are_left_out(ws: Workspace, tmp_path: Path) -> None:
    """The champion's validation split holds the challenger's training texts (a re-made split): they are not
    scored, on either side."""
    champion_data = {"train": {"positive": 5}, "validation": {"positive": 60, "negative": 60}}
    publish_run(ws, constant_run(ws, tmp_path, "positive", 0.5, champion_data))
    champion_validation = (tmp_path / "prepared-positive" / "validation.jsonl").read_text().splitlines()
    challenger_dir = tmp_path / "prepared-negative"
    challenger_data = {"validation": {"negative": 60, "positive": 60}}
    run_id = constant_run(ws, tmp_path, "negative", 0.5, {"train": {"neutral": 1}, **challenger_data})
    # re-log its training texts as 30 of the champion's validation texts, as a re-made split would have them
    (challenger_dir / "train.jsonl").write_text("\n".join(champion_validation[:30]) + "\n")
    with mlflow.start_run(run_id=run_id):
        log_evaluation_set("text", challenger_dir)
    result = publish_run(ws, run_id)
    decision = json.loads(
        Path(use_store(ws).download_artifacts(result.run_id, "gate/against-v1.json", str(tmp_path / "dl"))).read_text()
    )
    by_split = {s["split"]: s for s in decision["splits"]}
    assert (by_split["champion"]["rows"], by_split["champion"]["left_out"]) == (90, 30)
    assert by_split["challenger"]["left_out"] == 0
    assert len({text_key(json.loads(line)["text"]) for line in champion_validation[:30]}) == 30


def test_runs_on_different_unlogged_data_are_not_compared(ws: Workspace, tmp_path: Path) -> None:
    """Without validation splits to re-score on, different data fingerprints mean the selection scores are not
    comparable: the gate refuses, whatever the numbers."""
    first = publish_run(ws, fake_training_run(ws, tmp_path, 0.40, seed=1, fingerprint="a" * 64))
    other = publish_run(ws, fake_training_run(ws, tmp_path, 0.90, seed=2, fingerprint="b" * 64))
    assert not other.promoted and other.champion_version == first.version
    assert other.gate.startswith("refused")
    same = publish_run(ws, fake_training_run(ws, tmp_path, 0.50, seed=3, fingerprint="a" * 64))
    assert same.promoted and str(champion(use_store(ws), "sentiment").version) == same.version


def test_score_bundle_is_the_served_macro_f1(tmp_path: Path) -> None:
    _, model_dir = write_model_dir(tmp_path / "model", "lstm", seed=3)
    bundle = load_bundle(export_model_folder(model_dir, tmp_path / "bundle", "r", {SELECTION_SCORE: 0.5}).bundle_dir)
    rows = write_split(tmp_path / "split", "validation", {"negative": 10, "neutral": 10, "positive": 10}, seed=0)
    from serving.sentiment import SentimentPredictor
    from training.metrics.decision import macro_f1

    predictor = SentimentPredictor(bundle)
    predicted = predictor.probabilities([r["text"] for r in rows]).argmax(1)
    truth = np.array([predictor.labels.index(r["label"]) for r in rows])
    assert task_named("sentiment").score_bundle(bundle, rows) == pytest.approx(macro_f1(predicted, truth, 3))


def test_a_lead_within_the_noise_margin_is_not_a_promotion_and_promote_version_overrides(
    ws: Workspace, tmp_path: Path
) -> None:
    """The challenger leads on its own split by about one text in a hundred (52 of its texts are its label, 48 the
    champion's): less than one standard error of the difference, so it stays out; on the champion's balanced split
    the two tie, so only the margin holds it back. A person can still promote it."""
    champion_data = {"train": {"positive": 5}, "validation": {"positive": 40, "negative": 40, "neutral": 20}}
    challenger_data = {"train": {"negative": 5}, "validation": {"negative": 52, "positive": 48}}
    first = publish_run(ws, constant_run(ws, tmp_path, "positive", 0.50, champion_data))
    second = publish_run(ws, constant_run(ws, tmp_path, "negative", 0.90, challenger_data))
    assert not second.promoted and second.champion_version == first.version
    client = use_store(ws)
    decision = json.loads(
        Path(client.download_artifacts(second.run_id, f"gate/against-v{first.version}.json", str(tmp_path))).read_text()
    )
    own = decision["splits"][0]
    lead = own["challenger"] - own["champion"]
    assert lead == pytest.approx(
        macro_f1_of_constant("negative", challenger_data["validation"])
        - macro_f1_of_constant("positive", challenger_data["validation"]),
        abs=1e-6,
    )
    assert 0 < lead < decision["margin"], decision
    assert "within the noise margin" in second.gate and "promote --version" in second.gate

    promote(client, "sentiment", second.version)
    assert str(champion(client, "sentiment").version) == second.version
    assert read_history(client, "sentiment")[-1].reason == "forced"


def test_the_noise_margin_is_one_standard_error_of_the_paired_difference() -> None:
    """For a metric that is a mean over texts (accuracy), the standard error of the difference is known:
    sd(per-text difference) / sqrt(n). The margin's batch-means estimate (scores on interleaved parts only, as
    for any corpus metric) must land near it; identical models get no margin."""
    import dataclasses

    from training.registry.gate import NOISE_PARTS, noise_margin

    rng = np.random.default_rng(7)
    rows = [{"text": f"text {i}", "a": int(rng.random() < 0.80), "b": int(rng.random() < 0.75)} for i in range(600)]

    def accuracy(bundle: str, part: list[dict]) -> float:
        return float(np.mean([row[bundle] for row in part]))

    task = dataclasses.replace(task_named("sentiment"), score_bundle=accuracy)
    per_text = np.array([row["a"] - row["b"] for row in rows])
    exact = per_text.std(ddof=1) / np.sqrt(len(rows))
    margin = noise_margin(task, {"challenger": "a", "champion": "b"}, rows)
    # batch means with 10 parts: its own estimate varies by about 1/sqrt(2 * 9) ~ 24% around the truth
    assert 0.5 * exact < margin < 1.6 * exact, (margin, exact)
    assert NOISE_PARTS == 10
    assert noise_margin(task, {"challenger": "a", "champion": "a"}, rows) == 0.0
