"""Bundles exported before a change still serve after it: the bundle format is the contract, not the code.

tests/fixtures/bundles/b4b918d/ holds a tiny sentiment and a tiny translation bundle (random weights) that the
exporter of commit b4b918d wrote, before training/ was reorganised into stages. Today's contract must verify them
and today's service must answer with them over HTTP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from serving.contract.bundle import load_bundle
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor
from tests.conftest import FIXTURES
from tests.serving_harness import Server, http

BEFORE = FIXTURES / "bundles" / "b4b918d"


def test_bundles_exported_before_the_reorganisation_verify_and_predict() -> None:
    sentiment = load_bundle(BEFORE / "sentiment", "sentiment")
    probabilities = SentimentPredictor(sentiment).probabilities(["what a lovely flight", "lost my bag again"])
    assert probabilities.shape == (2, 3) and abs(float(probabilities.sum(axis=1).max()) - 1.0) < 1e-5
    translation = load_bundle(BEFORE / "translation", "translation")
    outputs = TranslationPredictor(translation).translate(["¿Cómo estás?"], beam_size=2)
    assert len(outputs) == 1 and isinstance(outputs[0], str)


def test_the_service_answers_with_bundles_exported_before_the_reorganisation(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEMORIA_SENTIMENT_BUNDLE": str(BEFORE / "sentiment"),
        "MEMORIA_TRANSLATION_BUNDLE": str(BEFORE / "translation"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}",
    }
    srv = Server(env, tmp_path / "serve.log")
    try:
        srv.wait_ready()
        code, body, headers = http("POST", srv.base + "/sentiment", {"texts": ["the crew was lovely"]})
        assert code == 200, body
        assert headers["x-memoria-model"].startswith("sentiment/path sha256:")
        assert json.loads(body)[0]["label"] in {"negative", "neutral", "positive"}
        code, body, _ = http("POST", srv.base + "/translate", {"texts": ["¿Cómo estás?"], "beam_size": 1})
        assert code == 200, body
        assert isinstance(json.loads(body)[0]["translation"], str)
    finally:
        srv.stop()
