"""The lexicon coverage experiment's two readers of the probes (training/experiments/lexicon_coverage.py)."""

from __future__ import annotations

import numpy as np

from training.config import TokenizerConfig
from training.data.sentiment.lexicon import lexicon_words, vader_lexicon, vader_scores
from training.data.sentiment.review_probe import probe_sets
from training.experiments.lexicon_coverage import analyser_accuracy, score_accuracy
from training.text import fit_tokenizer, whole_words


def test_the_analyser_with_vaders_own_lexicon_scores_the_probes_as_the_vader_peer_does() -> None:
    expected = {
        name: float(np.mean((vader_scores([r["text"] for r in rows]) > 0) == [r["label"] == "positive" for r in rows]))
        for name, rows in probe_sets().items()
    }
    assert analyser_accuracy(vader_lexicon()) == expected


def test_the_score_reads_more_of_the_probes_once_every_lexicon_word_is_whole() -> None:
    lexicon = vader_lexicon()
    texts = [r["text"] for rows in probe_sets().values() for r in rows][:40]
    fitted = fit_tokenizer(iter(texts + lexicon_words(lexicon)), TokenizerConfig(vocab_size=600), lowercase=True)
    whole, _ = whole_words(fitted, lexicon.words())
    pieces, words = score_accuracy(fitted, lexicon, 96), score_accuracy(whole, lexicon, 96)
    assert set(pieces) == set(probe_sets())
    assert all(words[name] > pieces[name] for name in pieces), (pieces, words)
