"""Temperature scaling and ECE on synthetic logits whose true probabilities are known by construction."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from training.metrics.calibration import (
    CalibrationReport,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)
from training.plots import close, reliability_diagram_figure


def synthetic(seed: int, n: int = 4000, classes: int = 3, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true logits); the model reports true logits * scale (scale 1 = calibrated)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 1.5, size=(n, classes))
    cumulative = np.cumsum(softmax(true_logits), axis=1)
    labels = np.minimum((cumulative < rng.random((n, 1))).sum(axis=1), classes - 1)
    return true_logits * scale, labels


def test_over_confident_logits_get_t_above_one_and_lower_held_out_ece() -> None:
    # given: a model whose logits are 4x too sharp, and a held-out split drawn the same way
    logits, labels = synthetic(seed=0, scale=4.0)
    held_logits, held_labels = synthetic(seed=1, scale=4.0)
    # when
    temperature = fit_temperature(logits, labels)
    # then: T undoes most of the scaling, and the held-out split is better calibrated for it
    assert 3.0 < temperature < 5.0
    before = expected_calibration_error(softmax(held_logits), held_labels)
    after = expected_calibration_error(softmax(held_logits, temperature), held_labels)
    assert after < before / 2


def test_under_confident_logits_get_t_below_one() -> None:
    logits, labels = synthetic(seed=2, scale=0.25)
    assert 0.15 < fit_temperature(logits, labels) < 0.4


def test_fit_is_deterministic() -> None:
    logits, labels = synthetic(seed=3, scale=2.0)
    assert fit_temperature(logits, labels) == fit_temperature(logits, labels)


def test_perfectly_separated_data_stays_finite_and_in_bounds() -> None:
    # given: every prediction right with a margin, so the NLL keeps falling as T -> 0
    logits = np.array([[3.0, 0.0], [0.0, 3.0]] * 50)
    labels = np.array([0, 1] * 50)
    # then: the fit sharpens (T < 1) but never divides by ~0 or leaves the clamp
    assert 0.05 <= fit_temperature(logits, labels) < 1.0


def test_temperature_never_changes_the_argmax() -> None:
    logits, labels = synthetic(seed=4, scale=3.0, classes=5)
    temperature = fit_temperature(logits, labels)
    for t in (temperature, 0.05, 20.0):
        np.testing.assert_array_equal(softmax(logits, t).argmax(axis=1), logits.argmax(axis=1))


def test_softmax_is_stable_for_huge_logits() -> None:
    probs = softmax(np.array([[1000.0, 999.0], [-1000.0, -1000.0]]), temperature=0.05)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], [0.5, 0.5])


def test_calibrated_probabilities_have_small_ece_equal_to_the_bin_sum() -> None:
    # given: probabilities that are the true ones
    logits, labels = synthetic(seed=5, n=20000)
    probs = softmax(logits)
    # when
    ece = expected_calibration_error(probs, labels)
    table = reliability_bins(probs, labels)
    # then: ECE is small and is exactly what the bins (the diagram) add up to
    assert ece < 0.03
    assert sum(b["count"] for b in table) == len(labels)
    assert ece == pytest.approx(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in table) / len(labels))


def test_confidence_of_exactly_one_lands_in_the_last_bin() -> None:
    table = reliability_bins(np.array([[0.0, 1.0]]), np.array([0]), bins=15)
    assert table == [{"lower": pytest.approx(14 / 15), "upper": 1.0, "count": 1, "confidence": 1.0, "accuracy": 0.0}]
    assert expected_calibration_error(np.array([[0.0, 1.0]]), np.array([0])) == 1.0


def test_bins_are_closed_on_the_right() -> None:
    # a confidence of exactly 0.5 belongs to (0, 0.5], not (0.5, 1]
    table = reliability_bins(np.array([[0.5, 0.5]]), np.array([0]), bins=2)
    assert (table[0]["lower"], table[0]["upper"]) == (0.0, 0.5)


def test_empty_bins_are_skipped() -> None:
    # given: confidences 0.95, 0.95 (one right) and 0.55 (right): two of ten bins hold anything
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.45, 0.55]])
    labels = np.array([0, 1, 1])
    # when
    table = reliability_bins(probs, labels, bins=10)
    # then: only those two bins appear, and ECE = (2 * |0.5 - 0.95| + 1 * |1 - 0.55|) / 3
    assert [(b["lower"], b["count"]) for b in table] == [(pytest.approx(0.5), 1), (pytest.approx(0.9), 2)]
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.45)


def test_calibrate_reports_every_split_and_flat_metric_names() -> None:
    splits = {"validation": synthetic(seed=6, scale=4.0), "test": synthetic(seed=7, scale=4.0)}
    report = calibrate(splits)
    assert isinstance(report, CalibrationReport)
    assert report.temperature == fit_temperature(*splits["validation"])
    assert report.ece_after["test"] < report.ece_before["test"]
    assert set(report.metrics()) == {
        "calibration/temperature",
        "calibration/ece_before_validation",
        "calibration/ece_before_test",
        "calibration/ece_after_validation",
        "calibration/ece_after_test",
    }
    with pytest.raises(KeyError):
        calibrate({"test": splits["test"]})


def test_reliability_diagram_draws_and_closes() -> None:
    logits, labels = synthetic(seed=8, n=200, scale=4.0)
    before = reliability_bins(softmax(logits), labels)
    after = reliability_bins(softmax(logits, 4.0), labels)
    fig = reliability_diagram_figure(before, after, "reliability (test)")
    assert fig.axes[0].get_xlim() == (0.0, 1.0)
    assert fig.axes[0].get_ylim() == (0.0, 1.0)
    assert any("ECE" in text.get_text() for text in fig.axes[0].get_legend().get_texts())
    close(fig)
    assert not plt.fignum_exists(fig.number)
