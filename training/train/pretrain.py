"""Language-model pretraining of a classifier's embedding and recurrent encoder on unlabeled text, before the
sentiment fine-tuning (ELMo-style: Peters et al., 2018; for classifiers, Dai & Le, 2015).

~30k labelled tweets are little for learning what words mean from scratch. Predicting the next token (forward
direction) and the previous token (backward direction) from the encoder's states needs no labels, so the
embedding and recurrent weights can start from what the text itself teaches. The output layer is tied to the
embedding (Press & Wolf, 2017): each direction's state is projected to the embedding size and scored against
every token's embedding, so pretraining adds one small projection per direction, and both are thrown away after.

Only what cannot see the token it predicts is trained: the forward half of a 1-layer (bi)directional encoder at
step t has read tokens <= t, the backward half tokens >= t. A second bidirectional layer would mix both halves, so
deeper bidirectional stacks are refused.

Text used (`pretrain.sources`): `tweets` = the training split's texts (never validation or test); `english` =
the English side of the prepared translation training pairs (Bible verses, game dialogue and menus), where that
data is on the machine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import mlflow
import torch
from torch import nn
from tqdm.auto import tqdm

from training.config import PretrainConfig, Workspace
from training.data.batching import bucketed_loader, collate_classification
from training.models.classifier import RecurrentClassifier
from training.train.optimizer import adamw

log = logging.getLogger(__name__)
IGNORE = -100


class BidirectionalLM(nn.Module):
    """Next/previous-token prediction on top of a classifier's own embedding and encoder (shared, not copied)."""

    def __init__(self, classifier: RecurrentClassifier) -> None:
        super().__init__()
        encoder = classifier.encoder
        if encoder.num_directions == 2 and encoder.num_layers > 1:
            raise ValueError(
                "pretraining a bidirectional encoder needs model.num_layers=1: the second layer reads both "
                "directions of the first, so it would see the token it is asked to predict"
            )
        self.embedding = classifier.embedding
        # the fixed per-token inputs beside the embedding (lexicon features; the rule valence as zeros: it reads the
        # neighbours this model predicts), built by the classifier's own code
        self.with_lexicon = classifier.with_lexicon
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        dim = self.embedding.embedding_dim
        self.project = nn.ModuleList(nn.Linear(encoder.hidden_size, dim) for _ in range(encoder.num_directions))
        self.bias = nn.Parameter(torch.zeros(self.embedding.num_embeddings))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over every predicted token of the batch (both directions)."""
        inputs = self.with_lexicon(ids, self.dropout(self.embedding(ids)), neighbours=False)
        out, _ = self.encoder.run_from_zero(inputs, lengths)
        hidden = self.encoder.hidden_size
        steps = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        inside = steps < lengths.unsqueeze(1)
        targets = ids.masked_fill(~inside, IGNORE)
        # forward half at t predicts token t+1; backward half at t predicts token t-1
        pairs = [(out[:, :-1, :hidden], targets[:, 1:])]
        if self.encoder.num_directions == 2:
            pairs.append((out[:, 1:, hidden:], targets[:, :-1]))
        losses = []
        for (states, target), project in zip(pairs, self.project, strict=True):
            logits = self.dropout(project(states)) @ self.embedding.weight.t() + self.bias
            losses.append(nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE))
        return torch.stack(losses).mean()


def english_texts(ws: Workspace) -> list[str]:
    """English sentences of the prepared translation training split, if that data is on this machine."""
    path = ws.prepared("translation", "mix") / "train.jsonl"
    if not path.is_file():
        log.warning("pretrain.sources has 'english' but %s is missing (run `make data TASK=translation`)", path)
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["target"] for line in f if line.strip()]


def pretrain_members(
    members: Sequence[RecurrentClassifier],
    ids: list[list[int]],
    cfg: PretrainConfig,
    seed: int,
    progress: bool,
) -> dict[str, float]:
    """Pretrain each member for `cfg.steps` optimiser steps on `ids` (token-id sequences); returns metrics.
    `cfg.minutes` (all members together) is then only a guard: a member it stops early is reported loudly. A config
    with `minutes` and no `steps` (runs from before steps existed, the study's 5-minute rows) pretrains for that
    time, as it always did."""
    steps = cfg.steps if cfg.steps > 0 else float("inf")
    items = [(seq, 0) for seq in ids if len(seq) > 1]  # a one-token text has nothing to predict
    metrics: dict[str, float] = {"pretrain/texts": float(len(items)), "pretrain/tokens": float(sum(map(len, ids)))}
    for index, member in enumerate(members):
        budget = 60 * cfg.minutes / len(members) if cfg.minutes > 0 else float("inf")
        lm = BidirectionalLM(member).train()
        optimizer = adamw(lm.parameters(), cfg.lr, 0.01)
        loader = bucketed_loader(
            items, [len(s) for s, _ in items], cfg.batch_size, True, seed + index, collate_classification, 0
        )
        started, step, recent = time.monotonic(), 0, []
        bar = tqdm(desc=f"pretraining member {index}", unit="batch", disable=not progress)
        while step < steps and time.monotonic() - started < budget:
            for batch_ids, lengths, _ in loader:
                loss = lm(batch_ids, lengths)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
                optimizer.step()
                step += 1
                recent.append(loss.item())
                bar.update()
                if step % 50 == 0 and mlflow.active_run():  # (a test calls this outside any run)
                    mlflow.log_metric(f"pretrain/loss_member{index}", sum(recent[-50:]) / len(recent[-50:]), step=step)
                if step >= steps or time.monotonic() - started >= budget:
                    break
        bar.close()
        tail = recent[-50:] or [float("nan")]
        metrics[f"pretrain/final_loss_member{index}"] = sum(tail) / len(tail)
        metrics[f"pretrain/steps_member{index}"] = float(step)
        if step < steps < float("inf"):
            log.warning(
                "PRETRAINING CUT SHORT: member %d stopped after %d of %d steps by the pretrain.minutes guard (%g min): "
                "this model depends on how busy the machine was",
                index,
                step,
                cfg.steps,
                cfg.minutes,
            )
        log.info(
            "pretrained member %d: %d steps, loss %.3f", index, step, metrics[f"pretrain/final_loss_member{index}"]
        )
    return metrics
