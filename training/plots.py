"""Figures logged to MLflow, where people would rather look than read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_figure(matrix: np.ndarray, labels: Sequence[str], title: str) -> Figure:
    """Counts in each cell, colour by row-normalised rate (recall), true labels on rows."""
    matrix = np.asarray(matrix, dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if rates[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(matrix[i, j])}\n{rates[i, j]:.0%}", ha="center", va="center", color=colour)
    fig.tight_layout()
    return fig


def attention_figure(weights: np.ndarray, source: Sequence[str], target: Sequence[str], title: str) -> Figure:
    """Heatmap of attention: one row per generated target token, one column per source token."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(source) + 1.5), max(3.0, 0.35 * len(target) + 1.5)), dpi=110)
    ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(target)), target, fontsize=8)
    ax.set_xlabel("source (Spanish)")
    ax.set_ylabel("output (English)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def reliability_diagram_figure(before: Sequence[dict], after: Sequence[dict], title: str) -> Figure:
    """Accuracy vs confidence per bin (from calibration.reliability_bins), before and after temperature scaling.

    A calibrated model sits on the diagonal. The small lower axes shows how many predictions each bin holds, since
    a point far from the diagonal matters little when its bin is nearly empty.
    """
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(4.6, 5.2), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for bins, name, colour in ((before, "before", "tab:red"), (after, "after", "tab:blue")):
        confidence = [b["confidence"] for b in bins]
        accuracy = [b["accuracy"] for b in bins]
        ax.plot(confidence, accuracy, marker="o", markersize=4, color=colour, label=f"{name} (ECE {_ece(bins):.3f})")
        centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
        widths = [b["upper"] - b["lower"] for b in bins]
        counts.bar(centres, [b["count"] for b in bins], width=widths, color=colour, alpha=0.35, edgecolor=colour)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    counts.set_xlim(0, 1)
    counts.set_xlabel("confidence (top probability)")
    counts.set_ylabel("count")
    fig.tight_layout()
    return fig


def _ece(bins: Sequence[dict]) -> float:
    # Same formula as calibration.expected_calibration_error, recomputed here so plotting does not import torch.
    total = sum(b["count"] for b in bins)
    return sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(total, 1)


def close(fig: Figure) -> None:
    plt.close(fig)


# --- gradient flow and sweeps (training/train/gradient_flow.py, training/experiments/sweep.py) ------------------


def _two_log_panels(
    titles: tuple[str, str], xlabel: str, ylabel: str, title: str, draw: Callable[[Any, int], None]
) -> Figure:
    """Two side-by-side panels on one log y-axis, `draw(ax, column)` filling each, the legend on the left one."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110, sharey=True)
    for column, (ax, name) in enumerate(zip(axes, titles, strict=True)):
        draw(ax, column)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(name, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def gradient_flow_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str) -> Figure:
    """||dL/dh_t|| against the distance from the loss (steps before the last one), log scale, one line per label:
    left the gradient that reaches h_t only back through time from the final state, right every path the model
    has (max pooling or attention reach each step directly). `curves` maps a label to (through time, all paths),
    each indexed by time step t."""

    def draw(ax: Any, column: int) -> None:
        for label, pair in curves.items():
            norms = np.asarray(pair[column], dtype=float)[::-1]  # index by distance: 0 = the last step
            shown = np.where(norms > 0, norms, np.nan)  # a zero gradient has no place on a log axis
            ax.plot(np.arange(len(norms)), shown, linewidth=1.4, label=label)

    return _two_log_panels(
        ("through time only (from the final state)", "all paths"),
        "steps before the last one (distance from the loss)",
        "mean per-example ||dL/dh_t||",
        title,
        draw,
    )


def grad_norm_history_figure(
    histories: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], title: str
) -> Figure:
    """Per-step gradient norms of several runs, log scale: left before clipping, right after (measured on the
    clipped gradients). `histories` maps a label to {"train/grad_norm": (steps, values), "train/grad_norm_clipped":
    ...}. Without clipping the two panels match and the spikes reach the update; with it the right panel is flat."""
    keys = ("train/grad_norm", "train/grad_norm_clipped")

    def draw(ax: Any, column: int) -> None:
        for label, series in histories.items():
            steps, values = series.get(keys[column], ((), ()))
            ax.plot(steps, values, linewidth=1.0, marker="." if len(steps) < 40 else None, label=label)
        ax.xaxis.get_major_locator().set_params(integer=True)

    return _two_log_panels(
        ("before clipping", "after clipping (what the optimiser used)"),
        "training step (maximum over each logging window)",
        "global gradient L2 norm",
        title,
        draw,
    )


def scores_by_point_figure(labels: Sequence[str], scores: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Grouped bars: one group per sweep point, one bar per metric (e.g. the validation selection metric and the
    test metric), the value written on each bar. NaN (a failed point) leaves a gap."""
    fig, ax = plt.subplots(figsize=(min(14.0, max(5.0, 1.2 * len(labels) + 2.0)), 4.2), dpi=110)
    width = 0.8 / max(1, len(scores))
    positions = np.arange(len(labels))
    for k, (name, values) in enumerate(scores.items()):
        values = np.asarray(values, dtype=float)
        bars = ax.bar(positions + (k - (len(scores) - 1) / 2) * width, np.nan_to_num(values), width, label=name)
        for bar, value in zip(bars, values):
            if np.isfinite(value):
                ax.annotate(
                    f"{value:.3f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def drift_signal_figure(
    signal: str, bins: Sequence[str], reference: Sequence[float], window: Sequence[float], distance: float, split: str
) -> Figure:
    """Share of texts per bin: the bundle's reference split (grey) beside the logged window (blue)."""
    x = np.arange(len(bins))
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=120)
    ax.bar(x - 0.2, reference, width=0.4, color="#9e9e9e", label=f"training profile ({split})")
    ax.bar(x + 0.2, window, width=0.4, color="#1f77b4", label="inference log window")
    ax.set_xticks(x, bins, rotation=30, ha="right")
    ax.set_ylabel("share of texts")
    ax.set_title(f"{signal}: Jensen-Shannon distance {distance:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
