"""The linear n-gram member (`ngram_member`): averaged with the recurrent members, trained by the same summed loss."""

from __future__ import annotations

from dataclasses import replace

import torch

from training.config import EnsembleConfig, NgramConfig, RecurrentConfig, SentimentConfig
from training.models.classifier import SentimentNet

VOCAB, LABELS = 40, 3


def _config(buckets: int) -> SentimentConfig:
    cfg = SentimentConfig(
        model=RecurrentConfig(embedding_dim=8, hidden_size=8),
        ensemble=EnsembleConfig(cells=("lstm", "gru")),
    )
    return replace(cfg, ngram_member=NgramConfig(buckets=buckets, orders=(1, 2), dim=4))


def test_the_ngram_member_is_averaged_with_the_recurrent_members() -> None:
    torch.manual_seed(0)
    net = SentimentNet(VOCAB, LABELS, _config(buckets=17)).eval()
    ids, lengths = torch.randint(1, VOCAB, (5, 7)), torch.tensor([7, 3, 1, 5, 6])
    with torch.no_grad():
        logits = net.member_logits(ids, lengths)
        assert len(logits) == len(net.members) + 1
        torch.testing.assert_close(logits[-1], net.bag(ids, lengths))
        mean = torch.stack([torch.softmax(z, dim=-1) for z in logits]).mean(dim=0)
        torch.testing.assert_close(torch.softmax(net(ids, lengths), dim=-1), mean)


def test_without_buckets_there_is_no_ngram_member() -> None:
    net = SentimentNet(VOCAB, LABELS, _config(buckets=0))
    assert net.bag is None
    assert len(net.member_logits(torch.tensor([[4, 5]]), torch.tensor([2]))) == len(net.members)


def test_the_summed_loss_trains_the_ngram_member() -> None:
    torch.manual_seed(0)
    net = SentimentNet(VOCAB, LABELS, _config(buckets=17)).train()
    ids, lengths, labels = torch.randint(1, VOCAB, (6, 5)), torch.full((6,), 5), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = sum(torch.nn.functional.cross_entropy(z, labels) for z in net.member_logits(ids, lengths))
    loss.backward()
    assert net.bag.ngrams.table.weight.grad is not None
    assert net.bag.ngrams.table.weight.grad.abs().sum() > 0
    assert net.bag.head.weight.grad.abs().sum() > 0
