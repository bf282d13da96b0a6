"""The production loop end to end, as an operator meets it (slow tier: two trainings, a retrain, a live service):

serve a champion -> answer requests (each logged) -> users correct some answers (POST /feedback) -> the input
shifts (Spanish reviews to /sentiment) until the drift gauge crosses its threshold and the alert rule fires under
promtool -> `make drift` reports it -> `make retrain FEEDBACK=1` learns the corrections -> the gate promotes ->
the running service swaps to the new champion -> the corrected texts are answered as corrected.

The champion is deliberately undertrained (one epoch on a synthetic review set big enough for the gate) and the
retrain trains longer, so the gate has a real lead to find; the corrections teach a word the training data never
had ("zorglub", said of things users liked), which only a model trained on them can know.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.monitoring.drift_alert import THRESHOLD, drift_alert_fires, scraped_distance
from tests.serving.test_production_loop import SPANISH
from tests.serving_harness import TRANSLATION_ARGS, Server, cli, http
from tests.synthetic_reviews import FILLERS, SUBJECTS, write_reviews
from training.data.feedback import held_out
from training.data.sentiment.dedupe import dedupe_key

HOLDOUT_SHARE = 0.2  # the FeedbackConfig default


def corrected_texts() -> list[str]:
    """Texts only a model that learned "zorglub" = liked can get right: the rest of each text is neutral filler."""
    return [f"{subject} was zorglub, {filler}" for subject in SUBJECTS for filler in FILLERS[:4]]  # 60: one request


def sentiment_labels(base: str, texts: list[str], headers: dict[str, str]) -> tuple[list[str], str, str]:
    code, body, answer_headers = http("POST", base + "/sentiment", {"texts": texts}, headers)
    assert code == 200, body
    return [a["label"] for a in json.loads(body)], answer_headers["x-request-id"], answer_headers["x-memoria-model"]


@pytest.mark.slow
def test_serve_correct_drift_alert_report_retrain_promote_swap(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEMORIA_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        "MEMORIA_BUNDLE_CACHE": str(tmp_path / "bundle-cache"),
        "MEMORIA_PRODUCTION_DIR": str(tmp_path / "production"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    reviews = write_reviews(tmp_path / "reviews.csv")
    data = ["--set", "data.source=csv", "--set", f"data.path={reviews}", "--set", "data.max_examples=0"]
    cli(env, "train", "--task", "sentiment", "--preset", "smoke", *data, "--set", "optim.max_epochs=1")
    cli(env, "train", "--task", "translation", "--preset", "smoke", *TRANSLATION_ARGS)

    # Serve the champion, texts kept in the log (so corrections can be trained on), fast champion polling
    serve_env = {
        **env,
        "MEMORIA_LOG_TEXT": "true",
        "MEMORIA_RELOAD_INTERVAL_S": "1",
        "MEMORIA_DRIFT_WINDOW": "100",
        "MEMORIA_DRIFT_MIN_TEXTS": "20",
        "MEMORIA_API_TOKEN": "s3cret",
    }
    token = {"Authorization": "Bearer s3cret"}
    srv = Server(serve_env, tmp_path / "serve.log")
    try:
        srv.wait_ready()
        texts = corrected_texts()
        before, request_id, model = sentiment_labels(srv.base, texts, token)
        assert model.startswith("sentiment/v1 ")
        wrong_before = sum(label != "positive" for label in before)

        # Users correct every answer: the right label is positive
        for index in range(len(texts)):
            feedback = {"request_id": request_id, "index": index, "label": "positive"}
            code, body, _ = http("POST", srv.base + "/feedback", feedback, token)
            assert code == 200 and json.loads(body)["trainable"], body

        # The input shifts: Spanish reviews to /sentiment, until the novelty distance passes the alert's threshold
        for _ in range(60):
            assert http("POST", srv.base + "/sentiment", {"texts": SPANISH}, token)[0] == 200
        scraped = scraped_distance(srv.base, "sentiment", model)
        assert scraped and scraped[1] > THRESHOLD, scraped
        drift_alert_fires(*scraped, "sentiment", model, "novelty", tmp_path)

        # make drift: the same story from the log, as an MLflow run
        report = cli(env, "drift", "--task", "sentiment")
        assert re.search(r"novelty\s+JS distance \d\.\d+\s+\(over 0\.3: alert\)", report), report
        assert "most novel words: " in report and "zorglub" in report.split("most novel words: ")[1], report
        assert f"feedback: {len(texts)} correction(s), disagreement {wrong_before / len(texts):.1%}" in report, report

        # make retrain FEEDBACK=1 (trained longer than the undertrained champion): the gate promotes it
        out = cli(env, "retrain", "--task", "sentiment", "--feedback", "--set", "optim.max_epochs=8")
        assert "registered version 2" in out and "promoted to champion" in out, out
        assert "trained on" in out and "held-out corrections" in out, out

        # The running service swaps to it (polling every second), and answers the corrected texts as corrected
        deadline = time.time() + 60
        while True:
            after, _, now_serving = sentiment_labels(srv.base, texts, token)
            if now_serving.startswith("sentiment/v2 ") or time.time() > deadline:
                break
            time.sleep(1)
        assert now_serving.startswith("sentiment/v2 "), now_serving
        trained = [i for i, t in enumerate(texts) if not held_out(dedupe_key(t), HOLDOUT_SHARE)]
        right = sum(after[i] == "positive" for i in trained)
        print(f"corrected: v1 wrong on {wrong_before}/{len(texts)}; v2 right on {right}/{len(trained)} trained on")
        assert right >= 0.9 * len(trained), (right, len(trained), wrong_before)
        assert wrong_before > 0.5 * len(texts), "the champion already knew: the test would prove nothing"
    finally:
        srv.stop()
