"""The review probe: hand-written out-of-domain review sentences (review_probe.jsonl, see review_probe.md), a
sanity check of how a tweet-trained model reads reviews. Never training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROBE = Path(__file__).parent / "review_probe.jsonl"
# Every probe, by the name its metrics carry (`probe/<name>_accuracy`): the review sentences (four domains) and
# the contrast probe (negation, contrast, sarcasm, intensity; contrast_probe.md).
PROBES = {"review": PROBE, "contrast": Path(__file__).parent / "contrast_probe.jsonl"}


def probe_rows(path: Path = PROBE) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def probe_sets() -> dict[str, list[dict[str, str]]]:
    """Every probe's rows, by name (a probe file not written yet is left out)."""
    return {name: probe_rows(path) for name, path in PROBES.items() if path.is_file()}


def binary_accuracy(probs: np.ndarray, labels: list[str], names: list[str]) -> float:
    """Positive vs negative only: predicted positive iff P(positive) > P(negative)."""
    pos, neg = names.index("positive"), names.index("negative")
    predicted = np.where(probs[:, pos] > probs[:, neg], "positive", "negative")
    return float(np.mean(predicted == np.array(labels)))
