"""Weak supervision from a lexicon teacher, before the tweets: each member first learns to label English sentences
as VADER does (3 classes by its compound thresholds), then fine-tunes on the human-labelled tweets.

Why: the tweets teach 28k texts' worth of vocabulary and phrasing, all about airlines. The English side of the
translation pairs (game text, the Bible: ~80k sentences already on the machine) brings other words and other
sentence shapes, and VADER's labels on them carry its rules (negation, "but", intensifiers). The human labels then
correct what the teacher gets wrong about tweets. The same idea as distillation, with a rule-based teacher.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import mlflow
import numpy as np
from torch import nn
from tqdm import tqdm

from training.config.sentiment import DistillConfig
from training.data.batching import bucketed_loader, collate_classification
from training.models.classifier import RecurrentClassifier
from training.train.optimizer import adamw

log = logging.getLogger(__name__)


def distill_members(
    members: Sequence[RecurrentClassifier],
    ids: list[list[int]],
    labels: np.ndarray,
    cfg: DistillConfig,
    seed: int,
    progress: bool,
) -> dict[str, float]:
    """Train each member for `cfg.steps` optimiser steps on (token ids, teacher label); returns metrics (the share
    of the teacher's labels each member reproduces on its last batches, and the label mix)."""
    items = list(zip(ids, labels.tolist(), strict=True))
    counts = np.bincount(labels, minlength=3) / max(1, len(labels))
    metrics: dict[str, float] = {"distill/texts": float(len(items))}
    metrics.update({f"distill/teacher_share_{i}": float(c) for i, c in enumerate(counts)})
    for index, member in enumerate(members):
        member.train()
        optimizer = adamw(member.parameters(), cfg.lr, 0.01)
        loader = bucketed_loader(
            items, [len(s) for s, _ in items], cfg.batch_size, True, seed + 100 + index, collate_classification, 0
        )
        step, agree = 0, []
        bar = tqdm(desc=f"distilling member {index}", total=cfg.steps, unit="batch", disable=not progress)
        while step < cfg.steps:
            for batch_ids, lengths, y in loader:
                logits = member(batch_ids, lengths)
                loss = nn.functional.cross_entropy(logits, y)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(member.parameters(), 1.0)
                optimizer.step()
                agree.append(float((logits.argmax(1) == y).float().mean()))
                step += 1
                bar.update()
                if step % 50 == 0 and mlflow.active_run():
                    mlflow.log_metric(f"distill/agreement_member{index}", float(np.mean(agree[-50:])), step=step)
                if step >= cfg.steps:
                    break
        bar.close()
        metrics[f"distill/agreement_member{index}"] = float(np.mean(agree[-50:])) if agree else float("nan")
        log.info(
            "distilled member %d: %d steps, agreement with the teacher %.3f",
            index,
            step,
            metrics[f"distill/agreement_member{index}"],
        )
    return metrics
