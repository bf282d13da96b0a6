"""The sentiment study's variants are valid configs, differ from each other, and the report names every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.config import dumps
from training.data.sentiment.review_probe import binary_accuracy
from training.experiments.study import REFERENCE, VARIANTS, config_digest, paired_bootstrap, preset_mark, write_report


def test_every_variant_is_a_valid_and_distinct_config() -> None:
    configs = [v.config() for v in VARIANTS]  # an override typo raises here
    assert len({config_digest(c) for c in configs}) == len(VARIANTS)
    assert VARIANTS[0].name == REFERENCE
    reference = configs[0]
    assert reference.ngrams.buckets == 0 and reference.ensemble.members == 1 and reference.model.cell == "lstm"
    assert '"pretrain"' in dumps(reference)
    # the table says which row `make run` trains, and which `PRESET=full`: exactly one each
    marks = [preset_mark(v) for v in VARIANTS]
    assert sum("`default`" in m for m in marks) == 1 and sum("`full`" in m for m in marks) == 1


def test_binary_accuracy_ignores_neutral() -> None:
    probs = np.array([[0.1, 0.8, 0.1 + 1e-3], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]])
    assert binary_accuracy(probs, ["positive", "negative", "negative"], ["negative", "neutral", "positive"]) == 2 / 3


def test_report_has_both_peers_and_every_row(tmp_path: Path) -> None:
    row = {
        "val_macro_f1": 0.74,
        "test_macro_f1": 0.75,
        "test_f1_negative": 0.8,
        "test_f1_neutral": 0.7,
        "test_f1_positive": 0.66,
        "ece_before": 0.06,
        "ece_after": 0.02,
        "review_probe_accuracy": 0.8,
        "contrast_probe_accuracy": 0.86,
        "served": "int8",
        "vs_peer": {"delta": 0.002, "low": -0.011, "high": 0.015},
        "vs_vader": {"delta": 0.151, "low": 0.132, "high": 0.170},
        "ratio_batch_1": 1.0,
        "ratio_batch_32": 1.1,
        "epochs": 5,
        "train_minutes": 5.2,
    }
    peer = {
        "val_macro_f1": 0.74,
        "test_macro_f1": 0.75,
        "test_f1_negative": 0.8,
        "test_f1_neutral": 0.7,
        "test_f1_positive": 0.66,
    }
    vader = {**peer, "review_accuracy": 0.84, "contrast_accuracy": 0.71}
    table = write_report({v.name: row for v in VARIANTS}, peer, vader, tmp_path / "study")
    lines = table.splitlines()
    assert len(lines) == 2 + 2 + len(VARIANTS)  # header, the two peers, every row
    assert any(line.startswith("| VADER (peer) |") and "| 0.840 | 0.710 |" in line for line in lines)
    assert all(any(line.startswith(f"| {v.name} |") for line in lines) for v in VARIANTS)
    assert (tmp_path / "study.md").exists() and (tmp_path / "study.json").exists()
    assert "+0.2 [-1.1, +1.5]" in table and "+15.1 [+13.2, +17.0]" in table and "| 0.800 | 0.860 |" in table


def test_paired_bootstrap_brackets_the_difference_and_sees_a_real_one() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 3000)
    good = np.where(rng.random(3000) < 0.8, gold, rng.integers(0, 3, 3000))
    same = paired_bootstrap(good, good, gold, resamples=200)
    assert same == {"delta": 0.0, "low": 0.0, "high": 0.0}
    worse = np.where(rng.random(3000) < 0.7, gold, rng.integers(0, 3, 3000))
    gap = paired_bootstrap(good, worse, gold, resamples=300)
    assert 0 < gap["low"] < gap["delta"] < gap["high"]
