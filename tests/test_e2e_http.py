"""End to end, the way a user meets memoria: train through the CLI, promote, `bentoml serve`, real HTTP.

Trains tiny models on the local fixtures (the CLI with `--set` overrides, exactly as `make train ARGS=...`),
serves the registry's champions, and checks answers, validation errors, readiness and that no serving process
loaded torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO

TINY = ["--set", "optim.max_epochs=1"]
SENTIMENT_ARGS = [
    "--set",
    "data.source=csv",
    "--set",
    f"data.path={FIXTURES / 'sentiment' / 'reviews.csv'}",
    "--set",
    "data.max_examples=0",
    *TINY,
]
TRANSLATION_ARGS = [
    "--set",
    "data.source=tatoeba",
    "--set",
    f"data.path={FIXTURES / 'translation' / 'pairs-es-en.tsv'}",
    "--set",
    "data.max_examples=0",
    "--set",
    "data.validation_size=2",
    "--set",
    "data.test_size=2",
    *TINY,
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: object | None = None) -> tuple[int, str, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}
    except OSError:
        return 0, "", {}


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "training", *args, "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, f"python -m training {' '.join(args)} failed:\n{out.stdout}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("store")
    env = {
        **os.environ,
        "MEMORIA_HOME": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "MEMORIA_BUNDLE_CACHE": str(root / "bundle-cache"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    out = cli(env, "train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS)
    assert "registered version 1" in out and "promoted to champion" in out
    out = cli(env, "train", "--task", "translation", "--preset", "smoke", *TRANSLATION_ARGS)
    assert "registered version 1" in out and "promoted to champion" in out
    return env


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "serving.service:Memoria",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=REPO,
            env=env,
            stdout=open(log, "wb"),  # noqa: SIM115 - stays open for the server's lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> list[int]:
        """Poll /readyz until 200; returns every status seen (0 = not listening yet)."""
        seen: list[int] = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            code, _, _ = http("GET", self.base + "/readyz")
            seen.append(code)
            if code == 200:
                return seen
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(
            f"not ready in {timeout}s; statuses {sorted(set(seen))}; log:\n{self.log.read_text()[-3000:]}"
        )

    def pids(self) -> list[int]:
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            with contextlib.suppress(OSError):  # the process may have exited meanwhile
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return out

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


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
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(server: Server, path: str, body: dict, field: str) -> None:
    code, text, _ = http("POST", server.base + path, body)
    assert code == 400, (code, text)
    detail = json.loads(text)["detail"]
    assert detail and detail[0]["loc"][0] == field and detail[0]["msg"]


def test_serving_processes_never_load_torch(server: Server) -> None:
    pids = server.pids()
    assert len(pids) >= 3, "expected an API process and one process per model service"
    maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in pids}
    assert not [pid for pid, m in maps.items() if "libtorch" in m], "a serving process loaded torch"
    # The check means something only if the model processes are among those inspected.
    assert sum("onnxruntime" in m for m in maps.values()) >= 2


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
