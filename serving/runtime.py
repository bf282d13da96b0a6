"""onnxruntime sessions on the device the settings ask for.

MEMORIA_DEVICE=auto|cpu|cuda (default auto): `auto` uses CUDA when this onnxruntime build offers it (the
onnxruntime-gpu wheel on a machine with a GPU) and the CPU otherwise; `cuda` insists and fails loudly without it.

Two traps seen on a real GPU machine (H100, onnxruntime-gpu 1.31):
- `get_available_providers()` lists CUDA whenever the GPU wheel is installed, but if the CUDA libraries then fail
  to load, the session silently runs on the CPU. So the provider a session ACTUALLY got is checked after it is
  created: under `cuda` a fallback is an error, under `auto` a logged warning. `preload_dlls()` (onnxruntime >= 1.21)
  loads the CUDA/cuDNN libraries that pip installed beside it first, which is what usually makes them load.
- The CUDA provider uses TF32 matmuls by default: probabilities differed from the CPU by 5e-4 (5x the export
  parity tolerance), and by 4e-7 with `use_tf32=0`. Serving what was checked matters more than the speed-up.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from serving.contract.bundle import verified_bytes

# bentoml's logging setup shows loggers under "bentoml"; a plain module logger's INFO lines would be filtered out,
# and the provider a model runs on is what an operator needs to see.
log = logging.getLogger("bentoml.memoria")

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CUDA_OPTIONS = {"use_tf32": "0"}  # full fp32, the precision the export parity check measured

Provider = str | tuple[str, dict[str, Any]]


def providers_for(device: str) -> list[Provider]:
    """The onnxruntime providers, in order of preference, for MEMORIA_DEVICE's value."""
    if device not in DEVICES:
        raise ValueError(f"MEMORIA_DEVICE must be one of {DEVICES}, got {device!r}")
    available = ort.get_available_providers()
    has_cuda = CUDA in available
    if device == "cuda" and not has_cuda:
        raise RuntimeError(f"MEMORIA_DEVICE=cuda but this onnxruntime offers only {available}")
    if device in ("cuda", "auto") and has_cuda:
        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:
            preload()
        return [(CUDA, dict(CUDA_OPTIONS)), CPU]
    return [CPU]


def device_from_env(task: str | None = None) -> str:
    """MEMORIA_<TASK>_DEVICE (e.g. MEMORIA_TRANSLATION_DEVICE=cpu) if set, else MEMORIA_DEVICE, else auto: a
    device per task, since short single requests (sentiment at batch 1, step-by-step decoding) can be faster on
    the CPU than through a GPU's launch and copy overhead."""
    value = os.environ.get(f"MEMORIA_{task.upper()}_DEVICE", "") if task else ""
    return (value or os.environ.get("MEMORIA_DEVICE", "auto")).strip().lower()


def provider_name(provider: Provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


def create_session(
    path: Path,
    providers: list[Provider] | None = None,
    device: str | None = None,
    sha256: str | None = None,
    threads: int | None = None,
) -> ort.InferenceSession:
    """A session for one graph, checked to run on the provider asked for first.

    Threads: `threads`, else MEMORIA_ORT_THREADS (0 = onnxruntime's default, one per core). `device` (default:
    MEMORIA_DEVICE) decides whether a silent fallback from CUDA to the CPU is an error (`cuda`) or a warning (`auto`).
    With `sha256`, the graph is read once, checked and loaded from those bytes (`verified_bytes`)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else int(os.environ.get("MEMORIA_ORT_THREADS", "0"))
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = providers or [CPU]
    model = verified_bytes(path, sha256) if sha256 else str(path)
    session = ort.InferenceSession(model, options, providers=providers)
    wanted, actual = provider_name(providers[0]), session.get_providers()[0]
    if wanted != actual:
        message = f"{path.name}: asked onnxruntime for {wanted} but the session runs on {actual}"
        if (device or device_from_env()) == "cuda":
            raise RuntimeError(message + " (MEMORIA_DEVICE=cuda; are the CUDA and cuDNN libraries loadable?)")
        log.warning("%s; serving on %s", message, actual)
    log.info("loaded %s on %s", path.name, actual)
    return session
