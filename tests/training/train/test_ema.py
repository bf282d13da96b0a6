"""`optim.ema_decay`: the weights validated, checkpointed and restored are the moving average of every step's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from tests.conftest import tiny_sentiment
from training.train.loop import _restore_best, make_trainer
from training.train.moving_average import MovingAverage


class Regression(L.LightningModule):
    """A linear model on fixed data; records its weights after every optimiser step and the weights each validation
    step and epoch-end hook read (translation decodes its BLEU sample in the epoch-end hook), and scores each
    validation by the epoch, so the best checkpoint is the last one."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.after_step: list[torch.Tensor] = []
        self.validated: list[torch.Tensor] = []
        self.scored: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.linear(x), y)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.after_step.append(self.linear.weight.detach().clone())

    def validation_step(self, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.validated.append(self.linear.weight.detach().clone())

    def on_validation_epoch_end(self) -> None:
        self.scored.append(self.linear.weight.detach().clone())
        self.log("val/score", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    data = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(data, batch_size=8), torch.utils.data.DataLoader(data, batch_size=32)


def test_a_decay_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        MovingAverage(1.0)


@pytest.mark.parametrize("decay", [0.0, 0.8])  # 0: off, the weights as trained
def test_validation_checkpoint_and_restored_weights_are_the_moving_average(tmp_path: Path, decay: float) -> None:
    cfg = tiny_sentiment()
    cfg = replace(cfg, optim=replace(cfg.optim, max_epochs=3, patience=10, max_minutes=0.0, ema_decay=decay))
    trainer = make_trainer(cfg, None, None, "val/score", tmp_path / "checkpoints", progress=False)
    module = Regression()
    trainer.fit(module, *loaders())
    # The average, computed here from each step's weights: the first step's weights, then d * average + (1 - d) * new
    average, averages = None, []
    for weights in module.after_step:
        average = weights if average is None or decay == 0 else decay * average + (1 - decay) * weights
        averages.append(average)
    steps_per_epoch = len(module.after_step) // 3
    assert len(module.validated) == len(module.scored) == 3
    for epoch, (validated, scored) in enumerate(zip(module.validated, module.scored, strict=True)):
        torch.testing.assert_close(validated, averages[(epoch + 1) * steps_per_epoch - 1])
        torch.testing.assert_close(scored, averages[(epoch + 1) * steps_per_epoch - 1])
    torch.testing.assert_close(module.linear.weight.detach(), averages[-1])  # left by fit
    module.linear.weight.data.zero_()
    _restore_best(trainer, module)  # the best checkpoint (the last epoch) holds the average too
    torch.testing.assert_close(module.linear.weight.detach(), averages[-1])
    if decay:  # the example is one where averaging changes the weights
        assert not torch.allclose(averages[-1], module.after_step[-1], atol=1e-3)
