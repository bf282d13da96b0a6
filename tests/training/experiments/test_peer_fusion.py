"""A bundle's probabilities averaged with the TF-IDF peer's (training/experiments/peer_fusion.py), on a tiny real
exported bundle and a tiny split."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from serving.contract.bundle import load_bundle
from serving.sentiment import SentimentPredictor
from tests.training.export.test_export_sentiment import LABELS, save_model_dir
from tests.training.models.test_lexicon import tokenizer_with_lexicon
from training.config import RecurrentConfig
from training.experiments import peer_fusion
from training.models.classifier import SentimentNet
from training.tasks import export_model_folder, preset

WORDS = {"negative": ["awful", "late", "rude"], "neutral": ["flight", "gate", "seat"], "positive": ["great", "kind"]}


def write_split(folder: Path) -> dict[str, list[dict]]:
    rng = random.Random(0)
    splits = {}
    for name, size in (("train", 60), ("validation", 30), ("test", 30)):
        rows = []
        for i in range(size):
            label = LABELS[i % 3]
            words = [rng.choice(WORDS[label]) for _ in range(3)] + [rng.choice(WORDS["neutral"])]
            rows.append({"id": f"{name}-{i}", "text": " ".join(words), "label": label})
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        splits[name] = rows
    return splits


def test_the_table_has_a_row_per_peer_weight_and_weight_zero_is_the_bundle_alone(tmp_path: Path, capsys) -> None:
    torch.manual_seed(3)
    (tmp_path / "split").mkdir()
    splits = write_split(tmp_path / "split")
    cfg = replace(preset("sentiment", "smoke"), model=RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8))
    tokenizer = tokenizer_with_lexicon()
    save_model_dir(tmp_path / "model", SentimentNet(tokenizer.get_vocab_size(), len(LABELS), cfg), tokenizer, cfg)
    bundle = export_model_folder(tmp_path / "model", tmp_path / "bundle", "r1", {}).bundle_dir

    assert peer_fusion.main(["--data", str(tmp_path / "split"), str(bundle)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("peer: C=")
    rows = [line for line in out.splitlines() if line.startswith("| 0.")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {w:.1f}" for w in peer_fusion.PEER_WEIGHTS]

    alone = SentimentPredictor(load_bundle(bundle, "sentiment"))
    gold = {name: np.array([LABELS.index(r["label"]) for r in splits[name]]) for name in ("validation", "test")}
    expected = [
        f1_score(gold[name], alone.probabilities([r["text"] for r in splits[name]]).argmax(1), average="macro")
        for name in ("validation", "test")
    ]
    assert rows[0].split(" | ")[1:3] == [f"{v:.4f}" for v in expected]


def test_a_folder_that_is_no_bundle_is_refused_with_its_name(tmp_path: Path, capsys) -> None:
    write_split(tmp_path)
    assert peer_fusion.main(["--data", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "split" not in err


def test_a_data_folder_without_the_splits_is_refused_with_its_name(tmp_path: Path, capsys) -> None:
    assert peer_fusion.main(["--data", str(tmp_path / "nowhere"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "train, validation, test" in err
