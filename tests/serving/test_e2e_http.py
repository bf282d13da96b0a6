"""End to end, the way a user meets memoria: train through the CLI, promote, `bentoml serve`, real HTTP.

Serves the registry's tiny champions (the `store` fixture: trained on the local fixtures through the CLI, exactly
as `make train ARGS=...`), and checks answers, validation errors, the error answers of the request guard, the
OpenAPI contract (schemathesis), readiness, sustained load, and that no serving process loaded torch.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serving_harness import Server, http, load, rss_kib

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def server(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    # A load delay makes the not-ready window observable even on a fast machine.
    srv = Server({**store, "MEMORIA_LOAD_DELAY_SECONDS": "3"}, tmp_path_factory.mktemp("srv") / "serve.log")
    srv.statuses = srv.wait_ready()
    yield srv
    srv.stop()


def test_readyz_is_503_until_both_models_are_loaded(server: Server) -> None:
    assert 503 in server.statuses, f"expected 503 while loading, saw {server.statuses}"
    assert server.statuses[-1] == 200
    for path in ("/livez", "/metrics"):
        assert http("GET", server.base + path)[0] == 200


def test_sentiment_over_http(server: Server) -> None:
    texts = ["I love this airline, great service!", "Worst flight ever, my bag is lost.", "The flight leaves at 5pm."]
    code, body, headers = http("POST", server.base + "/sentiment", {"texts": texts})
    assert code == 200, body
    answers = json.loads(body)
    assert len(answers) == len(texts)
    for a in answers:
        assert a["label"] in ("negative", "neutral", "positive")
        assert set(a["scores"]) == {"negative", "neutral", "positive"}
        assert abs(sum(a["scores"].values()) - 1) < 1e-4
        assert a["label"] == max(a["scores"], key=a["scores"].get)
    assert headers["x-memoria-model"].startswith("sentiment/v1 sha256:")


def test_translation_over_http(server: Server) -> None:
    texts = ["Buenos días.", "¿Cómo estás?"]
    for beam in (1, 3):
        code, body, headers = http("POST", server.base + "/translate", {"texts": texts, "beam_size": beam})
        assert code == 200, body
        answers = json.loads(body)
        assert len(answers) == len(texts)
        assert all(isinstance(a["translation"], str) and a["translation"].strip() for a in answers), answers
        assert headers["x-memoria-model"].startswith("translation/v1 sha256:")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sentiment", {}, "texts"),
        ("/sentiment", {"texts": "not a list"}, "texts"),
        ("/sentiment", {"texts": []}, "texts"),
        ("/sentiment", {"texts": [42]}, "texts"),
        ("/sentiment", {"texts": ["   "]}, "texts"),
        ("/sentiment", {"texts": ["ok"] * 65}, "texts"),
        ("/translate", {"texts": [""]}, "texts"),
        ("/translate", {"texts": ["hola " * 200]}, "texts"),
        ("/translate", {"texts": ["hola"], "beam_size": 0}, "beam_size"),
        ("/translate", {"texts": ["hola"], "beam_size": 99}, "beam_size"),
        ("/translate", {"texts": ["hola"], "beam_size": True}, "beam_size"),  # JSON true is not an integer
        ("/translate", {"texts": ["hola"], "beam_size": "4"}, "beam_size"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(server: Server, path: str, body: dict, field: str) -> None:
    code, text, _ = http("POST", server.base + path, body)
    assert code == 400, (code, text)
    detail = json.loads(text)["detail"]
    assert detail and detail[0]["loc"][0] == field and detail[0]["msg"]


def test_serving_processes_never_load_torch(server: Server) -> None:
    pids = server.pids()
    assert len(pids) >= 2, "expected the supervisor and at least one worker"
    maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in pids}
    assert not [pid for pid, m in maps.items() if "libtorch" in m], "a serving process loaded torch"
    # The check means something only if the processes running the models are among those inspected.
    assert sum("onnxruntime" in m for m in maps.values()) >= 1


def test_a_broken_bundle_keeps_the_service_unready_and_says_why(store: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format": "memoria-bundle/1", "task": "sentiment"}')
    srv = Server({**store, "MEMORIA_SENTIMENT_BUNDLE": str(broken)}, tmp_path / "serve.log")
    try:
        deadline = time.time() + 30
        while "NOT loaded" not in srv.log.read_text() and time.time() < deadline:
            time.sleep(0.5)
        log = srv.log.read_text()
        assert "sentiment model NOT loaded" in log and "manifest has no graphs.classifier" in log, log[-2000:]
        assert http("GET", srv.base + "/readyz")[0] == 503
        code, body, _ = http("POST", srv.base + "/sentiment", {"texts": ["hello"]})
        assert code == 503, body
    finally:
        srv.stop()


def test_concurrent_requests_are_batched_and_none_fail(server: Server) -> None:
    """Over 100 calls with many in flight: BentoML's dependency client recycles its pool every 100 calls, which
    used to drop in-flight requests (500s); every call must succeed and match its own text."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"flight {i} was {'great' if i % 2 else 'awful'}" for i in range(240)]

    def one(text: str) -> tuple[int, list]:
        code, body, _ = http("POST", server.base + "/sentiment", {"texts": [text]})
        return code, json.loads(body) if code == 200 else body

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(one, texts))
    assert [code for code, _ in answers] == [200] * len(texts), [a for a in answers if a[0] != 200][:3]
    code, batch, _ = http("POST", server.base + "/sentiment", {"texts": texts[:8]})
    assert code == 200
    for (_, single), together in zip(answers[:8], json.loads(batch), strict=True):
        assert single[0]["label"] == together["label"]  # batching with strangers does not change an answer
        for label, p in together["scores"].items():
            assert abs(single[0]["scores"][label] - p) < 1e-4


