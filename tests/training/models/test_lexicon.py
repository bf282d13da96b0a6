"""Lexicon features (training/data/sentiment/lexicon.py, training/models/classifier.py): VADER's knowledge per token,
beside the embedding, exported inside the graph so serving's inputs do not change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.export.test_export_sentiment import LABELS, TEXTS, assert_served_like_pytorch, save_model_dir
from training.config import RecurrentConfig, TokenizerConfig
from training.data.sentiment.lexicon import (
    FEATURES,
    Lexicon,
    lexicon_words,
    token_features,
    vader_lexicon,
    vader_scores,
    with_no_as_negator,
)
from training.models.classifier import LEXICON_FEATURES, SentimentNet
from training.models.lexicon_score import LexiconScore
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


@pytest.mark.parametrize(("lexicon_score", "rule_valence"), [(False, False), (True, False), (True, True)])
def test_a_model_with_lexicon_features_exports_and_serves_like_pytorch(
    tmp_path: Path, lexicon_score: bool, rule_valence: bool
) -> None:
    torch.manual_seed(5)
    cfg = preset("sentiment", "smoke")
    model = RecurrentConfig(cell="lstm", embedding_dim=8, hidden_size=8, dropout=0.0)
    cfg = replace(cfg, lexicon=True, lexicon_score=lexicon_score, rule_valence=rule_valence, model=model)
    tokenizer = tokenizer_with_lexicon()
    net = SentimentNet(tokenizer.get_vocab_size(), len(LABELS), cfg)
    net.set_lexicon(torch.from_numpy(token_features(tokenizer)))
    save_model_dir(tmp_path / "model", net, tokenizer, cfg)
    report = export_model_folder(tmp_path / "model", tmp_path / "bundle", "r1", {})
    assert report.manifest["architecture"]["lexicon_features"] == LEXICON_FEATURES
    assert report.manifest["architecture"]["lexicon_score"] is lexicon_score
    assert report.manifest["architecture"]["rule_valence"] is rule_valence
    assert_served_like_pytorch(report.bundle_dir, net.eval())
    # the features matter: the same weights without them answer differently
    with torch.no_grad():
        ids = torch.tensor([tokenizer.encode("a masterpiece, never boring").ids])
        lengths = torch.tensor([ids.shape[1]])
        with_lexicon = net(ids, lengths)
        net.set_lexicon(torch.zeros_like(net.members[0].lexicon))
        assert not torch.allclose(with_lexicon, net(ids, lengths))


def test_split_contractions_are_negators() -> None:
    tokenizer = tokenizer_with_lexicon()
    table = token_features(tokenizer)
    for text in ("don't", "isn't", "can't", "won't"):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert len(ids) > 1, "the tokenizer splits the apostrophe off"
        assert table[ids, 1].any(), f"{text!r} carries no negator"
    for word in ("can", "won", "the"):
        (token,) = tokenizer.encode(word, add_special_tokens=False).ids
        assert table[token, 1] == 0, word


def rule_scores(tokenizer, texts: list[str], lexicon: Lexicon | None = None) -> np.ndarray:
    table = torch.from_numpy(token_features(tokenizer, lexicon))
    return np.array([LexiconScore()(table[torch.tensor([tokenizer.encode(t).ids])])[0].numpy() for t in texts])


def test_the_lexicon_score_applies_vaders_negation_booster_and_contrast_rules() -> None:
    tokenizer = tokenizer_with_lexicon()
    good, not_good, dont_like, very_good, good_but_boring, boring_but_good = rule_scores(
        tokenizer,
        ["good", "not good", "I don't like it", "very good", "good but boring", "boring but good"],
    )[:, 0]
    assert good > 0 and not_good < 0 and dont_like < 0
    assert very_good > good
    assert good_but_boring < 0 < boring_but_good, "what follows 'but' weighs more"
    # the sign agrees with VADER itself on these
    vader = vader_scores(["good", "not good", "I don't like it", "good but boring", "boring but good"])
    assert np.all(np.sign(vader) == np.sign([good, not_good, dont_like, good_but_boring, boring_but_good]))


def test_with_no_a_negator_the_score_follows_vaders_rule_for_no() -> None:
    """VADER flips a rated word after "no" and drops the -1.2 of "no" itself there; before an unrated word "no" keeps
    it. The plain table (no among the rated words only) reads "no complaints" as two complaints."""
    tokenizer = tokenizer_with_lexicon()
    texts = ["I have no complaints", "no problems at all", "there was no wifi", "no help from anyone"]
    vader = vader_scores(texts)
    plain = rule_scores(tokenizer, texts)[:, 0]
    with_no = rule_scores(tokenizer, texts, with_no_as_negator(vader_lexicon()))[:, 0]
    assert np.all(np.sign(with_no) == np.sign(vader)), (with_no, vader)
    assert plain[0] < 0 and plain[1] < 0, "without the rule, a negated complaint counts as one"
    assert with_no[2] == pytest.approx(plain[2]), "before an unrated word, no keeps its own valence"


def test_the_lexicon_score_ignores_padding() -> None:
    tokenizer = tokenizer_with_lexicon()
    table = torch.from_numpy(token_features(tokenizer))
    ids = torch.tensor([tokenizer.encode("never boring, but hardly great").ids])
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=ids.dtype)], dim=1)  # PAD_ID 0
    score = LexiconScore()
    assert torch.allclose(score(table[ids]), score(table[padded]))


def test_lexicon_score_needs_the_lexicon() -> None:
    cfg = replace(preset("sentiment", "smoke"), lexicon=False, lexicon_score=True)
    with pytest.raises(ValueError, match="lexicon=true"):
        SentimentNet(100, len(LABELS), cfg)


def test_score_alone_shows_the_head_only_the_score_for_its_share_of_training_examples() -> None:
    # given a member whose head sees the score alone for every training example
    cfg = replace(preset("sentiment", "smoke"), lexicon=True, lexicon_score=True, score_alone=1.0)
    net = SentimentNet(50, len(LABELS), cfg)
    member = net.members[0]
    table = torch.zeros(50, LEXICON_FEATURES)
    table[7, 0] = 2.0  # token 7 is rated positive
    net.set_lexicon(table)
    ids, lengths = torch.tensor([[7, 3, 4], [5, 6, 7]]), torch.tensor([3, 3])

    def logits_with_embedding_scaled(factor: float) -> torch.Tensor:
        with torch.no_grad():
            member.embedding.weight.mul_(factor)
            out = member(ids, lengths)
            member.embedding.weight.div_(factor)
        return out

    # when training, the learned features do not reach the head: changing the embedding changes nothing
    member.train()
    torch.testing.assert_close(logits_with_embedding_scaled(1.0), logits_with_embedding_scaled(3.0))
    # when serving, they do
    member.eval()
    assert not torch.allclose(logits_with_embedding_scaled(1.0), logits_with_embedding_scaled(3.0))


def test_rule_valence_gives_each_token_its_valence_after_negators_and_contrast() -> None:
    cfg = replace(preset("sentiment", "smoke"), lexicon=True, rule_valence=True)
    net = SentimentNet(50, len(LABELS), cfg).eval()
    table = torch.zeros(50, LEXICON_FEATURES)
    table[7, 0] = 0.5  # "good": valence 2 on VADER's scale (the table holds valence / 4)
    table[8, 1] = 1.0  # "not"
    table[9, 3] = 1.0  # "but"
    net.set_lexicon(table)
    # good . not good but . good ("not" reaches three tokens on, as in VADER: the last "good" is past it)
    ids = torch.tensor([[7, 3, 8, 7, 9, 3, 7]])
    rule = net.members[0].inputs(ids)[0, :, -1]
    expected = 0.5 * torch.tensor([0.5, 0, 0, -0.74 * 0.5, 0, 0, 1.5])  # before "but" halved, after it x1.5
    torch.testing.assert_close(rule, expected)
    # the learned layer reads it beside the embedding and the raw features
    assert net.members[0].inputs(ids).shape[2] == cfg.model.embedding_dim + LEXICON_FEATURES + 1


def test_rule_valence_needs_the_lexicon() -> None:
    cfg = replace(preset("sentiment", "smoke"), lexicon=False, rule_valence=True)
    with pytest.raises(ValueError, match="lexicon=true"):
        SentimentNet(100, len(LABELS), cfg)


def test_score_alone_needs_the_score() -> None:
    cfg = replace(preset("sentiment", "smoke"), lexicon=True, lexicon_score=False, score_alone=0.3)
    with pytest.raises(ValueError, match="lexicon_score=true"):
        SentimentNet(100, len(LABELS), cfg)


def test_zero_embeddings_silences_the_given_tokens_in_every_member() -> None:
    cfg = replace(preset("sentiment", "smoke"), ensemble=replace(preset("sentiment", "smoke").ensemble, members=2))
    net = SentimentNet(30, len(LABELS), cfg)
    net.zero_embeddings(torch.tensor([5, 7]))
    for member in net.members:
        assert not member.embedding.weight[[5, 7]].any()
        assert member.embedding.weight[6].abs().sum() > 0
