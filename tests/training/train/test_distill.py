"""Weak supervision from a lexicon teacher (training/train/distill.py): a member learns to reproduce VADER's labels."""

from __future__ import annotations

import numpy as np
import torch

from training.config import DistillConfig, RecurrentConfig
from training.data.sentiment.lexicon import three_classes, vader_scores
from training.models.classifier import RecurrentClassifier
from training.train.distill import distill_members


def test_a_member_learns_the_teachers_labels() -> None:
    torch.manual_seed(0)
    words = {"wonderful": 4, "awful": 5, "table": 6, "not": 7}
    texts = ["wonderful", "awful", "table", "not wonderful", "not awful", "table table"] * 40
    labels = three_classes(vader_scores(texts))
    assert set(labels.tolist()) == {0, 1, 2}  # the teacher's three classes, "not wonderful" among the negatives
    ids = [[words[w] for w in text.split()] for text in texts]
    member = RecurrentClassifier(8, 3, RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0))
    metrics = distill_members([member], ids, labels, DistillConfig(steps=150, lr=1e-2, batch_size=16), 0, False)
    assert metrics["distill/texts"] == len(texts)
    assert metrics["distill/agreement_member0"] > 0.9
    assert np.isclose(sum(metrics[f"distill/teacher_share_{i}"] for i in range(3)), 1.0)
