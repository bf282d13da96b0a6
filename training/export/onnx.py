"""What every export shares: the ONNX writer, the parity tolerance and shapes, random test batches, versions.

Exports use torch.onnx's TorchScript path (`dynamo=False`, opset 17): with torch 2.13's dynamo exporter only the
first LSTM/GRU export in a process keeps its sequence axis dynamic (later ones silently freeze it), and packed
sequences do not trace at all. Every export is checked against PyTorch with onnxruntime at batch sizes and
sequence lengths different from the export example (PARITY_SHAPES); a bundle that fails is never written.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

OPSET = 17
PARITY_TOLERANCE = 1e-4
# (batch, max length) pairs checked; all differ from the export example (2, 7).
PARITY_SHAPES = ((1, 3), (5, 17), (16, 48))
EXPORT_EXAMPLE = (2, 7)


class ParityError(RuntimeError):
    """onnxruntime and PyTorch disagree beyond tolerance: the graph must not be served."""


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
