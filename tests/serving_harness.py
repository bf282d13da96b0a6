"""What the HTTP tests share: a real `bentoml serve` process, plain HTTP calls, closed-loop load, and a
registry with tiny champions trained on the local fixtures through the CLI (the `store` fixture in conftest)."""

from __future__ import annotations

import asyncio
import collections
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
from dataclasses import dataclass, field
from pathlib import Path

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


class Server:
    def __init__(self, env: dict[str, str], log: Path, target: str = "serving.service:Memoria") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
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


@dataclass
class LoadResult:
    statuses: collections.Counter = field(default_factory=collections.Counter)
    models: collections.Counter = field(default_factory=collections.Counter)
    first_seen: dict[str, float] = field(default_factory=dict)  # model header -> time.time() of its first answer
    requests: int = 0

    @property
    def failures(self) -> int:
        return self.requests - self.statuses[200]


def load(url: str, body: object, clients: int, seconds: float, headers: dict[str, str] | None = None) -> LoadResult:
    """`clients` keep-alive clients, each sending its next request when the last returns, for `seconds`."""
    import aiohttp

    result = LoadResult()

    async def client(session: aiohttp.ClientSession, deadline: float) -> None:
        while time.monotonic() < deadline:
            result.requests += 1
            try:
                async with session.post(url, json=body, headers=headers) as r:
                    await r.read()
                    result.statuses[r.status] += 1
                    model = r.headers.get("X-Memoria-Model", "")
                    result.models[model] += 1
                    result.first_seen.setdefault(model, time.time())
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
