"""Language-model pretraining (training/train/pretrain.py): it trains the classifier's own weights, it learns a
predictable sequence, and it refuses an encoder that could see the token it predicts."""

from __future__ import annotations

import pytest
import torch

from training.config import PretrainConfig, RecurrentConfig
from training.models.classifier import RecurrentClassifier
from training.train.pretrain import BidirectionalLM, pretrain_members


def classifier(**changes: object) -> RecurrentClassifier:
    torch.manual_seed(0)
    cfg = RecurrentConfig(cell="gru", embedding_dim=16, hidden_size=16, dropout=0.0, **changes)
    return RecurrentClassifier(vocab_size=12, num_labels=3, cfg=cfg)


def test_a_two_layer_bidirectional_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="num_layers=1"):
        BidirectionalLM(classifier(num_layers=2, bidirectional=True))


def test_pretraining_learns_a_predictable_sequence_in_the_classifiers_own_weights() -> None:
    model = classifier(bidirectional=True)
    before = model.embedding.weight.detach().clone()
    # 4 5 6 7 4 5 6 7 ...: every next and previous token is determined by the current one
    ids = [[4 + (i + shift) % 4 for i in range(9)] for shift in range(4)] * 16
    with torch.no_grad():
        start = float(BidirectionalLM(model).eval()(torch.tensor(ids[:8]), torch.full((8,), 9)))
    cfg = PretrainConfig(steps=60, batch_size=8, lr=1e-2)  # steps, not minutes: the same on a busy machine
    metrics = pretrain_members([model], ids, cfg, seed=0, progress=False)
    # (the LM head is thrown away after pretraining: the loss it reached is the evidence)
    assert metrics["pretrain/final_loss_member0"] < 0.1 * start, (start, metrics)
    assert metrics["pretrain/steps_member0"] == 60
    assert not torch.equal(model.embedding.weight, before), "pretraining must train the classifier's embedding"


def test_the_forward_half_never_sees_the_token_it_predicts() -> None:
    """Changing the last token must not change what the forward direction predicted for it."""
    model = classifier(bidirectional=True)
    lm = BidirectionalLM(model).eval()
    a, b = torch.tensor([[4, 5, 6, 7]]), torch.tensor([[4, 5, 6, 9]])
    lengths = torch.tensor([4])
    with torch.no_grad():
        out_a, _ = model.encoder(model.embedding(a), lengths)
        out_b, _ = model.encoder(model.embedding(b), lengths)
    hidden = model.encoder.hidden_size
    torch.testing.assert_close(out_a[:, :3, :hidden], out_b[:, :3, :hidden])  # what predicts tokens 1..3
    assert not torch.allclose(out_a[:, :3, hidden:], out_b[:, :3, hidden:])  # the backward half reads it (and
    # predicts tokens 0..2 only)
    assert lm.project[0].in_features == hidden


def test_pretraining_sized_in_steps_takes_exactly_those_steps() -> None:
    model = classifier(bidirectional=True)
    ids = [[4 + (i + shift) % 4 for i in range(9)] for shift in range(4)] * 16
    metrics = pretrain_members(
        [model], ids, PretrainConfig(steps=13, minutes=5.0, batch_size=8), seed=0, progress=False
    )
    assert metrics["pretrain/steps_member0"] == 13  # work, not time: the same on a busy machine


def lexicon_classifier(rule_valence: bool) -> RecurrentClassifier:
    torch.manual_seed(0)
    cfg = RecurrentConfig(cell="lstm", embedding_dim=16, hidden_size=16, dropout=0.0, bidirectional=True)
    model = RecurrentClassifier(
        vocab_size=12, num_labels=3, cfg=cfg, lexicon_features=4, lexicon_score=True, rule_valence=rule_valence
    )
    table = torch.zeros(12, 4)
    table[5, 0] = -0.5  # a negative word
    table[4, 1] = 1.0  # a negator
    model.lexicon.copy_(table)
    return model


@pytest.mark.parametrize("rule_valence", [False, True])
def test_a_classifier_with_lexicon_inputs_pretrains(rule_valence: bool) -> None:
    """`full` pretrains the members of `default`'s recipe: the lexicon features and the rule valence widen the
    recurrent stack's input, and the language model must feed it the same width."""
    model = lexicon_classifier(rule_valence)
    ids = [[4 + (i + shift) % 4 for i in range(9)] for shift in range(4)] * 16
    metrics = pretrain_members([model], ids, PretrainConfig(steps=5, batch_size=8), seed=0, progress=False)
    assert metrics["pretrain/steps_member0"] == 5


def test_the_language_model_reads_no_rule_valence() -> None:
    """The rule valence at t says whether a negator stands at t-1..t-3, the tokens the backward direction predicts:
    the language model reads zeros there; fine-tuning reads the valence."""
    model = lexicon_classifier(rule_valence=True)
    ids = torch.tensor([[4, 5, 6]])  # "not bad ..."
    embedded = model.embedding(ids)
    assert model.with_lexicon(ids, embedded)[0, 1, -1] > 0  # "bad" flipped by the negator before it
    assert torch.all(model.with_lexicon(ids, embedded, neighbours=False)[..., -1] == 0)
    torch.testing.assert_close(model.inputs(ids), model.with_lexicon(ids, embedded))
