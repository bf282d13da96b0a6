"""Sentiment model folder -> `classifier.onnx` (probabilities), verified against PyTorch, plus an int8 candidate
served only if it keeps the validation macro-F1 (training/export/quantize.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import SentimentConfig, Workspace
from training.data.sentiment.corpus import find_prepared
from training.export.onnx import (
    EXPORT_EXAMPLE,
    PARITY_SHAPES,
    PARITY_TOLERANCE,
    ParityError,
    cpu_session,
    export_onnx,
    random_batch,
)
from training.export.quantize import not_quantized, quantize_classifier
from training.model_folder import RunModel
from training.models.classifier import ProbabilityModel, describe, load_sentiment_net


def export_sentiment(model: RunModel, out_dir: Path, ws: Workspace | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The classifier graph (probabilities, calibrated in-graph), checked against PyTorch; then its int8 candidate.
    Returns the manifest's task part and the parity report."""
    cfg: SentimentConfig = model.config
    vocab_size = model.vocab_sizes["text"]
    net = load_sentiment_net(model)
    probabilities = ProbabilityModel(net).eval()
    rng = np.random.default_rng(0)
    ids, lengths = random_batch(vocab_size, *EXPORT_EXAMPLE, rng)
    path = out_dir / "classifier.onnx"
    export_onnx(
        probabilities,
        (torch.from_numpy(ids), torch.from_numpy(lengths)),
        path,
        ["input_ids", "lengths"],
        ["probabilities"],
        {"input_ids": {0: "batch", 1: "sequence"}, "lengths": {0: "batch"}, "probabilities": {0: "batch"}},
    )
    parity = sentiment_parity(probabilities, path, vocab_size, rng)
    graphs, quantization = _choose_classifier(model, path, ws)
    manifest = {
        "graphs": graphs,
        "labels": list(model.labels),
        "max_input_tokens": cfg.tokenizer.max_tokens,
        "quantization": quantization,
        # in the graph already; recorded so a reader of the bundle knows its probabilities are calibrated
        "calibration": {"temperature": float(net.temperature), "offsets": net.offsets.tolist()},
        "architecture": describe(net),
    }
    return manifest, parity


def _choose_classifier(model: RunModel, fp32: Path, ws: Workspace | None) -> tuple[dict[str, str], dict[str, Any]]:
    """`graphs` and `quantization` of the manifest: `classifier` (what serving loads) is the int8 graph where it
    passed training/export/quantize.py's rule, else the parity-checked fp32 one. Both graphs stay in the bundle
    (`classifier_fp32`, `classifier_int8`), so the decision can be re-checked from the bundle alone."""
    cfg: SentimentConfig = model.config
    graphs = {"classifier": fp32.name, "classifier_fp32": fp32.name}
    if not cfg.export.quantize:
        return graphs, not_quantized("switched off (export.quantize=false)")
    splits, why_not = _run_splits(cfg, ws)
    if splits is None:
        return graphs, not_quantized(why_not)
    int8, section = quantize_classifier(
        fp32, model.tokenizer("text"), list(model.labels), cfg.tokenizer.max_tokens, splits
    )
    graphs["classifier_int8"] = int8.name
    if section["served"] == "int8":
        graphs["classifier"] = int8.name
    return graphs, section


def _run_splits(cfg: SentimentConfig, ws: Workspace | None) -> tuple[dict[str, list[tuple[str, str]]] | None, str]:
    """The validation and test (text, label) pairs the run was trained against, or None and why not."""
    if ws is None:
        return None, "no workspace given to export: the run's prepared data cannot be located"
    prepared = find_prepared(cfg.data, ws)
    if prepared is None:
        where = ws.prepared(cfg.task, cfg.data.source)
        return None, (
            f"the run's prepared {cfg.data.source} data (its data config, unchanged files) are not in {where}: "
            "int8 cannot be checked against fp32 without them"
        )
    return {split: prepared.pairs(split) for split in ("validation", "test")}, ""


def sentiment_parity(model: torch.nn.Module, path: Path, vocab_size: int, rng: np.random.Generator) -> dict:
    """Max |p_onnx - p_torch| over PARITY_SHAPES; raises ParityError beyond PARITY_TOLERANCE."""
    session = cpu_session(path)
    worst = 0.0
    checked = []
    for batch, max_len in PARITY_SHAPES:
        ids, lengths = random_batch(vocab_size, batch, max_len, rng)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        (actual,) = session.run(None, {"input_ids": ids, "lengths": lengths})
        if actual.shape != expected.shape:
            raise ParityError(f"onnx output shape {actual.shape} != torch {expected.shape} at batch {batch}")
        diff = float(np.abs(actual - expected).max())
        worst = max(worst, diff)
        checked.append({"batch": batch, "max_length": max_len, "max_abs_diff": diff})
        if diff > PARITY_TOLERANCE:
            raise ParityError(
                f"probabilities differ by {diff:.2e} > {PARITY_TOLERANCE} at batch {batch}, length {max_len}"
            )
    return {"tolerance": PARITY_TOLERANCE, "max_abs_diff": worst, "shapes": checked}
