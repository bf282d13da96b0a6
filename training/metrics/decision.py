"""Decision offsets: per-class values added to the logits, chosen on the validation split for macro-F1.

The alternative to a class-weighted loss for a rare class (positive is 18% of the tweets): train on the plain
loss, whose probabilities estimate the real class frequencies, then move the decision boundary instead of the
training signal (logit adjustment; Menon et al., 2021). Both are measured side by side (docs/measured.md, the sentiment
study).
"""

from __future__ import annotations

import itertools

import numpy as np

GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)  # offsets of the classes after the first, relative to it


def macro_f1(pred: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    confusion = np.bincount(labels * num_labels + pred, minlength=num_labels**2).reshape(num_labels, num_labels)
    tp = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return float(np.mean(np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)))


def tune_offsets(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Offsets [C] (the first class's is 0) that maximise macro-F1 of argmax(logits + offsets); ties go to the
    smallest move, so a flat optimum leaves the model as it was."""
    num_labels = logits.shape[1]
    best, best_key = np.zeros(num_labels), (macro_f1(logits.argmax(1), labels, num_labels), 0.0)
    for combo in itertools.product(GRID, repeat=num_labels - 1):
        offsets = np.array((0.0, *combo))
        key = (macro_f1((logits + offsets).argmax(1), labels, num_labels), -float(np.abs(offsets).sum()))
        if key > best_key:
            best, best_key = offsets, key
    return best
