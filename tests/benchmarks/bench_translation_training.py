"""Training throughput of the translation model: sentences and target tokens per second of a full training step
(forward, loss, backward, clipping, AdamW) for each configuration, on real prepared training pairs, and how far
that is from what the machine's matrix multiply can do.

A configuration is `STYLE:BATCH` with optional `:vN` (target vocabulary N instead of the preset's), `:tN` (N
torch threads instead of all), `:bf16` (forward and loss under bfloat16 autocast, as Lightning's
`precision="bf16-mixed"` on a CPU), `:sN` (a sampled softmax over N candidate tokens in training's loss,
training/train/sampled_softmax.py), `:eN` (target embedding dimension N: the decoder's input table, its readout and
the tied output layer), `:dot` (dot-product attention scores, `model.attention_score=dot`, instead of additive ones)
`:packed` (the encoder on torch's packed recurrent path, as training ran it before `RecurrentStack.run_from_zero`)
and `:loop` (torch's reference AdamW, a Python loop over the parameters, instead
of training's fused one). The configurations alternate in rounds within one process, together with a plain
fp32 matrix multiply (`matmul`, 1024 x 1024 x 1024, the machine's ceiling for this work on the same threads), so
their ratios are measured under the same machine load. The floating-point work of a step is counted once per
configuration by torch's FlopCounterMode (matrix products of forward and backward, the recurrent cells' included),
which gives each configuration's achieved GFLOP/s, its share of the ceiling, and the share of the work in the
target vocabulary projection (a sampled softmax projects onto its candidates outside the output module: its share
reads 0, and its MFLOP per token show what the projection no longer costs).

Usage: `python -m tests.benchmarks.bench_translation_training [--preset NAME] [SPEC ...]` after `make data
TASK=translation [PRESET=NAME]` (default: the `default` preset; luong:64 bahdanau:64 luong:128 luong:64:v4000
luong:64:t1). With `--preset full` the model, vocabularies and data are `full`'s.
"""

from __future__ import annotations

import platform
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from serving.contract.text import EOS_ID, encode_ids
from tests.benchmarks.bench_recurrent_layer import use_packed_path
from training.config import Workspace, apply_overrides
from training.data.translation.corpus import prepare_translation
from training.tasks import preset
from training.text import fit_tokenizer
from training.train.modules.translation import TranslationModule
from training.train.optimizer import adamw
from training.train.recipes.translation import collate_translation

SAMPLE = 20_000  # training pairs the tokenizers are fitted on and batches are drawn from
STEPS = 12  # timed steps per configuration and round
ROUNDS = 3
MATMUL_SIZE = 1024
PROJECTION = "decoder.output"  # the module that maps the decoder's readout onto the target vocabulary


@dataclass
class Setup:
    spec: str
    module: TranslationModule
    optimizer: torch.optim.Optimizer
    batch: int
    threads: int
    examples: list[tuple[list[int], list[int]]]
    bf16: bool = False
    flops_per_token: float = 0.0
    projection_share: float = 0.0
    sentences: int = 0
    tokens: int = 0
    seconds: float = 0.0


def _step(setup: Setup, batch: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    collated = collate_translation(batch)
    tgt_out = collated[3]
    # bf16: what Lightning's precision="bf16-mixed" does on a CPU, autocast around forward and loss
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setup.bf16):
        loss, _ = setup.module.training_loss(collated)
    setup.optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(setup.module.parameters(), 1.0)
    setup.optimizer.step()
    return tgt_out


def _count_flops(setup: Setup) -> None:
    """Floating-point operations per target token of one step (forward + backward) on a mid-length batch."""
    middle = len(setup.examples) // 2
    batch = setup.examples[middle : middle + setup.batch]
    with FlopCounterMode(display=False, depth=None) as counter:
        tgt_out = _step(setup, batch)
    tokens = int((tgt_out != 0).sum())
    counts = counter.get_flop_counts()
    total = sum(counts["Global"].values())
    projection = sum(sum(v.values()) for k, v in counts.items() if k.endswith(PROJECTION))
    setup.flops_per_token = total / tokens
    setup.projection_share = projection / total


