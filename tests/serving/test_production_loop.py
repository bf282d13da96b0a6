"""In production, through the real service (`bentoml serve`, HTTP): what it keeps of each answer (request id,
inference log), corrections (POST /feedback), drift that moves the gauge until the alert rule fires under promtool,
and a log that loses nothing under concurrent load. Two replicas share one production folder, as they would share
a volume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from serving.contract.production import log_files, read_feedback, read_log
from tests.monitoring.drift_alert import THRESHOLD, drift_alert_fires, scraped_distance
from tests.serving_harness import Server, http, load

SPANISH = [
    "El vuelo de hoy fue muy malo y la comida también estaba fría",
    "Nunca más viajo con esta aerolínea, perdieron mi maleta otra vez",
    "Gracias por el servicio, todo estuvo bien y llegamos a tiempo",
    "La tripulación fue muy amable pero el asiento era incómodo",
    "¿Dónde está mi equipaje? Nadie me responde desde ayer",
]
ENGLISH = ["I love this airline, great service!", "Worst flight ever, my bag is lost."]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("production")


def _env(store: dict[str, str], production: Path, **extra: str) -> dict[str, str]:
    # Small windows so that a test fills them in seconds; two workers, each with its own log file and window.
    return {
        **store,
        "MEMORIA_PRODUCTION_DIR": str(production),
        "MEMORIA_DRIFT_WINDOW": "100",
        "MEMORIA_DRIFT_MIN_TEXTS": "20",
        "MEMORIA_WORKERS": "2",
        **extra,
    }


@pytest.fixture(scope="module")
def server(store: dict[str, str], production: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = Server(_env(store, production), tmp_path_factory.mktemp("srv") / "serve.log")
    srv.wait_every_worker_ready()  # the tests count on either worker answering (on a busy machine one lags)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def guarded(store: dict[str, str], production: Path, tmp_path_factory: pytest.TempPathFactory):
    """A second replica on the same production folder: API token on, raw text kept."""
    env = _env(store, production, MEMORIA_API_TOKEN="s3cret", MEMORIA_LOG_TEXT="true", MEMORIA_WORKERS="1")
    srv = Server(env, tmp_path_factory.mktemp("guarded") / "serve.log")
    srv.wait_ready()
    yield srv
    srv.stop()


def _records(production: Path, request_id: str) -> list[dict]:
    return sorted((r for r in read_log(production) if r["request_id"] == request_id), key=lambda r: r["index"])


def test_every_answer_has_a_request_id_and_one_log_record_per_text(server: Server, production: Path) -> None:
    code, body, headers = http("POST", server.base + "/sentiment", {"texts": ENGLISH})
    assert code == 200, body
    request_id = headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", request_id)
    answers = json.loads(body)
    records = _records(production, request_id)
    assert [r["index"] for r in records] == [0, 1]
    model = headers["x-memoria-model"]
    for record, answer, text in zip(records, answers, ENGLISH, strict=True):
        assert record["task"] == "sentiment" and record["endpoint"] == "/sentiment"
        assert record["model"] == model and record["model_version"] == "1"
        assert model.split("sha256:")[1] in record["model_digest"]
        assert record["prediction"] == answer["label"]
        assert record["confidence"] == pytest.approx(answer["scores"][answer["label"]], abs=1e-5)
        assert record["latency_ms"] > 0 and record["time"].endswith("+00:00")
        assert record["input_tokens"] >= 1 and record["words"] == len(re.findall(r"[^\W\d_]+", text))
        assert 0.0 <= record["novelty"] <= 1.0 and record["language"] == "en"
        assert record["text"] is None  # raw text is off by default
    code, body, headers = http("POST", server.base + "/translate", {"texts": ["Buenos días."]})
    assert code == 200, body
    (record,) = _records(production, headers["x-request-id"])
    assert record["task"] == "translation" and record["language"] == "es" and record["confidence"] is None
    assert record["prediction"] is None and len(record["prediction_sha256"]) == 64  # a translation is text too


def test_feedback_is_stored_with_the_model_version_it_corrects(server: Server, production: Path) -> None:
    _, body, headers = http("POST", server.base + "/sentiment", {"texts": ENGLISH})
    request_id, predicted = headers["x-request-id"], json.loads(body)[1]["label"]
    other = next(label for label in ("negative", "neutral", "positive") if label != predicted)
    code, body, _ = http("POST", server.base + "/feedback", {"request_id": request_id, "index": 1, "label": other})
    assert code == 200, body
    answer = json.loads(body)
    assert answer == {
        "request_id": request_id,
        "index": 1,
        "task": "sentiment",
        "model_version": "1",
        "agreed": False,
        "trainable": False,  # no text: the log does not keep it and the client did not send it
    }
    # the client sends the text it asked about: checked against the logged hash, then kept to train on
    code, body, _ = http(
        "POST", server.base + "/feedback", {"request_id": request_id, "index": 1, "label": other, "text": ENGLISH[1]}
    )
    assert code == 200 and json.loads(body)["trainable"] is True, body
    (stored,) = [f for f in read_feedback("sentiment", production) if f.request_id == request_id]
    assert (stored.index, stored.correct, stored.predicted, stored.text) == (1, other, predicted, ENGLISH[1])
    assert stored.model_version == "1" and not stored.agreed
    metrics = http("GET", server.base + "/metrics")[1]
    assert re.search(
        r'memoria_feedback_total\{agreed="false",model="sentiment/v1[^"]*",task="sentiment"\} [1-9]', metrics
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"request_id": "0" * 32, "label": "negative"}, 404, "request_id"),
        ({"request_id": "not-an-id", "label": "negative"}, 400, "request_id"),
        ({"request_id": None, "label": "negative"}, 400, "request_id"),  # None: left out
        ({"index": 2, "label": "negative"}, 400, "index"),
        ({"index": -1, "label": "negative"}, 400, "index"),
        ({"label": "furious"}, 400, "label"),
        ({"translation": "Good morning."}, 400, "translation"),
        ({}, 400, "label"),
        ({"label": "negative", "text": "not what was asked"}, 400, "text"),
        ({"label": "negative", "text": "   "}, 400, "text"),
    ],
)
def test_bad_sentiment_feedback_gets_a_4xx_naming_the_field(
    server: Server, body: dict, status: int, field: str
) -> None:
    _, _, headers = http("POST", server.base + "/sentiment", {"texts": ENGLISH})
    payload = {k: v for k, v in {"request_id": headers["x-request-id"], **body}.items() if v is not None}
    code, text, _ = http("POST", server.base + "/feedback", payload)
    assert code == status, (code, text)
    assert json.loads(text)["detail"][0]["loc"][0] == field, text


@pytest.mark.parametrize(
    ("body", "field"),
    [({"label": "positive"}, "label"), ({"translation": "   "}, "translation"), ({}, "translation")],
)
def test_bad_translation_feedback_gets_a_400_naming_the_field(server: Server, body: dict, field: str) -> None:
    _, _, headers = http("POST", server.base + "/translate", {"texts": ["Buenos días."]})
    code, text, _ = http("POST", server.base + "/feedback", {"request_id": headers["x-request-id"], **body})
    assert code == 400, (code, text)
    assert json.loads(text)["detail"][0]["loc"][0] == field, text


def test_spanish_reviews_move_the_drift_gauge_until_the_alert_fires(server: Server, tmp_path: Path) -> None:
    model = http("POST", server.base + "/sentiment", {"texts": ENGLISH})[2]["x-memoria-model"]
    for _ in range(60):  # 300 Spanish texts: both workers' windows (100) are full of them
        assert http("POST", server.base + "/sentiment", {"texts": SPANISH})[0] == 200
    scraped = scraped_distance(server.base, "sentiment", model)
    assert scraped, "no novelty distance for the served sentiment model on /metrics"
    series, value = scraped
    assert value > THRESHOLD, scraped
    # The alert rule, evaluated by promtool on that scraped series held for 15 minutes, fires.
    drift_alert_fires(series, value, "sentiment", model, "novelty", tmp_path)


def test_english_sent_to_translate_moves_its_language_distance(server: Server) -> None:
    model = http("POST", server.base + "/translate", {"texts": ["Buenos días."], "beam_size": 1})[2]["x-memoria-model"]
    english = ["The flight was late and the food was cold", "I would like to change my seat, please"]
    for _ in range(40):  # 80 texts: more than MEMORIA_DRIFT_MIN_TEXTS in each worker's window
        assert http("POST", server.base + "/translate", {"texts": english, "beam_size": 1})[0] == 200
    scraped = scraped_distance(server.base, "translation", model, signal="language")
    assert scraped and scraped[1] > THRESHOLD, scraped


def _count_log(production: Path, endpoint: str) -> int:
    return sum(1 for r in read_log(production) if r["endpoint"] == endpoint)


def test_the_log_keeps_every_accepted_request_under_concurrent_clients(server: Server, production: Path) -> None:
    before = _count_log(production, "/sentiment")
    result = load(server.base + "/sentiment", {"texts": ["the crew was kind"]}, clients=16, seconds=5)
    assert result.statuses[200] > 100, result.statuses
    assert _count_log(production, "/sentiment") - before == result.statuses[200]  # count in = count out


def test_a_second_replica_logs_apart_and_takes_feedback_for_the_first(
    server: Server, guarded: Server, production: Path
) -> None:
    _, _, headers = http("POST", server.base + "/sentiment", {"texts": ENGLISH})
    request_id = headers["x-request-id"]
    token = {"Authorization": "Bearer s3cret"}
    # the token guards /feedback like every prediction endpoint
    assert http("POST", guarded.base + "/feedback", {"request_id": request_id, "label": "positive"})[0] == 401
    code, body, _ = http("POST", guarded.base + "/feedback", {"request_id": request_id, "label": "positive"}, token)
    assert code == 200, body
    # the second replica keeps raw text: a correction of its own answer can be trained on without sending it
    code, body, headers = http("POST", guarded.base + "/sentiment", {"texts": ["the seat was broken"]}, token)
    assert code == 200, body
    (record,) = _records(production, headers["x-request-id"])
    assert record["text"] == "the seat was broken"
    feedback = {"request_id": headers["x-request-id"], "label": "negative"}
    code, body, _ = http("POST", guarded.base + "/feedback", feedback, token)
    assert code == 200 and json.loads(body)["trainable"] is True, body
    # each replica writes its own folder, each worker its own file
    replicas = {p.relative_to(production).parts[1] for p in log_files(production)}
    assert len(replicas) == 2, replicas


@pytest.mark.slow
def test_the_log_keeps_every_accepted_request_under_64_clients_for_30_seconds(server: Server, production: Path) -> None:
    before = _count_log(production, "/sentiment")
    result = load(server.base + "/sentiment", {"texts": ["the crew was kind"]}, clients=64, seconds=30)
    assert result.statuses[200] > 1000, result.statuses
    logged = _count_log(production, "/sentiment") - before
    print(f"64 clients, 30 s: answered {dict(result.statuses)}, logged {logged}")
    assert logged == result.statuses[200]  # count in = count out
