"""What the HTTP tests share: a real `bentoml serve` process, plain HTTP calls, closed-loop load, and a
registry with tiny champions trained on the local fixtures through the CLI (the `store` fixture in conftest)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import FIXTURES, REPO
from tests.ports import foreign_listeners, free_port, shared_port_message

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


def http(
    method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}
    except OSError:
        return 0, "", {}


def cli_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m training ARGS --no-progress` in the repo, whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "training", *args, "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def cli(env: dict[str, str], *args: str) -> str:
    out = cli_run(env, *args)
    assert out.returncode == 0, f"python -m training {' '.join(args)} failed:\n{out.stdout}\n{out.stderr[-3000:]}"
    return out.stdout


def train_store(root: Path, tracking_uri: str = "") -> dict[str, str]:
    """A registry with a tiny champion per task, in `tracking_uri` (default: SQLite under `root`); returns the
    environment that serves it."""
    env = {
        **os.environ,
        "MEMORIA_HOME": str(root),
        "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{root}/mlruns/mlflow.db",
        "MEMORIA_BUNDLE_CACHE": str(root / "bundle-cache"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    out = cli(env, "train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS)
    assert "registered version 1" in out and "promoted to champion" in out
    out = cli(env, "train", "--task", "translation", "--preset", "smoke", *TRANSLATION_ARGS)
    assert "registered version 1" in out and "promoted to champion" in out
    return env


# Registries (by tracking URI) that already hold a second sentiment model, and its version
_SECOND_SENTIMENT: dict[str, str] = {}


def second_sentiment_version(env: dict[str, str]) -> str:
    """A second sentiment model, trained like the first but with another seed (so its answers differ), registered in
    `env`'s registry once per registry; the champion alias stays where it was. For the tests that swap between two
    different models."""
    from mlflow import MlflowClient

    from training.registry.promotion import promote

    uri = env["MLFLOW_TRACKING_URI"]
    if uri not in _SECOND_SENTIMENT:
        client = MlflowClient(tracking_uri=uri)
        champion = client.get_model_version_by_alias("sentiment", "champion").version
        out = cli(env, "train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS, "--set", "optim.seed=7")
        found = re.search(r"registered version (\d+)", out)
        assert found, out
        if client.get_model_version_by_alias("sentiment", "champion").version != champion:
            promote(client, "sentiment", champion)
        _SECOND_SENTIMENT[uri] = found.group(1)
    return _SECOND_SENTIMENT[uri]


def sentiment_scores(uri: str, version: str, cache: Path, text: str) -> dict[str, float]:
    """What registry version `version`'s own bundle, run in this process, answers for `text`: the reference a
    served answer is checked against."""
    from mlflow import MlflowClient

    from serving.contract.names import DIGEST_TAG
    from serving.contract.registry import ChampionRef, champion_bundle
    from serving.sentiment import SentimentPredictor

    mv = MlflowClient(tracking_uri=uri).get_model_version("sentiment", version)
    served = champion_bundle("sentiment", uri, cache, ChampionRef(str(mv.version), mv.source, mv.tags[DIGEST_TAG]))
    return SentimentPredictor(served.bundle).predict([text])[0]["scores"]


def answered_by_its_model(expected: dict[str, dict[str, float]]) -> Callable[[str, str], bool]:
    """A `load` check: a one-text sentiment answer must carry the scores of the version its X-Memoria-Model header
    names (`expected`: version -> scores), to 1e-5."""

    def check(model: str, body: str) -> bool:
        version = model.split()[0].removeprefix("sentiment/v")
        scores = json.loads(body)[0]["scores"]
        return version in expected and all(abs(scores[k] - v) < 1e-5 for k, v in expected[version].items())

    return check


def copy_store(env: dict[str, str], root: Path) -> dict[str, str]:
    """The SQLite store of `env` copied under `root` (its own bundle cache too): a registry a test may change
    freely. The copy is not opened by training, so its database still names the original folder; serving maps
    those locations in memory (serving/contract/store_location.py) and must leave the copy untouched."""
    source = Path(env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")).parent
    shutil.copytree(source, root / "mlruns")
    return {
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "MEMORIA_BUNDLE_CACHE": str(root / "bundle-cache"),
    }


class Server:
    def __init__(self, env: dict[str, str], log: Path, target: str = "serving.service:Memoria") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        # as serving/service.py counts them: /readyz is answered by one of these, which may be ahead of the others
        self.workers = int(env.get("MEMORIA_WORKERS", "0")) or os.cpu_count() or 1
        # Its own BENTOML_HOME: a server starting clears $BENTOML_HOME/prometheus_multiproc_dir, so two servers
        # sharing one would wipe each other's metrics.
        env = {**env, "BENTOML_HOME": str(log.parent / f"bentoml-home-{self.port}")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                target,
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
                self.assert_port_is_ours()
                return seen
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(
            f"not ready in {timeout}s; statuses {sorted(set(seen))}; log:\n{self.log.read_text()[-3000:]}"
        )

    def assert_port_is_ours(self) -> None:
        """Every listener on the port belongs to this server's processes (tests/ports.py says why it may not)."""
        foreign = foreign_listeners(self.port, self.proc.pid)
        assert not foreign, shared_port_message(self.port, foreign)

    def wait_every_worker_ready(self, models: int = 2, timeout: float = 60) -> None:
        """/readyz is 200 and every worker has loaded `models` models: what a test that probes /readyz again, or
        counts on any worker answering at once, needs (on a busy machine the second worker can lag by seconds)."""
        self.wait_ready()
        self.wait_log(" model ready: ", models * self.workers, timeout)

    def wait_log(self, text: str, count: int, timeout: float = 60) -> float:
        """Wait until the log holds `text` at least `count` times (e.g. every worker's "sentiment model ready":
        /readyz is answered by one worker, which may be ahead of the others); returns time.time() then."""
        deadline = time.time() + timeout
        while self.log.read_text(errors="replace").count(text) < count:
            assert time.time() < deadline, f"{text!r} not {count} times in {timeout}s:\n{self.log.read_text()[-3000:]}"
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-3000:]}"
            time.sleep(0.05)
        return time.time()

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


