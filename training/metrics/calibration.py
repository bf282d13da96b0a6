"""Temperature scaling: make the probabilities the API returns mean what they say.

The service returns class probabilities, not just labels, so "0.9" should be right about 90% of the time.
Recurrent classifiers trained with cross-entropy tend to be over-confident. Temperature scaling (Guo et al. 2017,
"On Calibration of Modern Neural Networks") divides the logits by one scalar T > 0, fitted on the validation
split by minimising the negative log-likelihood. Dividing every logit of a row by the same positive number never
changes which one is largest, so accuracy and the confusion matrix stay exactly as they were.

Calibration is measured by the expected calibration error (ECE): the gap between confidence (top probability) and
accuracy, averaged over equal-width confidence bins and weighted by how many predictions fall in each bin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

# Bounds on T: beyond them the fit is chasing a degenerate split (e.g. perfectly separated validation data drives
# T -> 0), and such a temperature would not transfer to new inputs.
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64; subtracting the row max keeps exp() from overflowing."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exps = np.exp(scaled)
    return exps / exps.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises mean cross-entropy of softmax(logits / T) against labels, within the bounds above.

    One parameter and a convex loss (the NLL is convex in 1/T): a bounded scalar search over log T (scipy's Brent)
    finds it in a few dozen evaluations, deterministically, in numpy alone. (An LBFGS fit in torch was slow to the
    point of hanging when its thread pool shared 2 cores with a training run.)
    """
    x, y = _checked(logits, labels)
    picked = x[np.arange(len(y)), y]

    def nll(log_t: float) -> float:
        scaled = x / math.exp(log_t)
        top = scaled.max(axis=1)
        log_norm = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float(np.mean(log_norm - picked / math.exp(log_t)))

    bounds = (math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE))
    result = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    return float(np.clip(math.exp(result.x), MIN_TEMPERATURE, MAX_TEMPERATURE))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> list[dict[str, float]]:
    """Top-label confidence vs accuracy in equal-width bins (lower, upper], one dict per NON-empty bin.

    Empty bins are left out: their mean confidence and accuracy are undefined, and NaN is not valid JSON.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or len(probs) != len(labels) or len(probs) == 0:
        raise ValueError(f"need [N, C] probabilities and [N] labels with N > 0, got {probs.shape} and {labels.shape}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right=True makes bins closed on the right, (lower, upper]: a confidence of exactly 1.0 lands in the last bin.
    index = np.digitize(confidence, edges[1:-1], right=True)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                {
                    "lower": float(edges[b]),
                    "upper": float(edges[b + 1]),
                    "count": int(mask.sum()),
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: sum over bins of count * |accuracy - confidence|, divided by the number of predictions.

    Computed from reliability_bins so the number logged and the diagram drawn can never disagree.
    """
    table = reliability_bins(probs, labels, bins)
    total = sum(b["count"] for b in table)
    return sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in table) / total


@dataclass(frozen=True)
class CalibrationReport:
    """The fitted temperature and the ECE of each split before and after applying it."""

    temperature: float
    ece_before: dict[str, float]
    ece_after: dict[str, float]

    def metrics(self) -> dict[str, float]:
        """Flat metric names for mlflow.log_metrics."""
        out = {"calibration/temperature": self.temperature}
        out.update({f"calibration/ece_before_{split}": v for split, v in self.ece_before.items()})
        out.update({f"calibration/ece_after_{split}": v for split, v in self.ece_after.items()})
        return out


def calibrate(
    logits_by_split: Mapping[str, tuple[np.ndarray, np.ndarray]], fit_on: str = "validation"
) -> CalibrationReport:
    """Fit T on one split (validation: the test split must stay unseen) and report ECE before/after on every split."""
    if fit_on not in logits_by_split:
        raise KeyError(f"no split {fit_on!r} to fit the temperature on; have {sorted(logits_by_split)}")
    temperature = fit_temperature(*logits_by_split[fit_on])
    before, after = {}, {}
    for split, (logits, labels) in logits_by_split.items():
        before[split] = expected_calibration_error(softmax(logits), labels)
        after[split] = expected_calibration_error(softmax(logits, temperature), labels)
    return CalibrationReport(temperature=temperature, ece_before=before, ece_after=after)


def _checked(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # float64 so the search sees a smooth loss surface
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"need [N, C] logits and [N] labels with N > 0, got {x.shape} and {y.shape}")
    return x, y
