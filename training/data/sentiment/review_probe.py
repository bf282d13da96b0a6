"""The review probe: hand-written out-of-domain review sentences (review_probe.jsonl, see review_probe.md), a
sanity check of how a tweet-trained model reads reviews. Never training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROBE = Path(__file__).parent / "review_probe.jsonl"


def probe_rows() -> list[dict[str, str]]:
    with open(PROBE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def binary_accuracy(probs: np.ndarray, labels: list[str], names: list[str]) -> float:
    """Positive vs negative only: predicted positive iff P(positive) > P(negative)."""
    pos, neg = names.index("positive"), names.index("negative")
    predicted = np.where(probs[:, pos] > probs[:, neg], "positive", "negative")
    return float(np.mean(predicted == np.array(labels)))
