"""LightningModule for the sentiment classifier: weighted cross-entropy, accuracy, macro-F1, per-class F1,
confusion matrix."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from serving.contract.text import PAD_ID, UNK_ID
from training.config import SentimentConfig
from training.models.classifier import SentimentNet
from training.train.modules.base import RecurrentLightningModule
from training.train.negation_prior import GROUPS, cue_groups


def classification_metrics(num_labels: int) -> MetricCollection:
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_labels, average="micro"),
            "macro_f1": MulticlassF1Score(num_labels, average="macro"),
            "class_f1": MulticlassF1Score(num_labels, average=None),
        }
    )


def dropped_to_unk(ids: torch.Tensor, probability: float, eligible: torch.Tensor) -> torch.Tensor:
    """`ids` with each eligible position replaced by [UNK] with `probability` (training-time dropout of tokens)."""
    drop = (torch.rand_like(ids, dtype=torch.float32) < probability) & eligible
    return ids.masked_fill(drop, UNK_ID)


def unrated_tokens(ids: torch.Tensor, lexicon: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: the real tokens whose lexicon row is all zero (no valence and no negator, booster or "but" flag)."""
    return (lexicon[ids].abs().sum(dim=2) == 0) & (ids != PAD_ID)


class SentimentModule(RecurrentLightningModule):
    def __init__(
        self, cfg: SentimentConfig, vocab_size: int, labels: tuple[str, ...], class_weights: torch.Tensor | None
    ) -> None:
        super().__init__(cfg.optim)
        self.labels = labels
        self.model = SentimentNet(vocab_size, len(labels), cfg)
        self.word_dropout = cfg.word_dropout
        self.unrated_word_dropout = cfg.unrated_word_dropout
        if self.unrated_word_dropout > 0 and not cfg.lexicon:
            raise ValueError("unrated_word_dropout needs lexicon=true: the lexicon says which tokens are rated")
        self.loss = nn.CrossEntropyLoss(weight=class_weights)
        self.negation_debias = cfg.negation_debias
        if self.negation_debias > 0 and not cfg.lexicon:
            raise ValueError("negation_debias needs lexicon=true: the lexicon says which tokens are negators")
        # the bias-only expert of `negation_debias` (set_negation_prior); not part of the model, nor of its checkpoint
        self.register_buffer("negation_cues", torch.zeros(vocab_size, dtype=torch.bool), persistent=False)
        self.register_buffer("negation_log_odds", torch.zeros(GROUPS, len(labels)), persistent=False)
        self.metrics = nn.ModuleDict({stage: classification_metrics(len(labels)) for stage in ("val", "test")})
        self.confusion = nn.ModuleDict({stage: MulticlassConfusionMatrix(len(labels)) for stage in ("val", "test")})
        self.last_confusion: dict[str, torch.Tensor] = {}

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, lengths)

    def set_negation_prior(self, cues: torch.Tensor, log_odds: torch.Tensor) -> None:
        """The bias-only expert (training/train/negation_prior.py): which tokens are negation cues, and the log-odds
        per label of a text without and with one."""
        self.negation_cues.copy_(cues)
        self.negation_log_odds.copy_(log_odds)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        ids, lengths, labels = batch
        if self.word_dropout > 0:
            # Word dropout (Iyyer et al., 2015): the model cannot lean on any one token, rare ones least of all.
            ids = dropped_to_unk(ids, self.word_dropout, ids != PAD_ID)
        if self.unrated_word_dropout > 0:
            lexicon = self.model.members[0].lexicon  # the same table in every member
            assert lexicon is not None
            ids = dropped_to_unk(ids, self.unrated_word_dropout, unrated_tokens(ids, lexicon))
        bias = 0.0
        if self.negation_debias > 0:  # product of experts: the negation-only expert's log-odds join every member's
            bias = self.negation_debias * self.negation_log_odds[cue_groups(ids, self.negation_cues)]
        # Each ensemble member learns from its own loss, as if trained alone; the sum only shares the batches.
        loss = sum(self.loss(logits + bias, labels) for logits in self.model.member_logits(ids, lengths))
        # sync_dist: the mean over every process's batches in a multi-process run (a no-op in one process)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels), sync_dist=True)
        return loss

    def _eval_step(self, stage: str, batch: tuple[torch.Tensor, ...]) -> None:
        ids, lengths, labels = batch
        logits = self(ids, lengths)
        self.log(f"{stage}/loss", self.loss(logits, labels), on_epoch=True, batch_size=len(labels), sync_dist=True)
        preds = logits.argmax(dim=1)
        self.metrics[stage].update(preds, labels)
        self.confusion[stage].update(preds, labels)

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        # torchmetrics gathers every process's counts in compute(): these are already the whole split's, the same
        # on every rank; sync_dist only averages equal numbers (and tells Lightning they are meant to be global)
        values = self.metrics[stage].compute()
        self.log(f"{stage}/accuracy", values["accuracy"], sync_dist=True)
        self.log(f"{stage}/macro_f1", values["macro_f1"], prog_bar=True, sync_dist=True)
        for label, f1 in zip(self.labels, values["class_f1"]):
            self.log(f"{stage}/f1_{label}", f1, sync_dist=True)
        self.last_confusion[stage] = self.confusion[stage].compute().cpu()
        self.metrics[stage].reset()
        self.confusion[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
