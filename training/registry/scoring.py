"""Each task's gate metric on a bundle, computed by serving's own predictors (onnxruntime, no torch): exactly what
would be served. The task table names which one a task uses (`score_bundle`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sacrebleu

from serving.contract.bundle import Bundle
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor
from training.metrics.decision import macro_f1


def sentiment_macro_f1(bundle: Bundle, rows: Sequence[dict[str, Any]]) -> float:
    """Macro-F1 (0..1) of the served argmax."""
    predictor = SentimentPredictor(bundle)
    index = {label: i for i, label in enumerate(predictor.labels)}
    predicted = predictor.probabilities([row["text"] for row in rows]).argmax(axis=1)
    truth = np.array([index[row["label"]] for row in rows])
    return macro_f1(predicted, truth, len(predictor.labels))


def translation_bleu(bundle: Bundle, rows: Sequence[dict[str, Any]]) -> float:
    """BLEU (0..100) of greedy decoding (beam 1: the same for both bundles, and 5x cheaper than a beam; single
    reference, as `val/bleu`)."""
    hypotheses = TranslationPredictor(bundle).translate([row["source"] for row in rows], beam_size=1)
    return float(sacrebleu.corpus_bleu(hypotheses, [[row["target"] for row in rows]]).score)
