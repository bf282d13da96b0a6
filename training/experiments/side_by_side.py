"""What the commands that compare bundles side by side share (sentiment_bundles.py, translation_bundles.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from serving.contract.bundle import BundleError, load_bundle
from training.experiments.study import REFERENCE


def load_predictors(paths: Sequence[Path], task: str, predictor: Callable[[Any], Any]) -> dict[str, Any] | None:
    """Serving's predictor of each bundle, by "#i path" (the same folder may be given twice: a check of the
    measurement's noise), or None after printing why a folder is not a (trusted) bundle of `task`."""
    predictors = {}
    for i, path in enumerate(paths):
        try:
            predictors[f"#{i + 1} {path}"] = predictor(load_bundle(path, task))
        except BundleError as e:  # the message names the folder
            print(f"error: {e}", file=sys.stderr)
            return None
    return predictors


def with_reference(predictors: dict[str, Any]) -> dict[str, Any]:
    """The same predictors, the first named REFERENCE: the entry study.latency_ratios measures against."""
    return {REFERENCE if i == 0 else name: p for i, (name, p) in enumerate(predictors.items())}


def graph_megabytes(bundle_dir: Path) -> float:
    return sum(p.stat().st_size for p in bundle_dir.glob("*.onnx")) / 1e6
