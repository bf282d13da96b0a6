"""`negation_debias`: the negation-only expert's table, its cues, and how it joins the members' loss (and only that)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from serving.contract.text import PAD_ID
from tests.conftest import tiny_sentiment
from training.data.sentiment.lexicon import token_features
from training.tasks import preset
from training.text import fit_tokenizer
from training.train.modules.sentiment import SentimentModule
from training.train.negation_prior import cue_groups, label_log_odds, negation_cues

LABELS = ("negative", "neutral", "positive")


def test_the_log_odds_say_how_a_cue_moves_each_label_from_its_prior() -> None:
    # given 6 texts without a cue (2 of each label) and 4 with one (all negative)
    groups = [0] * 6 + [1] * 4
    labels = [0, 0, 1, 1, 2, 2] + [0] * 4
    # when the table is counted (each cell plus one)
    table = label_log_odds(groups, labels, 3)
    # then a cue raises "negative" above its prior and lowers the others, exactly as the smoothed counts say
    counts = np.array([[3, 3, 3], [5, 1, 1]], dtype=float)
    expected = np.log(counts / counts.sum(1, keepdims=True)) - np.log(counts.sum(0) / counts.sum())
    np.testing.assert_allclose(table, expected)
    assert table[1, 0] > 0 > table[1, 2]
    # and where a cue says nothing about the label, nothing is added
    np.testing.assert_allclose(label_log_odds([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], 3), 0.0, atol=1e-12)


def test_negators_their_contraction_pieces_and_no_are_cues_and_other_words_are_not() -> None:
    texts = ["this is not good", "i don't like it", "no complaints", "nobody came", "never again", "it is good"] * 4
    tokenizer = fit_tokenizer(iter(texts), tiny_sentiment().tokenizer, lowercase=True, tweets=True)
    cues = negation_cues(token_features(tokenizer), tokenizer)
    ids = [tokenizer.encode(text).ids for text in texts[:6]]
    width = max(map(len, ids))
    batch = torch.tensor([seq + [PAD_ID] * (width - len(seq)) for seq in ids])
    assert cue_groups(batch, torch.from_numpy(cues)).tolist() == [1, 1, 1, 1, 1, 0]


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a step called without a Trainer
def test_the_expert_joins_each_members_loss_in_training_only() -> None:
    # given a module with the bias-only expert set: token 7 is a cue, and a cue adds these log-odds
    cfg = replace(tiny_sentiment("lexicon=true"), negation_debias=0.5)
    module = SentimentModule(cfg, vocab_size=20, labels=LABELS, class_weights=None)
    cues = torch.zeros(20, dtype=torch.bool)
    cues[7] = True
    log_odds = torch.tensor([[0.1, 0.0, -0.1], [2.0, -1.0, -1.5]])
    module.set_negation_prior(cues, log_odds)
    module.eval()  # no dropout: the step's logits and the ones recomputed below are the same numbers
    ids = torch.tensor([[5, 7, 6], [5, 6, PAD_ID]])
    lengths, labels = torch.tensor([3, 2]), torch.tensor([2, 0])
    # when a training step runs
    torch.manual_seed(0)
    loss = module.training_step((ids, lengths, labels), 0)
    # then each member's loss is the cross-entropy of its logits plus half the expert's log-odds for its text's group
    members = module.model.member_logits(ids, lengths)
    bias = 0.5 * log_odds[torch.tensor([1, 0])]
    expected = sum(nn.functional.cross_entropy(logits + bias, labels) for logits in members)
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, sum(nn.functional.cross_entropy(logits, labels) for logits in members))
    # and the model it serves never sees the expert: not in its forward pass, not in its checkpoint
    assert torch.equal(module(ids, lengths), module.model(ids, lengths))
    assert not any("negation" in key for key in module.state_dict())


def test_negation_debias_needs_the_lexicon() -> None:
    cfg = replace(preset("sentiment", "smoke"), negation_debias=1.0)
    with pytest.raises(ValueError, match="needs lexicon=true"):
        SentimentModule(cfg, vocab_size=50, labels=LABELS, class_weights=None)
