"""The sentiment peer, on the same splits as the recurrent models and logged as its own MLflow run: TF-IDF (word 1-2
grams + character 2-5 grams) + logistic regression, C chosen on the validation split. It sees the texts through
the same normaliser as the recurrent model's tokenizer, so the comparison is about the model, not the
preprocessing. (The translation peer is Apertium: training/peers/apertium.py; the task table names each task's.)
"""

from __future__ import annotations

import time
from typing import Any

import mlflow
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.pipeline import make_pipeline, make_union

from serving.contract.names import KIND_TAG, PEER_KIND
from training.config import SentimentConfig, Workspace
from training.data.sentiment.corpus import LABELS, load_split, prepare_sentiment
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.metrics.calibration import expected_calibration_error
from training.plots import close, confusion_matrix_figure
from training.text import build_normalizer
from training.tracking.provenance import data_tags, log_data_inputs
from training.tracking.store import start_run

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
PREDICTIONS = "predictions/test.json"


def tfidf_pipeline(c: float):
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=300_000),
    )
    return make_pipeline(features, LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))


def fit_on_validation(x: dict[str, list[str]], y: dict[str, np.ndarray]) -> tuple[Any, float, dict[float, float]]:
    """The peer fitted on `train` with the C of C_GRID that scores best on `validation` (macro-F1); also the score of
    every C. `x` holds normalised texts, `y` label indices, by split name."""
    scores = {}
    for c in C_GRID:
        model = tfidf_pipeline(c).fit(x["train"], y["train"])
        scores[c] = f1_score(y["validation"], model.predict(x["validation"]), average="macro")
    best_c = max(scores, key=scores.get)
    return tfidf_pipeline(best_c).fit(x["train"], y["train"]), best_c, scores


def run_tfidf_baseline(cfg: SentimentConfig, ws: Workspace) -> dict[str, Any]:
    """Fit, pick C on validation, score test; returns the rounded metrics and the MLflow `run_id`."""
    prepared = prepare_sentiment(cfg.data, ws, progress=False)
    normalize = build_normalizer(lowercase=True, tweets=True).normalize_str
    splits = {name: load_split(prepared.dir, name) for name in ("train", "validation", "test")}
    x = {name: [normalize(r["text"]) for r in rows] for name, rows in splits.items()}
    y = {name: np.array([LABELS.index(r["label"]) for r in rows]) for name, rows in splits.items()}

    started = time.time()
    tags = {KIND_TAG: PEER_KIND, **data_tags(prepared.card)}  # the model card finds the peer by its data
    with start_run(ws, "sentiment", "baseline-tfidf-logreg", cfg.data, tags) as run:
        log_data_inputs("sentiment", prepared.dir, prepared.card)  # card, dataset input (a peer logs no evaluation set)
        model, best_c, scores = fit_on_validation(x, y)
        for c, score in scores.items():
            mlflow.log_metric("val/macro_f1_by_c", score, step=C_GRID.index(c))
        pred = model.predict(x["test"])
        metrics = {
            "val/macro_f1": scores[best_c],
            "test/accuracy": accuracy_score(y["test"], pred),
            "test/macro_f1": f1_score(y["test"], pred, average="macro"),
            **{f"test/f1_{label}": f for label, f in zip(LABELS, f1_score(y["test"], pred, average=None))},
            "calibration/ece_test": expected_calibration_error(model.predict_proba(x["test"]), y["test"]),
            **{
                f"probe/{name}_accuracy": binary_accuracy(
                    model.predict_proba([normalize(r["text"]) for r in rows]), [r["label"] for r in rows], list(LABELS)
                )
                for name, rows in probe_sets().items()
            },
            "train_seconds": time.time() - started,
        }
        mlflow.log_param("model", "tfidf(word 1-2, char_wb 2-5) + logistic regression")
        mlflow.log_param("best_c", best_c)
        mlflow.log_metrics(metrics)
        matrix = confusion_matrix(y["test"], pred, labels=range(len(LABELS)))
        fig = confusion_matrix_figure(matrix, LABELS, f"baseline, test split ({len(pred)} texts)")
        mlflow.log_figure(fig, "plots/confusion_test.png")
        close(fig)
        # per-text predictions, in the split file's order: what a paired comparison with another model needs
        mlflow.log_dict({"labels": list(LABELS), "predicted": pred.tolist()}, PREDICTIONS)
    return {k: round(v, 4) for k, v in metrics.items()} | {"run_id": run.info.run_id}