def test_a_huge_body_gets_413_before_it_is_sent(server: Server) -> None:
    """The client announces 50 MB and sends only the headers: the answer must come without the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            b"POST /sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n" + b"[" * 1000
        )
        answer = b""
        while chunk := s.recv(4096):  # the server closes the connection after a 413
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "larger than 1048576 bytes" in answer


def test_non_json_bodies_get_415_not_500(server: Server) -> None:
    for content_type in ("multipart/form-data", "text/plain", "application/x-www-form-urlencoded"):
        code, body, _ = http("POST", server.base + "/sentiment", {"texts": ["hi"]}, {"Content-Type": content_type})
        assert code == 415 and "application/json" in json.loads(body)["error"], (content_type, code, body)


def test_the_api_keeps_its_openapi_contract(server: Server) -> None:
    """schemathesis, all checks, a bounded number of cases: no 5xx, every answer as documented."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            server.base + "/docs.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "20261127",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    # Every operation the document lists was tested (counted from the document, so a new endpoint is included)
    paths = json.loads(http("GET", server.base + "/docs.json")[1])["paths"].values()
    operations = sum(method in METHODS for item in paths for method in item)
    assert operations >= 9 and f"Tested: {operations}" in out.stdout, (operations, out.stdout[-3000:])


def soak(server: Server, seconds: float) -> None:
    body = {"texts": ["the crew was lovely but the flight was late"]}
    load(server.base + "/sentiment", body, clients=64, seconds=2)  # warm-up: allocator pools, caches
    before = {pid: rss_kib(pid) for pid in server.pids()}
    result = load(server.base + "/sentiment", body, clients=64, seconds=seconds)
    after = {pid: rss_kib(pid) for pid in before}
    assert result.requests > 64 and result.failures == 0, result.statuses
    grown = {pid: (before[pid], after[pid]) for pid in before if after[pid] > before[pid] * 1.10}
    assert not grown, f"resident memory grew by more than 10% (KiB before, after): {grown}"


def test_a_short_soak_at_64_clients_has_no_errors_and_flat_memory(server: Server) -> None:
    soak(server, seconds=10)


@pytest.mark.slow
def test_a_minute_soak_at_64_clients_has_no_errors_and_flat_memory(server: Server) -> None:
    soak(server, seconds=60)


def test_metrics_show_requests_inputs_and_labels_per_task_and_model(server: Server) -> None:
    assert http("POST", server.base + "/sentiment", {"texts": ["I love it", "zzqx qqzx"]})[0] == 200
    assert http("POST", server.base + "/translate", {"texts": ["Buenos días."], "beam_size": 1})[0] == 200
    metrics = http("GET", server.base + "/metrics")[1]
    lines = [line for line in metrics.splitlines() if line.startswith("memoria_")]
    for task in ("sentiment", "translation"):
        ours = [line for line in lines if f'task="{task}"' in line]
        for name in ("memoria_requests_total", "memoria_request_seconds_bucket", "memoria_input_tokens_bucket"):
            assert any(line.startswith(name) and f'model="{task}/v1 sha256:' in line for line in ours), (name, lines)
        # word novelty replaced the unknown-token share (0 for every input with a byte-level tokenizer)
        assert any(line.startswith("memoria_input_novelty_bucket") for line in ours)
        assert not any(line.startswith("memoria_unknown_token_share") for line in lines)
        assert any(line.startswith("memoria_task_ready") and line.endswith(" 1.0") for line in ours), task
        assert any(line.startswith("memoria_batch_size_bucket") for line in ours)
        assert any(line.startswith("memoria_model_served") and line.endswith(" 1.0") for line in ours), task
    assert any(line.startswith("memoria_predictions_total") and 'label="' in line for line in lines)
