"""The exponential moving average of the weights (`optim.ema_decay`), kept by Lightning's WeightAveraging."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


class MovingAverage(WeightAveraging):
    """After every optimiser step: average = decay * average + (1 - decay) * weights (the first step's weights to
    start). Validation, the checkpoint and the weights left after fit are the average's.

    Lightning's own EMAWeightAveraging puts the trained weights back in `on_validation_epoch_end`, and Lightning runs
    callbacks' hooks before the module's: translation's validation BLEU, decoded in the module's
    `on_validation_epoch_end`, would score the trained weights while the loss and the checkpoint had the average's.
    Here they go back in `on_validation_end`, after every epoch-end hook and before the checkpoint is written
    (Lightning runs checkpoint callbacks last), which stores the average. Only the parameters are averaged: the
    buffers (lexicon tables, masks) are not learned. The foreach update is one fused pass over all parameters."""

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in (0, 1), got {decay}")
        super().__init__(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = decay

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the average stays in place through the module's own epoch-end hook

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)
