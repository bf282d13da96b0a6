"""Training cost of one recurrent encoder layer on a batch of texts of different lengths: torch's packed path
(`RecurrentStack.forward`: pack_padded_sequence, the fused module, pad_packed_sequence) against the padded one
training takes (`RecurrentStack.run_from_zero`: each direction over the padded batch, the backward one over each
text reversed within its length), forward and backward, with the same outputs, final states and gradients
(asserted before timing).

Shapes: sentiment `default`'s members (batch 128, about 27 tokens, inputs of 170 = learned embedding 64 + GloVe 100
+ lexicon features, bidirectional, 128 units) and translation `default`'s encoder (batch 64, about 20 tokens,
embedding 128, bidirectional GRU of 256). Lengths within a batch differ by up to 4 tokens, as the length-bucketed
loader makes them. The paths alternate in rounds within one process, so their ratio is measured under the same load.

Usage: `python -m tests.benchmarks.bench_recurrent_layer` (no data needed).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from functools import partial

import torch

from training.models.cells import RecurrentStack

ROUNDS = 4
REPEATS = 10
SHAPES = [  # (name, cell, batch, steps, inputs, hidden)
    ("sentiment member, LSTM", "lstm", 128, 27, 170, 128),
    ("sentiment member, GRU", "gru", 128, 27, 170, 128),
    ("translation encoder, GRU", "gru", 64, 20, 128, 256),
]


def _batch(batch: int, steps: int, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(max(1, steps - 4), steps + 1, (batch,))
    lengths[0] = steps
    return torch.randn(batch, steps, inputs), lengths


def _packed(stack: RecurrentStack, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outputs, state = stack(x, lengths)
    return outputs, state[..., : stack.hidden_size]


def use_packed_path(model: torch.nn.Module) -> None:
    """Make every recurrent stack in `model` train on the packed path, as training did before `run_from_zero` took
    the padded one (the other benchmarks' `packed` configurations)."""
    for stack in model.modules():
        if isinstance(stack, RecurrentStack):
            stack.run_from_zero = partial(_packed, stack)  # type: ignore[method-assign]


def _seconds(run: Callable, stack: RecurrentStack, x: torch.Tensor, lengths: torch.Tensor) -> float:
    begun = time.perf_counter()
    for _ in range(REPEATS):
        outputs, final = run(stack, x, lengths)
        (outputs.sum() + final.sum()).backward()
    return (time.perf_counter() - begun) / REPEATS


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for name, cell, batch, steps, inputs, hidden in SHAPES:
        stack = RecurrentStack(cell, inputs, hidden, bidirectional=True).train()
        x, lengths = _batch(batch, steps, inputs)
        fast_out, fast_h = stack.run_from_zero(x, lengths)
        packed_out, packed_h = _packed(stack, x, lengths)
        torch.testing.assert_close(fast_out, packed_out, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast_h, packed_h, atol=1e-5, rtol=0)
        x.requires_grad_()
        rows.append((name, stack, x, lengths, [], []))
    for _ in range(ROUNDS):
        for _, stack, x, lengths, packed, padded in rows:
            packed.append(_seconds(_packed, stack, x, lengths))
            padded.append(_seconds(RecurrentStack.run_from_zero, stack, x, lengths))
    print(f"{platform.node()}: torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'layer':>26} | packed ms (best of {ROUNDS - 1}) | padded ms | x packed")
    for name, _, _, _, packed, padded in rows:
        best_packed, best_padded = min(packed[1:]), min(padded[1:])  # the first round warms caches up
        print(f"{name:>26} | {best_packed * 1e3:8.1f} | {best_padded * 1e3:8.1f} | {best_packed / best_padded:.2f}")


if __name__ == "__main__":
    main()
