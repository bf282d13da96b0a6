"""VADER, the lexicon peer (training/peers/vader.py): the real vaderSentiment on the review fixture, logged as its own
run with the same metrics and probes the models report."""

from __future__ import annotations

import numpy as np
from mlflow import MlflowClient

from serving.contract.names import KIND_TAG
from tests.conftest import tiny_sentiment
from training.config import Workspace
from training.data.sentiment.corpus import LABELS
from training.peers.vader import LEXICON_KIND, as_probabilities, run_vader_peer, three_classes, vader_scores


def test_vader_reads_negation_and_contrast_as_its_rules_say() -> None:
    compound = vader_scores(["not bad at all", "it looked great but it broke in a day", "The box is blue."])
    assert compound[0] > 0 and compound[1] < 0 and compound[2] == 0
    assert [LABELS[i] for i in three_classes(compound)] == ["positive", "negative", "neutral"]


def test_probabilities_put_positive_above_negative_exactly_when_the_compound_is_positive() -> None:
    compound = np.array([-0.9, -0.01, 0.0, 0.02, 0.7])
    probs = as_probabilities(compound)
    pos, neg = LABELS.index("positive"), LABELS.index("negative")
    assert (probs[:, pos] > probs[:, neg]).tolist() == [False, False, False, True, True]


def test_the_vader_peer_is_logged_as_a_run_with_test_and_probe_metrics(ws: Workspace) -> None:
    result = run_vader_peer(tiny_sentiment("data.max_examples=0"), ws)
    run = MlflowClient(ws.tracking_uri).get_run(result["run_id"])
    assert run.data.tags[KIND_TAG] == LEXICON_KIND  # not the baseline the model card compares with
    for key in ("test/macro_f1", "test/accuracy", "probe/review_accuracy", "probe/contrast_accuracy"):
        assert 0.0 <= run.data.metrics[key] <= 1.0, key
