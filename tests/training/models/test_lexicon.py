"""Lexicon features (training/data/sentiment/lexicon.py, training/models/classifier.py): VADER's knowledge per token,
beside the embedding, exported inside the graph so serving's inputs do not change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tests.training.export.test_export_sentiment import LABELS, TEXTS, assert_served_like_pytorch, save_model_dir
from training.config import RecurrentConfig, TokenizerConfig
from training.data.sentiment.lexicon import FEATURES, lexicon_words, token_features
from training.models.classifier import LEXICON_FEATURES, SentimentNet
from training.tasks import export_model_folder, preset
from training.text import fit_tokenizer


def tokenizer_with_lexicon():
    texts = [*TEXTS, "not good, but never boring", "very nice", "hardly great"] * 3
    return fit_tokenizer(iter(texts + lexicon_words()), TokenizerConfig(vocab_size=20000), lowercase=True, tweets=True)


def test_whole_lexicon_words_carry_their_valence_negators_intensifiers_and_contrast() -> None:
    tokenizer = tokenizer_with_lexicon()
    table = token_features(tokenizer)
    assert table.shape == (tokenizer.get_vocab_size(), len(FEATURES)) == (tokenizer.get_vocab_size(), LEXICON_FEATURES)

    def row(word: str) -> np.ndarray:
        (token,) = tokenizer.encode(word, add_special_tokens=False).ids  # a lexicon word is one whole token
        return table[token]

    assert row("masterpiece")[0] > 0.5 and row("boring")[0] < 0 and row("the")[0] == 0
    assert row("never")[1] == 1 and row("good")[1] == 0
    assert row("very")[2] == 1 and row("hardly")[2] == -1
    assert row("but")[3] == 1
    assert not table[:4].any(), "special tokens carry no features"


def test_a_model_with_lexicon_features_exports_and_serves_like_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(5)
    cfg = preset("sentiment", "smoke")
    cfg = replace(cfg, lexicon=True, model=RecurrentConfig(cell="lstm", embedding_dim=8, hidden_size=8, dropout=0.0))
    tokenizer = tokenizer_with_lexicon()
    net = SentimentNet(tokenizer.get_vocab_size(), len(LABELS), cfg)
    net.set_lexicon(torch.from_numpy(token_features(tokenizer)))
    save_model_dir(tmp_path / "model", net, tokenizer, cfg)
    report = export_model_folder(tmp_path / "model", tmp_path / "bundle", "r1", {})
    assert report.manifest["architecture"]["lexicon_features"] == LEXICON_FEATURES
    assert_served_like_pytorch(report.bundle_dir, net.eval())
    # the features matter: the same weights without them answer differently
    with torch.no_grad():
        ids = torch.tensor([tokenizer.encode("a masterpiece, never boring").ids])
        lengths = torch.tensor([ids.shape[1]])
        with_lexicon = net(ids, lengths)
        net.set_lexicon(torch.zeros_like(net.members[0].lexicon))
        assert not torch.allclose(with_lexicon, net(ids, lengths))
