"""The optimizer every training loop of memoria uses."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adamw(
    parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, fused: bool = True
) -> torch.optim.AdamW:
    """AdamW with every parameter's update in one fused kernel where the device has one (CPU and CUDA); `fused`
    false: torch's reference implementation.

    The reference implementation loops over parameters in Python, op by op: several passes over each embedding table
    per step (a square root, a division, the moment updates). The fused kernel makes the sentiment step 1.04x faster
    at a vocabulary of 12,000 and 1.09x at 23,652 on 2 CPU cores (tests/benchmarks/bench_sentiment_step.py;
    docs/measured.md, "Sentiment off the tweets"). The same algorithm; its rounding differs, so a run is another draw of
    the same recipe. Translation's step measured no faster in the benchmark (two runs: 1.04x, 0.97x), but its epochs
    ran 4-5% faster in training, so its presets take it too (OptimConfig.fused_adamw, config/translation.py)."""
    params = [p for p in parameters if p.requires_grad]
    if fused and all(p.device.type in ("cpu", "cuda") for p in params):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=False)