def _matmul_rate(threads: int) -> float:
    """fp32 GFLOP/s of a square matrix multiply on `threads` threads (best of 5)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        begun = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - begun)
    return 2 * MATMUL_SIZE**3 / best / 1e9


def main(specs: list[str], preset_name: str = "default") -> None:
    cfg = preset("translation", preset_name)
    rows = prepare_translation(cfg.data, Workspace.from_env(), progress=False).pairs("train")
    rows = random.Random(0).sample(rows, min(SAMPLE, len(rows)))
    all_threads = torch.get_num_threads()
    src_tok = fit_tokenizer((p.source for p in rows), cfg.source_tokenizer, lowercase=False)
    sources = encode_ids(src_tok, [p.source for p in rows], cfg.source_tokenizer.max_tokens)
    target_tokenizers: dict[int, Any] = {}
    setups: list[Setup] = []
    for spec in specs:
        style, batch, *options = spec.split(":")
        vocab = next((int(o[1:]) for o in options if o.startswith("v")), cfg.target_tokenizer.vocab_size)
        threads = next((int(o[1:]) for o in options if o.startswith("t")), all_threads)
        if vocab not in target_tokenizers:
            tok_cfg = apply_overrides(cfg, [f"target_tokenizer.vocab_size={vocab}"]).target_tokenizer
            target_tokenizers[vocab] = fit_tokenizer((p.target for p in rows), tok_cfg, lowercase=False)
        tgt_tok = target_tokenizers[vocab]
        targets = encode_ids(tgt_tok, [p.target for p in rows], cfg.decoding.max_output_tokens - 1)
        examples = sorted(zip(sources, [[*t, EOS_ID] for t in targets], strict=True), key=lambda e: len(e[1]))
        sampled = next((int(o[1:]) for o in options if o.startswith("s")), 0)
        embedding = next((int(o[1:]) for o in options if o.startswith("e")), cfg.model.target_embedding_dim)
        run_cfg = apply_overrides(
            cfg,
            [
                f"model.attention={style}",
                f"optim.batch_size={batch}",
                f"target_tokenizer.vocab_size={vocab}",
                f"model.sampled_softmax={sampled}",
                f"model.target_embedding_dim={embedding}",
                f"model.attention_score={'dot' if 'dot' in options else 'additive'}",
            ],
        )
        torch.manual_seed(0)
        module = TranslationModule(run_cfg, src_tok.get_vocab_size(), tgt_tok.get_vocab_size()).train()
        if "packed" in options:
            use_packed_path(module)
        # ":loop": torch's reference AdamW, a Python loop over parameters (what training used before the fused kernel)
        if "loop" in options:
            optimizer = torch.optim.AdamW(module.parameters(), 1e-3, weight_decay=0.01, foreach=False)
        else:
            optimizer = adamw(module.parameters(), 1e-3, 0.01)
        setup = Setup(spec, module, optimizer, int(batch), threads, examples, bf16="bf16" in options)
        _count_flops(setup)
        setups.append(setup)
    ceiling: dict[int, list[float]] = {t: [] for t in {s.threads for s in setups}}
    rng = random.Random(1)
    for _ in range(ROUNDS):
        for threads, rates in ceiling.items():
            rates.append(_matmul_rate(threads))
        for setup in setups:
            torch.set_num_threads(setup.threads)
            # batches of similar length drawn across the length distribution, as the bucketed loader makes them
            starts = [rng.randrange(0, len(setup.examples) - setup.batch) for _ in range(STEPS + 1)]
            for i, start in enumerate(starts):
                begun = time.perf_counter()
                tgt_out = _step(setup, setup.examples[start : start + setup.batch])
                if i:  # the first step of a round warms caches up
                    setup.sentences += setup.batch
                    setup.tokens += int((tgt_out != 0).sum())
                    setup.seconds += time.perf_counter() - begun
    torch.set_num_threads(all_threads)
    print(
        f"{platform.node()}: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{all_threads} threads, preset {preset_name}; fp32 matmul {MATMUL_SIZE}^3 ceiling: "
        + ", ".join(f"{t} thread(s) {max(r):.0f} GFLOP/s" for t, r in sorted(ceiling.items()))
    )
    base = setups[0]
    base_rate = base.tokens / base.seconds
    print(
        f"{'config':>18} | sentences/s | target tokens/s | x {base.spec} | MFLOP/token | projection share | "
        "GFLOP/s | of the matmul ceiling"
    )
    for s in setups:
        rate = s.tokens / s.seconds
        achieved = rate * s.flops_per_token / 1e9
        print(
            f"{s.spec:>18} | {s.sentences / s.seconds:11.0f} | {rate:15.0f} | {rate / base_rate:7.2f} | "
            f"{s.flops_per_token / 1e6:11.1f} | {s.projection_share:16.0%} | {achieved:7.1f} | "
            f"{achieved / max(ceiling[s.threads]):.0%}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    name = "default"
    if args[:1] == ["--preset"]:
        name, args = args[1], args[2:]
    main(args or ["luong:64", "bahdanau:64", "luong:128", "luong:64:v4000", "luong:64:t1"], name)
