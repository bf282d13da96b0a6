"""VADER, the second sentiment peer: a lexicon of word valences with rules for negation, intensifiers, contrast
("but") and emphasis, no training at all (vaderSentiment 3.3.2, MIT). It is what a user gets from one
`pip install`, so memoria's model must beat it where it claims to be useful: the tweets it was trained on, and
everyday review sentences (the review and contrast probes, training/data/sentiment/).

Scored on the same test split as the models, logged as its own MLflow run. Three classes by VADER's own
thresholds on the compound score (>= 0.05 positive, <= -0.05 negative, neutral between); the probes are binary
(positive iff the compound score > 0), as `binary_accuracy` scores every model.
"""

from __future__ import annotations

import time
from typing import Any

import mlflow
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from serving.contract.names import KIND_TAG
from training.config import SentimentConfig, Workspace
from training.data.sentiment.corpus import LABELS, load_split, prepare_sentiment
from training.data.sentiment.lexicon import three_classes, vader_scores
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.tracking.provenance import data_tags, log_data_inputs
from training.tracking.store import start_run

LEXICON_KIND = "lexicon-peer"  # KIND_TAG of this run: a peer, not the baseline the model card compares with
PREDICTIONS = "predictions/test.json"  # the same path as the TF-IDF peer's, which the study reads


def as_probabilities(compound: np.ndarray) -> np.ndarray:
    """[negative, neutral, positive] columns in LABELS order, so the models' scoring functions apply unchanged:
    P(positive) > P(negative) exactly when the compound score is above 0."""
    columns = {
        "negative": np.clip(-compound, 0.0, 1.0),
        "neutral": 1.0 - np.abs(compound),
        "positive": np.clip(compound, 0.0, 1.0),
    }
    return np.stack([columns[label] for label in LABELS], axis=1)


def run_vader_peer(cfg: SentimentConfig, ws: Workspace) -> dict[str, Any]:
    """Score VADER on the run's test split and on each probe; returns the rounded metrics and the `run_id`."""
    prepared = prepare_sentiment(cfg.data, ws, progress=False)
    test = load_split(prepared.dir, "test")
    truth = np.array([LABELS.index(row["label"]) for row in test])
    started = time.time()
    tags = {KIND_TAG: LEXICON_KIND, **data_tags(prepared.card)}
    with start_run(ws, "sentiment", "peer-vader", cfg.data, tags) as run:
        log_data_inputs("sentiment", prepared.dir, prepared.card)  # card, dataset input; no evaluation set
        predicted = three_classes(vader_scores([row["text"] for row in test]))
        metrics = {
            "test/accuracy": accuracy_score(truth, predicted),
            "test/macro_f1": f1_score(truth, predicted, average="macro"),
            **{f"test/f1_{label}": f for label, f in zip(LABELS, f1_score(truth, predicted, average=None))},
        }
        for name, rows in probe_sets().items():
            probs = as_probabilities(vader_scores([row["text"] for row in rows]))
            metrics[f"probe/{name}_accuracy"] = binary_accuracy(probs, [row["label"] for row in rows], list(LABELS))
        metrics["train_seconds"] = time.time() - started
        mlflow.log_param("model", "vaderSentiment 3.3.2 (lexicon + rules), compound thresholds +-0.05")
        mlflow.log_metrics(metrics)
        mlflow.log_dict({"labels": list(LABELS), "predicted": predicted.tolist()}, PREDICTIONS)
    return {k: round(v, 4) for k, v in metrics.items()} | {"run_id": run.info.run_id}