@dataclass
class LoadResult:
    statuses: collections.Counter = field(default_factory=collections.Counter)
    models: collections.Counter = field(default_factory=collections.Counter)
    first_seen: dict[str, float] = field(default_factory=dict)  # model header -> time.time() of its first answer
    last_body: dict[str, str] = field(default_factory=dict)  # model header -> the body of its last 200 answer
    wrong: int = 0  # 200 answers that `check` rejected
    requests: int = 0

    @property
    def failures(self) -> int:
        return self.requests - self.statuses[200]


def load(
    url: str,
    body: object,
    clients: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    check: Callable[[str, str], bool] | None = None,
) -> LoadResult:
    """`clients` keep-alive clients, each sending its next request when the last returns, for `seconds`.
    `check(model_header, body)` judges each 200 answer (False counts it in `wrong`)."""
    import aiohttp

    result = LoadResult()

    async def client(session: aiohttp.ClientSession, deadline: float) -> None:
        while time.monotonic() < deadline:
            result.requests += 1
            try:
                async with session.post(url, json=body, headers=headers) as r:
                    text = (await r.read()).decode()
                    result.statuses[r.status] += 1
                    model = r.headers.get("X-Memoria-Model", "")
                    result.models[model] += 1
                    result.first_seen.setdefault(model, time.time())
                    if r.status == 200:
                        result.last_body[model] = text
                        if check is not None and not check(model, text):
                            result.wrong += 1
            except aiohttp.ClientError as e:
                result.statuses[type(e).__name__] += 1

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.monotonic() + seconds
            await asyncio.gather(*(client(session, deadline) for _ in range(clients)))

    asyncio.run(main())
    return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def answers_both_tasks_from_version_1(env: dict[str, str], log: Path) -> None:
    """`bentoml serve` with `env` answers /sentiment and /translate, each from version 1 of its registered model
    (the shared-tracking-server tests: the serving account on another home)."""
    service = Server(env, log)
    try:
        service.wait_ready()
        code, body, headers = http("POST", service.base + "/sentiment", {"texts": ["Great flight, thanks!"]})
        assert code == 200, body
        assert json.loads(body)[0]["label"] in ("negative", "neutral", "positive")
        assert headers["x-memoria-model"].startswith("sentiment/v1 sha256:")
        code, body, headers = http("POST", service.base + "/translate", {"texts": ["Buenos días."]})
        assert code == 200, body
        assert headers["x-memoria-model"].startswith("translation/v1 sha256:")
    finally:
        service.stop()
