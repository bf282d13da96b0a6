"""Training throughput of the translation model: sentences per second of a full training step (forward, loss,
backward, clipping, AdamW) for each attention style and batch size, on real prepared training pairs.

The configurations alternate in rounds within one process, so their ratios are measured under the same machine
load. Usage: `python -m tests.benchmarks.bench_translation_training [STYLE:BATCH ...]` after `make data
TASK=translation` (defaults: luong:64 bahdanau:64 luong:128).
"""

from __future__ import annotations

import platform
import random
import sys
import time

import torch

from serving.contract.text import EOS_ID, encode_ids
from training.config import Workspace, apply_overrides
from training.data.translation.corpus import prepare_translation
from training.tasks import preset
from training.text import fit_tokenizer
from training.train.modules.translation import TranslationModule, smoothed_nll
from training.train.recipes.translation import collate_translation

SAMPLE = 20_000  # training pairs the tokenizers are fitted on and batches are drawn from
STEPS = 12  # timed steps per configuration and round
ROUNDS = 3


def main(specs: list[str]) -> None:
    cfg = preset("translation", "default")
    rows = prepare_translation(cfg.data, Workspace.from_env(), progress=False).pairs("train")
    rows = random.Random(0).sample(rows, min(SAMPLE, len(rows)))
    src_tok = fit_tokenizer((p.source for p in rows), cfg.source_tokenizer, lowercase=False)
    tgt_tok = fit_tokenizer((p.target for p in rows), cfg.target_tokenizer, lowercase=False)
    sources = encode_ids(src_tok, [p.source for p in rows], cfg.source_tokenizer.max_tokens)
    targets = encode_ids(tgt_tok, [p.target for p in rows], cfg.decoding.max_output_tokens - 1)
    examples = sorted(zip(sources, [[*t, EOS_ID] for t in targets], strict=True), key=lambda e: len(e[1]))
    setups = {}
    for spec in specs:
        style, batch = spec.split(":")
        run_cfg = apply_overrides(cfg, [f"model.attention={style}", f"optim.batch_size={batch}"])
        torch.manual_seed(0)
        module = TranslationModule(run_cfg, src_tok.get_vocab_size(), tgt_tok.get_vocab_size()).train()
        setups[spec] = (module, torch.optim.AdamW(module.parameters(), 1e-3), int(batch), [0, 0.0])
    rng = random.Random(1)
    for _ in range(ROUNDS):
        for module, optimizer, batch, total in setups.values():
            # batches of similar length drawn across the length distribution, as the bucketed loader makes them
            starts = [rng.randrange(0, len(examples) - batch) for _ in range(STEPS + 1)]
            for i, start in enumerate(starts):
                src, src_len, tgt_in, tgt_out = collate_translation(examples[start : start + batch])
                begun = time.perf_counter()
                loss, _, _ = smoothed_nll(module(src, src_len, tgt_in), tgt_out, module.smoothing)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                if i:  # the first step of a round warms caches up
                    total[0] += batch
                    total[1] += time.perf_counter() - begun
    print(
        f"{platform.node()}: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    base = next(iter(setups))
    base_rate = setups[base][3][0] / setups[base][3][1]
    for spec, (*_, total) in setups.items():
        rate = total[0] / total[1]
        print(f"{spec:>14}: {rate:7.0f} sentences/s  ({rate / base_rate:.2f}x {base})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["luong:64", "bahdanau:64", "luong:128"])
