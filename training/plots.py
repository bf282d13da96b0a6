"""Figures logged to MLflow, where people would rather look than read."""

from __future__ import annotations

from collections.abc import Sequence

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
