"""Training step time of the sentiment `default` model (three members, forward, loss, backward, clipping, AdamW) with
torch's reference AdamW (a Python loop over the parameters) and with the fused one training uses
(training/train/optimizer.py), at the vocabulary BPE gives (12,000) and at the one every lexicon word whole gives;
then, fused, with GloVe's 20,000 most frequent words whole as well (`word_vectors.whole_words`), without and with their
vectors as inputs (`word_vectors.use`), and with a learned embedding of 64 beside the vectors: what the vocabulary
costs, and what the wider input costs; last, that model with its members on torch's packed recurrent path, as training
ran them before `RecurrentStack.run_from_zero` (training/models/cells.py) took the padded one.

Real training tweets in batches of `default`'s size and of similar length (as training's loader makes them), the
configurations alternating in rounds within one process so their ratios are measured under the same machine load.

Usage: `python -m tests.benchmarks.bench_sentiment_step` after `make data` (the opinion words are fetched into the
workspace's artifact cache when missing).
"""

from __future__ import annotations

import platform
import random
import time
from dataclasses import dataclass, field, replace

import torch

from serving.contract.text import encode_ids, pad_batch
from tests.benchmarks.bench_recurrent_layer import use_packed_path
from training.config import Workspace
from training.data.sentiment.corpus import load_split, prepare_sentiment
from training.data.sentiment.lexicon import lexicon_words, token_features, vader_lexicon
from training.data.sentiment.opinion_words import opinion_lexicon
from training.data.sentiment.word_vectors import glove_vectors, token_vectors
from training.tasks import preset
from training.text import fit_tokenizer, whole_words
from training.train.modules.sentiment import SentimentModule
from training.train.optimizer import adamw

ROUNDS = 4
STEPS = 12


@dataclass
class Setup:
    name: str
    module: SentimentModule
    optimizer: torch.optim.Optimizer
    batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    seconds: list[float] = field(default_factory=list)


def main() -> None:
    cfg = preset("sentiment", "default")
    ws = Workspace.from_env()
    rows = load_split(prepare_sentiment(cfg.data, ws, progress=False).dir, "train")
    lexicon = opinion_lexicon(vader_lexicon(), ws.artifact_cache)
    texts = [row["text"] for row in rows]
    fitted = fit_tokenizer(iter(texts + lexicon_words(lexicon)), cfg.tokenizer, lowercase=True, tweets=True)
    whole = whole_words(fitted, lexicon.words())[0]
    vectors = glove_vectors(ws.artifact_cache)
    glove_words = whole_words(whole, vectors.frequent_words(20000))[0]
    # (vocabulary, tokenizer, optimisers, word vectors as inputs, learned embedding width): `default` before the
    # vectors had a learned embedding of 128, `default` now has the vectors beside one of 64
    configurations = [
        ("BPE", fitted, ("loop", "fused"), False, 128),
        ("whole words", whole, ("loop", "fused"), False, 128),
        ("+ GloVe words", glove_words, ("fused",), False, 128),
        ("+ GloVe words and vectors", glove_words, ("fused",), True, 128),
        ("+ GloVe words and vectors, embedding 64", glove_words, ("fused", "packed"), True, 64),
    ]
    sample = random.Random(0).sample(range(len(rows)), STEPS * cfg.optim.batch_size)
    labels = torch.tensor([("negative", "neutral", "positive").index(rows[i]["label"]) for i in sample])
    setups = []
    for vocabulary, tokenizer, kinds, with_vectors, embedding in configurations:
        ids = encode_ids(tokenizer, [texts[i] for i in sample], cfg.tokenizer.max_tokens)
        # batches of similar length, as training's bucketed loader makes them (training/data/batching.py)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches = []
        for start in range(0, len(order), cfg.optim.batch_size):
            chosen = order[start : start + cfg.optim.batch_size]
            padded, lengths = pad_batch([ids[i] for i in chosen])
            batches.append((torch.from_numpy(padded), torch.from_numpy(lengths), labels[chosen]))
        for kind in kinds:
            torch.manual_seed(0)
            run_cfg = replace(
                cfg,
                word_vectors=replace(cfg.word_vectors, use=with_vectors),
                model=replace(cfg.model, embedding_dim=embedding),
            )
            module = SentimentModule(run_cfg, tokenizer.get_vocab_size(), ("negative", "neutral", "positive"), None)
            module.model.set_lexicon(torch.from_numpy(token_features(tokenizer, lexicon)))
            if with_vectors:
                table = token_vectors(tokenizer, vectors, cfg.word_vectors.max_rank)
                module.model.set_word_vectors(torch.from_numpy(table))
            module.train()
            if kind == "packed":  # the recurrent members on torch's packed path, as training ran them before
                use_packed_path(module)
            params = module.parameters()
            if kind == "loop":
                optimizer = torch.optim.AdamW(params, cfg.optim.lr, weight_decay=cfg.optim.weight_decay, foreach=False)
            else:
                optimizer = adamw(params, cfg.optim.lr, cfg.optim.weight_decay)
            name = f"{vocabulary} ({tokenizer.get_vocab_size()}), {kind} AdamW"
            if kind == "packed":
                name = f"{vocabulary} ({tokenizer.get_vocab_size()}), fused AdamW, packed encoders"
            setups.append(Setup(name, module, optimizer, batches))
    for _ in range(ROUNDS):
        for setup in setups:
            begun = time.perf_counter()
            for input_ids, lengths, gold in setup.batches:
                loss = sum(setup.module.loss(out, gold) for out in setup.module.model.member_logits(input_ids, lengths))
                setup.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(setup.module.parameters(), cfg.optim.gradient_clip_norm)
                setup.optimizer.step()
            setup.seconds.append((time.perf_counter() - begun) / len(setup.batches))
    threads, batch = torch.get_num_threads(), cfg.optim.batch_size
    print(f"{platform.node()}: torch {torch.__version__}, {threads} threads, batch {batch}")
    base = min(setups[0].seconds[1:])
    print(f"{'configuration':>62} | seconds per step (best round of {ROUNDS - 1}) | x the first")
    for s in setups:
        best = min(s.seconds[1:])  # the first round warms caches up
        print(f"{s.name:>62} | {best:.3f} | {base / best:.2f}")


if __name__ == "__main__":
    main()
