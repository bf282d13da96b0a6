"""How much of the lexicon the model can read, and how well the lexicon alone reads the probes, for each way of
building the tokenizer and the lexicon (docs/measured.md, "Sentiment off the tweets": `opinion_words`,
`lexicon_whole_words`, `negate_after_no`).

For VADER's lexicon alone and with Hu and Liu's opinion words, with BPE as fitted (the lexicon's words added to the
tweets twice) and with every lexicon word made whole: how many of the lexicon's words are one token, the vocabulary
size, how many training tweets tokenize differently, and the binary accuracy on each probe of the in-graph score
(training/models/lexicon_score.py, positive iff its compound > 0), beside VADER's own analyser with each lexicon.
No training: seconds on the prepared training split of `default`.

Usage: `python -m training.experiments.lexicon_coverage` after `make data` (uses the workspace's artifact cache).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from serving.contract.text import encode_ids, pad_batch
from training.config import Workspace
from training.data.sentiment.corpus import load_split, prepare_sentiment
from training.data.sentiment.lexicon import (
    WORD_START,
    Lexicon,
    lexicon_words,
    token_features,
    vader_lexicon,
    with_no_as_negator,
)
from training.data.sentiment.opinion_words import opinion_lexicon
from training.data.sentiment.review_probe import probe_sets
from training.models.lexicon_score import LexiconScore
from training.tasks import preset
from training.text import fit_tokenizer, whole_words


def score_accuracy(tokenizer: Tokenizer, lexicon: Lexicon, max_tokens: int) -> dict[str, float]:
    """Binary accuracy of the in-graph score (compound > 0 = positive) on each probe."""
    table = torch.from_numpy(token_features(tokenizer, lexicon))
    accuracy = {}
    for name, rows in probe_sets().items():
        ids, _ = pad_batch(encode_ids(tokenizer, [r["text"] for r in rows], max_tokens))
        compound = LexiconScore()(table[torch.from_numpy(ids)])[:, 0].numpy()
        accuracy[name] = float(np.mean((compound > 0) == np.array([r["label"] == "positive" for r in rows])))
    return accuracy


def analyser_accuracy(lexicon: Lexicon) -> dict[str, float]:
    """Binary accuracy of VADER's own analyser (compound > 0 = positive) on each probe, with `lexicon`'s ratings."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    analyser.lexicon = dict(lexicon.valence)
    return {
        name: float(
            np.mean([(analyser.polarity_scores(r["text"])["compound"] > 0) == (r["label"] == "positive") for r in rows])
        )
        for name, rows in probe_sets().items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    cfg = preset("sentiment", "default")
    ws = Workspace.from_env()
    texts = [row["text"] for row in load_split(prepare_sentiment(cfg.data, ws, progress=False).dir, "train")]
    vader = vader_lexicon()
    opinion = opinion_lexicon(vader, ws.artifact_cache)
    lexicons = {
        "VADER": vader,
        "VADER + opinion words": opinion,
        # negate_after_no: VADER's own analyser already reads "no" so; its row repeats the one above
        'VADER + opinion words, "no" a negator': with_no_as_negator(opinion),
    }
    print(f"{len(texts)} training tweets; vocabulary {cfg.tokenizer.vocab_size} before whole words")
    probes = " | ".join(probe_sets())
    print(f"lexicon | tokenizer | whole words | vocabulary | tweets cut differently | accuracy: {probes}")
    for name, lexicon in lexicons.items():
        words = lexicon.words()
        fitted = fit_tokenizer(iter(texts + lexicon_words(lexicon)), cfg.tokenizer, lowercase=True, tweets=True)
        whole, _ = whole_words(fitted, words)
        before = [e.tokens for e in fitted.encode_batch(texts)]
        for label, tokenizer in (("BPE as fitted", fitted), ("every word whole", whole)):
            vocab = tokenizer.get_vocab()
            kept = sum(WORD_START + word in vocab for word in words)
            changed = sum(a != b.tokens for a, b in zip(before, tokenizer.encode_batch(texts)))
            scores = score_accuracy(tokenizer, lexicon, cfg.tokenizer.max_tokens)
            print(
                f"{name} | {label} | {kept} of {len(words)} | {tokenizer.get_vocab_size()} | {changed} | "
                + " | ".join(f"{v:.3f}" for v in scores.values())
            )
        analysed = " | ".join(f"{v:.3f}" for v in analyser_accuracy(lexicon).values())
        print(f"{name} | VADER's own analyser | | | | {analysed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
