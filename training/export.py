"""Model directory logged by a training run -> verified model bundle (ONNX + tokenizer + manifest).

Exports use torch.onnx's TorchScript path (`dynamo=False`, opset 17): with torch 2.13's dynamo exporter only the
first LSTM/GRU export in a process keeps its sequence axis dynamic (later ones silently freeze it), and packed
sequences do not trace at all. Every export is checked against PyTorch with onnxruntime at batch sizes and
sequence lengths different from the export example; a bundle that fails is never written. A sentiment bundle
then gets an int8 candidate of its classifier, served only if it keeps the validation macro-F1
(training/quantize.py).
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from serving.bundle import write_manifest
from training.config import SentimentConfig, Workspace, from_dict
from training.data_summary import data_summary

OPSET = 17
PARITY_TOLERANCE = 1e-4
# (batch, max length) pairs checked; all differ from the export example (2, 7).
PARITY_SHAPES = ((1, 3), (5, 17), (16, 48))
EXPORT_EXAMPLE = (2, 7)


class ParityError(RuntimeError):
    """onnxruntime and PyTorch disagree beyond tolerance: the graph must not be served."""


@dataclass(frozen=True)
class ExportReport:
    bundle_dir: Path
    manifest: dict[str, Any]
    parity: dict[str, Any]


def export_bundle(
    model_dir: Path, out_dir: Path, run_id: str, metrics: dict[str, float], ws: Workspace | None = None
) -> ExportReport:
    """Build and verify a bundle in `out_dir` from a run's `model/` artifacts.

    `ws` locates the run's prepared data, on which a sentiment export scores its int8 candidate; without it (or
    without the data) the bundle serves fp32 and its manifest says why."""
    spec = json.loads((model_dir / "spec.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec["task"] == "sentiment":
        manifest, parity = _export_sentiment(spec, model_dir, out_dir, ws)
    else:
        from training.export_translation import export_translation

        manifest, parity = export_translation(spec, model_dir, out_dir)
    for name in spec["tokenizers"].values():
        shutil.copy2(model_dir / name, out_dir / name)
    input_tokenizer = model_dir / spec["tokenizers"]["text" if spec["task"] == "sentiment" else "source"]
    data = data_summary(from_dict(spec["task"], spec["config"]), ws, input_tokenizer, manifest["max_input_tokens"])
    manifest.update(
        task=spec["task"],
        tokenizers=spec["tokenizers"],
        config=spec["config"],
        metrics={k: float(v) for k, v in metrics.items()},
        parity=parity,
        data=data,  # what the model card (GET /models) shows of the training data: training/data_summary.py
        source_run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
    )
    full = write_manifest(out_dir, manifest)
    return ExportReport(out_dir, full, parity)


def versions() -> dict[str, str]:
    import lightning
    import tokenizers

    return {
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "tokenizers": tokenizers.__version__,
        "opset": str(OPSET),
    }


def export_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns about itself and about RNN batch sizes
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
        )
    onnx.checker.check_model(str(path))


def cpu_session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def random_batch(vocab_size: int, batch: int, max_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random token ids (never special tokens) with random lengths; the first row has the full length."""
    lengths = rng.integers(1, max_len + 1, size=batch).astype(np.int64)
    lengths[0] = max_len
    ids = rng.integers(4, vocab_size, size=(batch, max_len)).astype(np.int64)
    ids[np.arange(max_len)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


def _export_sentiment(spec: dict, model_dir: Path, out_dir: Path, ws: Workspace | None) -> tuple[dict, dict]:
    from training.models.classifier import ProbabilityModel, describe, load_sentiment_net

    cfg = from_dict("sentiment", spec["config"])
    net, _ = load_sentiment_net(model_dir)
    model = ProbabilityModel(net).eval()
    rng = np.random.default_rng(0)
    ids, lengths = random_batch(spec["vocab_size"], *EXPORT_EXAMPLE, rng)
    path = out_dir / "classifier.onnx"
    export_onnx(
        model,
        (torch.from_numpy(ids), torch.from_numpy(lengths)),
        path,
        ["input_ids", "lengths"],
        ["probabilities"],
        {"input_ids": {0: "batch", 1: "sequence"}, "lengths": {0: "batch"}, "probabilities": {0: "batch"}},
    )
    parity = sentiment_parity(model, path, spec["vocab_size"], rng)
    graphs, quantization = _choose_classifier(cfg, spec, model_dir, path, ws)
    manifest = {
        "graphs": graphs,
        "labels": spec["labels"],
        "max_input_tokens": cfg.tokenizer.max_tokens,
        "quantization": quantization,
        # in the graph already; recorded so a reader of the bundle knows its probabilities are calibrated
        "calibration": {"temperature": float(net.temperature), "offsets": net.offsets.tolist()},
        "architecture": describe(net),
    }
    return manifest, parity


def _choose_classifier(
    cfg: SentimentConfig, spec: dict, model_dir: Path, fp32: Path, ws: Workspace | None
) -> tuple[dict[str, str], dict[str, Any]]:
    """`graphs` and `quantization` of the manifest: `classifier` (what serving loads) is the int8 graph where it
    passed training/quantize.py's rule, else the parity-checked fp32 one. Both graphs stay in the bundle
    (`classifier_fp32`, `classifier_int8`), so the decision can be re-checked from the bundle alone."""
    from training.quantize import not_quantized, quantize_classifier

    graphs = {"classifier": fp32.name, "classifier_fp32": fp32.name}
    if not cfg.export.quantize:
        return graphs, not_quantized("switched off (export.quantize=false)")
    splits, why_not = _run_splits(cfg, ws)
    if splits is None:
        return graphs, not_quantized(why_not)
    tokenizer = model_dir / spec["tokenizers"]["text"]
    int8, section = quantize_classifier(fp32, tokenizer, spec["labels"], cfg.tokenizer.max_tokens, splits)
    graphs["classifier_int8"] = int8.name
    if section["served"] == "int8":
        graphs["classifier"] = int8.name
    return graphs, section


def _run_splits(cfg: SentimentConfig, ws: Workspace | None) -> tuple[dict[str, list[tuple[str, str]]] | None, str]:
    """The validation and test (text, label) pairs the run was trained against, or None and why not."""
    if ws is None:
        return None, "no workspace given to export: the run's prepared data cannot be located"
    from training.data.sentiment_corpus import find_prepared

    prepared = find_prepared(cfg.data, ws)
    if prepared is None:
        where = ws.prepared("sentiment", cfg.data.source)
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
