"""Bundles exported before a change still serve after it: the bundle format is the contract, not the code.

tests/fixtures/bundles/b4b918d/ holds a tiny sentiment and a tiny translation bundle (random weights) that the
exporter of commit b4b918d wrote, before training/ was reorganised into stages and before bundles were signed.
Today's contract still reads them, but serves only what a trusted key signed (serving/contract/signing.py): so
unsigned they are refused, with the reason; signed afterwards (`python -m training sign-bundle PATH`) they verify;
and with verification explicitly off (MEMORIA_VERIFY_SIGNATURES=false, logged) today's service answers with them
(without drift distances: they carry no drift profile, which their model card says).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from serving.contract.bundle import BundleError, load_bundle
from serving.contract.signing import KEY_DIR_ENV, PUBLIC_KEY_ENV, VERIFY_ENV, SignaturePolicy
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor
from tests.conftest import FIXTURES
from tests.serving_harness import Server, http

BEFORE = FIXTURES / "bundles" / "b4b918d"


@pytest.fixture
def verify_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Verification as by default, with this test's own local key pair (made by the first signing)."""
    monkeypatch.delenv(VERIFY_ENV, raising=False)
    monkeypatch.delenv(PUBLIC_KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path / "keys"))
    return tmp_path


def test_unsigned_bundles_from_before_signatures_are_refused_with_the_reason(verify_on: Path) -> None:
    for task in ("sentiment", "translation"):
        with pytest.raises(BundleError, match=rf"unsigned bundle \(manifest\.sig is missing\).*{VERIFY_ENV}=false"):
            load_bundle(BEFORE / task, task)


def test_bundles_from_before_signatures_verify_and_predict_once_signed(verify_on: Path) -> None:
    from training.cli import main

    copies = {}
    for task in ("sentiment", "translation"):
        copies[task] = shutil.copytree(BEFORE / task, verify_on / task)
        assert main(["sign-bundle", str(copies[task])]) == 0
        assert (
            load_bundle(copies[task], task).digest
            == load_bundle(BEFORE / task, task, SignaturePolicy(verify=False)).digest
        )
    probabilities = SentimentPredictor(load_bundle(copies["sentiment"], "sentiment")).probabilities(
        ["what a lovely flight", "lost my bag again"]
    )
    assert probabilities.shape == (2, 3) and abs(float(probabilities.sum(axis=1).max()) - 1.0) < 1e-5
    translation = load_bundle(copies["translation"], "translation")
    outputs = TranslationPredictor(translation).translate(["¿Cómo estás?"], beam_size=2)
    assert len(outputs) == 1 and isinstance(outputs[0], str)


def test_the_service_refuses_unsigned_bundles_and_serves_them_only_when_told_not_to_verify(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEMORIA_SENTIMENT_BUNDLE": str(BEFORE / "sentiment"),
        "MEMORIA_TRANSLATION_BUNDLE": str(BEFORE / "translation"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}",
        KEY_DIR_ENV: str(tmp_path / "keys"),
    }
    env.pop(VERIFY_ENV, None)
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    # both started at once: two cold starts in the time of one
    refusing = Server(env, tmp_path / "on" / "serve.log")
    trusting = Server({**env, VERIFY_ENV: "false"}, tmp_path / "off" / "serve.log")
    try:
        # every worker: /models below is answered by any of them, and one still loading gives a "not loaded" card
        trusting.wait_every_worker_ready()
        code, body, headers = http("POST", trusting.base + "/sentiment", {"texts": ["the crew was lovely"]})
        assert code == 200, body
        assert headers["x-memoria-model"].startswith("sentiment/path sha256:")
        assert json.loads(body)[0]["label"] in {"negative", "neutral", "positive"}
        code, body, _ = http("POST", trusting.base + "/translate", {"texts": ["¿Cómo estás?"], "beam_size": 1})
        assert code == 200, body
        assert isinstance(json.loads(body)[0]["translation"], str)
        # an old bundle has no drift profile: logged and answered as before, no distance, the card says why
        for _ in range(30):
            assert http("POST", trusting.base + "/sentiment", {"texts": ["the crew was lovely"]})[0] == 200
        assert "memoria_drift_distance{" not in http("GET", trusting.base + "/metrics")[1]
        cards = json.loads(http("GET", trusting.base + "/models")[1])
        profiles = [card.get("drift_profile", card) for card in cards.values()]
        assert profiles and all(
            p == {"available": False, "reason": "the bundle was exported before drift profiles existed"}
            for p in profiles
        ), profiles
        warnings = [line for line in trusting.log.read_text().splitlines() if f"{VERIFY_ENV}=false" in line]
        assert warnings and all("WARNING" in line and "NOT checked" in line for line in warnings), warnings

        # the verifying one says why in its log and never becomes ready
        deadline = time.time() + 60
        while "unsigned bundle" not in refusing.log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        assert "unsigned bundle (manifest.sig is missing)" in refusing.log.read_text()
        assert http("GET", refusing.base + "/readyz")[0] == 503
        code, body, _ = http("POST", refusing.base + "/sentiment", {"texts": ["the crew was lovely"]})
        assert code == 503, body
    finally:
        refusing.stop()
        trusting.stop()
