"""What every memoria LightningModule shares: AdamW with warm-up + cosine decay, and gradient clipping by norm
with the gradient norm logged every step (before and after clipping), so exploding gradients show in MLflow."""

from __future__ import annotations

import math

import lightning as L
import torch

from training.config import OptimConfig


class RecurrentLightningModule(L.LightningModule):
    def __init__(self, optim: OptimConfig) -> None:
        super().__init__()
        self.optim_cfg = optim

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.optim_cfg.lr, weight_decay=self.optim_cfg.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, min(200, total // 20))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))  # cosine down to 10% of lr

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the global L2 norm to `gradient_clip_val` (Trainer setting) and log it every step."""
        max_norm = gradient_clip_val if gradient_clip_val else float("inf")
        params = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)
        self.log("train/grad_norm_clipped", torch.clamp(norm, max=max_norm), on_step=True, on_epoch=False)
