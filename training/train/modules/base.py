"""What every memoria LightningModule shares: AdamW with warm-up + cosine decay sized to what the run can finish
(epochs or the wall-clock cap, whichever ends first), and gradient clipping by norm with the norm logged (before
and after clipping, the maximum over each logging window, so spikes still show)."""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from training.config import OptimConfig
from training.train.optimizer import adamw


def lr_factor(step: int, total_steps: int, warmup: int, elapsed_fraction: float = 0.0) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine down to 10%.

    Progress is the larger of the step fraction and the elapsed share of the time cap, so a run stopped by its cap
    (a busy or slow machine) still ends at the low learning rate that the last epochs need, instead of being cut
    off at the top of a schedule sized for `max_epochs`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total_steps - warmup), elapsed_fraction))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class RecurrentLightningModule(L.LightningModule):
    def __init__(self, optim: OptimConfig) -> None:
        super().__init__()
        self.optim_cfg = optim
        # (raw, clipped) norms since the last write, kept as tensors: no device sync on the steps that do not log
        self._norm_window: list[tuple[torch.Tensor, torch.Tensor]] = []

    def configure_optimizers(self) -> dict:
        optimizer = adamw(self.parameters(), self.optim_cfg.lr, self.optim_cfg.weight_decay, self.optim_cfg.fused_adamw)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if self.optim_cfg.max_steps > 0:  # a step budget (training/train/loop.py StepBudget) ends the run first
            total = min(total, self.optim_cfg.max_steps)
        warmup = max(1, min(200, total // 20))
        # The cap counts validation too; stop decaying a little early so the last epoch runs at the floor. Presets
        # sized in work turn this off: their schedule, like their model, must not depend on machine load.
        budget = self.optim_cfg.max_minutes * 60 * 0.95 if self.optim_cfg.time_aware_decay else 0.0
        started = time.monotonic()

        def schedule(step: int) -> float:
            elapsed = (time.monotonic() - started) / budget if budget > 0 else 0.0
            return lr_factor(step, total, warmup, elapsed)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the global L2 norm to `gradient_clip_val` (Trainer setting); log the raw and the clipped norm.

        The clipped norm is measured on the clipped gradients, not computed as min(norm, max). Both are logged as
        the maximum over the Trainer's logging window (`optim.log_every_n_steps`): a write per step costs more than
        the step on small models, and a window maximum keeps every spike visible."""
        max_norm = gradient_clip_val if gradient_clip_val else float("inf")
        params = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        clipped = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        self._norm_window.append((norm.detach(), clipped.detach()))
        if len(self._norm_window) >= max(1, self.trainer.log_every_n_steps) or self.trainer.is_last_batch:
            raw, after = (torch.stack(column).max() for column in zip(*self._norm_window, strict=True))
            self.log("train/grad_norm", raw, on_step=True, on_epoch=False)
            self.log("train/grad_norm_clipped", after, on_step=True, on_epoch=False)
            self._norm_window.clear()
