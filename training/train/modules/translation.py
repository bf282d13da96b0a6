"""LightningModule for Spanish -> English translation: label-smoothed NLL, perplexity, and a greedy-decoded BLEU on
a fixed sample of validation sentences every epoch (the metric that picks the best epoch)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sacrebleu
import torch

from serving.contract.text import PAD_ID
from training.config import TranslationConfig
from training.data.batching import pad_tensor
from training.models.seq2seq import Seq2Seq, greedy_decode
from training.train.modules.base import RecurrentLightningModule
from training.train.sampled_softmax import sampled_smoothed_nll

TranslationBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # src, src_len, tgt_in, tgt_out


def smoothed_nll(
    log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Label-smoothed NLL averaged over real (non-PAD) target tokens, as in torch's cross_entropy: the target gets
    1 - smoothing of the mass and every class smoothing / V.

    Returns (loss, summed plain NLL, token count); the last two give a token-weighted perplexity across batches.
    """
    mask = targets != PAD_ID
    nll = -log_probs.gather(2, targets.unsqueeze(2)).squeeze(2)
    tokens = mask.sum()
    per_token = nll if smoothing <= 0 else (1.0 - smoothing) * nll - smoothing * log_probs.mean(dim=2)
    loss = (per_token * mask).sum() / tokens.clamp(min=1)
    return loss, (nll.detach() * mask).sum(), tokens


@dataclass(frozen=True)
class BleuSample:
    """Validation sentences decoded every epoch: source ids, their English references, and ids -> text."""

    sources: Sequence[Sequence[int]]
    references: Sequence[str]
    detokenize: Callable[[Sequence[int]], str]
    max_output_tokens: int
    batch_size: int = 64


class TranslationModule(RecurrentLightningModule):
    def __init__(
        self, cfg: TranslationConfig, source_vocab_size: int, target_vocab_size: int, bleu: BleuSample | None = None
    ) -> None:
        super().__init__(cfg.optim)
        self.model = Seq2Seq(source_vocab_size, target_vocab_size, cfg.model)
        self.smoothing = cfg.model.label_smoothing
        self.teacher_forcing = cfg.model.teacher_forcing
        self.sampled_softmax = cfg.model.sampled_softmax
        self.bleu = bleu
        self._val_nll = 0.0
        self._val_tokens = 0

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.model(src, src_len, tgt_in, self.teacher_forcing if self.training else 1.0)

    def training_loss(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, target token count) of one training batch: what a training step optimises (also timed by
        tests/benchmarks/bench_translation_training.py)."""
        src, src_len, tgt_in, tgt_out = batch
        if self.sampled_softmax > 0 and self.teacher_forcing >= 1.0:
            # the loss over the batch's targets and sampled negatives only (training/train/sampled_softmax.py)
            features = self.model.teacher_forced_features(src, src_len, tgt_in)
            loss, _, tokens = sampled_smoothed_nll(
                features, self.model.decoder.output, tgt_out, self.smoothing, self.sampled_softmax
            )
        else:
            loss, _, tokens = smoothed_nll(self(src, src_len, tgt_in), tgt_out, self.smoothing)
        return loss, tokens

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        loss, tokens = self.training_loss(batch)
        # sync_dist: the mean over every process's batches in a multi-process run (a no-op in one process)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=int(tokens), sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_nll, self._val_tokens = 0.0, 0

    def validation_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        src, src_len, tgt_in, tgt_out = batch
        loss, nll_sum, tokens = smoothed_nll(self(src, src_len, tgt_in), tgt_out, self.smoothing)
        self.log("val/loss", loss, on_epoch=True, batch_size=int(tokens), sync_dist=True)
        self._val_nll += float(nll_sum)
        self._val_tokens += int(tokens)

    def on_validation_epoch_end(self) -> None:
        # Token-weighted over the whole split: in a multi-process run each process saw its share of the batches, so
        # the sums of all of them are added first (one process: reduce returns them as they are).
        sums = torch.tensor([self._val_nll, float(self._val_tokens)], dtype=torch.float64, device=self.device)
        nll_sum, tokens = self.trainer.strategy.reduce(sums, reduce_op="sum").tolist()
        nll = nll_sum / max(1.0, tokens)
        # From here every value is the same on every rank (each decodes the whole BLEU sample with the same weights):
        # sync_dist only averages equal numbers, so checkpointing and early stopping decide alike everywhere.
        self.log("val/nll", nll, sync_dist=True)
        self.log("val/perplexity", math.exp(min(nll, 50.0)), prog_bar=True, sync_dist=True)
        if self.bleu is not None:
            self.log("val/bleu", self.sample_bleu(self.bleu), prog_bar=True, sync_dist=True)

    @torch.no_grad()
    def sample_bleu(self, sample: BleuSample) -> float:
        """Corpus BLEU of greedy translations of `sample` (batched by source length)."""
        order = sorted(range(len(sample.sources)), key=lambda i: len(sample.sources[i]))
        hypotheses = [""] * len(order)
        for start in range(0, len(order), sample.batch_size):
            chunk = order[start : start + sample.batch_size]
            ids, lengths = pad_tensor([sample.sources[i] for i in chunk])
            tokens, out_len, _ = greedy_decode(
                self.model, ids.to(self.device), lengths.to(self.device), sample.max_output_tokens
            )
            for row, i in enumerate(chunk):
                hypotheses[i] = sample.detokenize(tokens[row, : int(out_len[row])].tolist())
        return float(sacrebleu.corpus_bleu(hypotheses, [list(sample.references)]).score)
