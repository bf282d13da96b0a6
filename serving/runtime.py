"""onnxruntime sessions on the device the settings ask for.

MEMORIA_DEVICE=auto|cpu|cuda (default auto): `auto` uses CUDA when this onnxruntime build offers it (the
onnxruntime-gpu wheel on a machine with a GPU) and the CPU otherwise; `cuda` insists and fails loudly without it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def providers_for(device: str) -> list[str]:
    if device not in DEVICES:
        raise ValueError(f"MEMORIA_DEVICE must be one of {DEVICES}, got {device!r}")
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise RuntimeError(f"MEMORIA_DEVICE=cuda but this onnxruntime offers only {available}")
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def device_from_env() -> str:
    return os.environ.get("MEMORIA_DEVICE", "auto").strip().lower()


def create_session(path: Path, providers: list[str] | None = None) -> ort.InferenceSession:
    """A session for one graph. Threads: MEMORIA_ORT_THREADS (0 = onnxruntime's default, one per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("MEMORIA_ORT_THREADS", "0"))
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    log.info("loaded %s on %s", path.name, session.get_providers()[0])
    return session
