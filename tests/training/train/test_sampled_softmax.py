"""Sampled softmax: exact where the candidates cover the vocabulary, close to the full loss on average where they do
not, gradients only where it looked, and a translation module that trains with it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from serving.contract.text import PAD_ID
from training.config import RecurrentConfig, TranslationConfig
from training.config.translation import translation_preset
from training.train.modules.translation import TranslationModule, smoothed_nll
from training.train.sampled_softmax import candidate_tokens, sampled_smoothed_nll

VOCAB, DIM = 60, 6


def batch(seed: int = 0) -> tuple[torch.Tensor, nn.Linear, torch.Tensor]:
    torch.manual_seed(seed)
    output = nn.Linear(DIM, VOCAB)
    features = torch.randn(3, 5, DIM)
    targets = torch.randint(4, 20, (3, 5))  # the batch's targets are 16 of the 60 tokens at most
    targets[1, 3:] = PAD_ID
    return features, output, targets


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_candidates_covering_the_vocabulary_give_the_full_softmax_loss(smoothing: float) -> None:
    features, output, targets = batch()
    full = smoothed_nll(F.log_softmax(output(features), dim=-1), targets, smoothing)
    sampled = sampled_smoothed_nll(features, output, targets, smoothing, candidates=VOCAB)
    for a, b in zip(full, sampled, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_candidates_hold_every_target_then_distinct_others() -> None:
    _, _, targets = batch()
    torch.manual_seed(3)
    ids, u = candidate_tokens(targets, VOCAB, candidates=30)
    real = set(targets[targets != PAD_ID].tolist())
    assert set(ids[:u].tolist()) == real and u == len(real)
    assert len(ids) == 30 and len(set(ids.tolist())) == 30  # distinct
    assert not real & set(ids[u:].tolist())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_sampled_loss_is_close_to_the_full_loss_on_average(smoothing: float) -> None:
    """The partition function is estimated without bias; its log is biased low (Jensen), by little at a third of
    the vocabulary. A loss without the importance weights (only the sampled tokens in Z) is far off."""
    features, output, targets = batch()
    with torch.no_grad():
        output.bias.add_(2.0)  # every logit up: an unweighted sample would miss most of Z
        full = float(smoothed_nll(F.log_softmax(output(features), dim=-1), targets, smoothing)[0])
        torch.manual_seed(5)
        draws = [float(sampled_smoothed_nll(features, output, targets, smoothing, 24)[0]) for _ in range(300)]
        mean = sum(draws) / len(draws)
        ids, _ = candidate_tokens(targets, VOCAB, 24)
        position = torch.zeros(VOCAB, dtype=torch.long)
        position[ids] = torch.arange(len(ids))
        log_p = F.log_softmax(output(features)[..., ids], dim=-1).gather(2, position[targets].unsqueeze(2))
        mask = targets != PAD_ID
        unweighted = float(-(log_p.squeeze(2) * mask).sum() / mask.sum())
        plain = float(smoothed_nll(F.log_softmax(output(features), dim=-1), targets, 0.0)[0])
    assert abs(mean - full) < 0.03 * full
    assert abs(unweighted - plain) > 0.15 * plain
    assert min(draws) < max(draws)  # the negatives are drawn again for every batch


def test_gradients_reach_only_the_candidates_output_rows() -> None:
    features, output, targets = batch()
    torch.manual_seed(7)
    loss, _, _ = sampled_smoothed_nll(features, output, targets, 0.1, candidates=24)
    loss.backward()
    touched = (output.weight.grad.abs().sum(dim=1) > 0).sum()
    assert int(touched) == 24


def test_a_translation_module_trains_with_a_sampled_softmax() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = translation_preset("smoke")
    small = RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0)
    cfg: TranslationConfig = replace(
        base,
        model=replace(base.model, encoder=small, decoder_hidden_size=8, target_embedding_dim=8, sampled_softmax=12),
    )
    module = TranslationModule(cfg, source_vocab_size=30, target_vocab_size=VOCAB)
    src = torch.randint(4, 30, (8, 6))
    tgt = torch.randint(4, 12, (8, 5))  # a target vocabulary of 8 tokens, always among the candidates
    tgt_in = torch.cat([torch.full((8, 1), 1), tgt[:, :-1]], dim=1)
    batch_ = (src, torch.full((8,), 6), tgt_in, tgt)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    module.train()
    module.log = lambda *args, **kwargs: None  # no Trainer here
    first = float(module.training_step(batch_, 0).detach())
    for _ in range(30):
        optimizer.zero_grad()
        module.training_step(batch_, 0).backward()
        optimizer.step()
    with torch.no_grad():
        full = float(smoothed_nll(module(src, batch_[1], tgt_in), tgt, cfg.model.label_smoothing)[0])
    assert full < 0.6 * first  # learned under the FULL softmax too
