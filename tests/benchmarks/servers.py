"""The servers under test, each a real process on 127.0.0.1, started in its own process group.

Why process groups: `bentoml serve` forks a worker per core and uvicorn may fork too; stopping the group is the
only way to be sure nothing keeps a port or a core busy for the next server (or after Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.ports import foreign_listeners, free_port, shared_port_message

REPO = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 20.0
# Settings a user may have exported for their own `make serve`; a "default settings" server must not inherit them.
MEMORIA_TUNING = ("MEMORIA_WORKERS", "MEMORIA_ORT_THREADS", "MEMORIA_MAX_BATCH_SIZE")


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: argv (with `{port}`) and the environment it adds to the benchmark's."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    cwd: Path | None = None  # where it starts (default: this checkout; bench_edge starts an older one too)

    def command(self, port: int) -> list[str]:
        return [part.format(port=port) for part in self.argv]


def bentoml_serve(target: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", "{port}")


def uvicorn_factory(target: str) -> tuple[str, ...]:
    """uvicorn with its defaults (one process, access log on): what a user writing a FastAPI app would run."""
    return (sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", "{port}")


def http_json(method: str, url: str, body: object | None = None, timeout: float = 60) -> tuple[int, object, dict]:
    """One request with the standard library (for readiness and pre-flight checks, not for load)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            raw, status, headers = r.read(), r.status, dict(r.headers.items())
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, dict(e.headers.items())
    except OSError:
        return 0, None, {}
    try:
        return status, json.loads(raw), {k.lower(): v for k, v in headers.items()}
    except ValueError:
        return status, raw.decode(errors="replace"), {k.lower(): v for k, v in headers.items()}


class ServerError(RuntimeError):
    """The server did not start or did not answer as expected; the message carries its log's tail."""


class ServerProcess:
    """A running server; a context manager that always stops its whole process group."""

    def __init__(self, spec: ServerSpec, base_env: dict[str, str], log_dir: Path) -> None:
        self.spec = spec
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{spec.name}.log"
        self.env = {**base_env, **spec.env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = math.nan  # seconds from start to /readyz 200

    def __enter__(self) -> ServerProcess:
        started = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.spec.command(self.port),
                cwd=self.spec.cwd or REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: see the module docstring
            )
        try:
            self.wait_ready(started)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait_ready(self, started: float, timeout: float = 180) -> None:
        """Poll /readyz until 200 (memoria answers 503 while its models load)."""
        assert self.proc is not None
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.spec.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if http_json("GET", self.base + "/readyz", timeout=5)[0] == 200:
                if foreign := foreign_listeners(self.port, self.proc.pid):
                    raise ServerError(f"{self.spec.name}: {shared_port_message(self.port, foreign)}")
                self.ready_s = time.perf_counter() - started
                return
            time.sleep(0.25)
        raise ServerError(f"{self.spec.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the group, then SIGKILL if it is still there after the grace period."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)


def base_environment() -> dict[str, str]:
    """This process's environment without memoria's tuning knobs, plus the Makefile's quiet defaults."""
    env = {k: v for k, v in os.environ.items() if k not in MEMORIA_TUNING}
    env.setdefault("BENTOML_HOME", str(REPO / ".bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    return env
