"""What the reviews alone teach (training/experiments/review_data_probes.py): the probes' scorer and the BiLSTM."""

from __future__ import annotations

import numpy as np

from training.data.sentiment.review_probe import probe_sets
from training.experiments.review_data_probes import bilstm_on_sentences, binary_scores


def test_the_scorer_reads_each_probe_and_each_phenomenon() -> None:
    rows = {name: [r for r in probe if r["label"] in ("positive", "negative")] for name, probe in probe_sets().items()}
    scores = binary_scores(lambda texts: np.ones(len(texts), dtype=bool))  # "positive" for every text
    for name, probe in rows.items():
        assert scores[name] == np.mean([r["label"] == "positive" for r in probe])
    negation = [r for r in rows["contrast"] if r["phenomenon"] == "negation"]
    assert scores["contrast/negation"] == np.mean([r["label"] == "positive" for r in negation])
    assert binary_scores(lambda texts: np.array(["great" in t.lower() for t in texts]))["review"] != scores["review"]


def test_the_bilstm_learns_which_words_mean_what_from_the_labels() -> None:
    index = {"a": 2, "great": 3, "awful": 4, "film": 5, "not": 6}
    vectors = np.random.default_rng(0).normal(size=(7, 100)).astype(np.float32)
    vectors[:2] = 0  # padding, unknown
    texts = ["a great film", "great", "an awful film", "awful a film"] * 40
    labels = np.array([1, 1, 0, 0] * 40)
    predict = bilstm_on_sentences(texts, labels, vectors, index, epochs=3, seed=0)
    assert predict(["great film", "a film great", "awful", "film awful"]).tolist() == [True, True, False, False]
