"""adamw (training/train/optimizer.py): the fused kernel on a CPU, the same updates as the reference loop."""

from __future__ import annotations

import copy

import torch

from training.train.optimizer import adamw


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(50, 8)
        self.lstm = torch.nn.LSTM(8, 8, batch_first=True)
        self.frozen = torch.nn.Parameter(torch.zeros(3), requires_grad=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lstm(self.embedding(ids))[0].pow(2).mean()


def test_adamw_is_fused_on_cpu_and_updates_as_the_reference_implementation_does() -> None:
    torch.manual_seed(3)
    net = Tiny()
    twin, start = copy.deepcopy(net), copy.deepcopy(net)
    fused = adamw(net.parameters(), lr=1e-2, weight_decay=0.1)
    assert fused.defaults["fused"] is True
    assert all(p is not net.frozen for group in fused.param_groups for p in group["params"]), "frozen ones left out"
    loop = torch.optim.AdamW([p for p in twin.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    ids = torch.randint(0, 50, (4, 6))
    for _ in range(5):
        for model, optimizer in ((net, fused), (twin, loop)):
            optimizer.zero_grad()
            model(ids).backward()
            optimizer.step()
    for got, want, before in zip(net.parameters(), twin.parameters(), start.parameters()):
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.equal(got, before) is (not got.requires_grad), "every trainable parameter moved, no frozen one"


def test_both_defaults_take_the_fused_kernel_and_translation_full_keeps_the_reference_one() -> None:
    from training.tasks import preset

    assert preset("translation", "default").optim.fused_adamw is True
    assert preset("translation", "full").optim.fused_adamw is False  # its measured numbers are the reference loop's
    assert preset("sentiment", "default").optim.fused_adamw is True
    reference = adamw(Tiny().parameters(), lr=1e-3, weight_decay=0.0, fused=False)
    assert not reference.defaults["fused"] and reference.defaults["foreach"] is False
