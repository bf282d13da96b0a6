"""A real PostgreSQL and a real `mlflow server` on it, for the tests that go through a shared tracking server.

PostgreSQL is Debian's `postgresql` package, whose binaries are not on PATH (`pg_config --bindir` finds them).
`initdb` and `postgres` refuse to run as root, so as root they run as `nobody` in a folder that user owns; the
cluster listens on 127.0.0.1 and on a Unix socket inside that folder, trusts local connections (a throwaway test
cluster), and is stopped with `pg_ctl stop`, which signals the postmaster named in its own pid file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.serving_harness import free_port, http

UNPRIVILEGED = "nobody"  # exists on every Debian system; owns nothing else the cluster could touch
SUPERUSER = "memoria"  # the cluster's database superuser (a role name, not an OS account)


def postgres_bindir() -> tuple[Path | None, str]:
    """The folder of PostgreSQL's server binaries, or None and why not (the tests skip with that reason)."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None, "pg_config not found: install Debian's postgresql package (apt-get install postgresql)"
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
    bindir = Path(out.stdout.strip())
    missing = [name for name in ("initdb", "pg_ctl", "createdb") if not (bindir / name).is_file()]
    if out.returncode != 0 or missing:
        where = out.stdout.strip() or out.stderr.strip()
        return None, f"no PostgreSQL server binaries {missing} in `pg_config --bindir` ({where}): install postgresql"
    return bindir, ""


class PostgresCluster:
    """A throwaway cluster in its own temporary folder; `database()` adds databases, `stop()` removes it all."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        # Not under pytest's tmp_path: that sits in a folder only root may enter.
        self.folder = Path(tempfile.mkdtemp(prefix="memoria-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.socket_dir.mkdir()
        self.log = self.folder / "postgres.log"
        self._as = self._unprivileged()
        if self._as:
            account = pwd.getpwnam(UNPRIVILEGED)
            for path in (self.folder, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-locale", "-E", "UTF8")
        settings = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            # a test cluster: durability buys nothing, and fsyncs are slow on a busy disk
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", settings, "-w", "-t", "60", "start")
        except AssertionError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @staticmethod
    def _unprivileged() -> dict[str, object]:
        """subprocess arguments that drop root to UNPRIVILEGED (nothing when not root: run as who we are)."""
        if os.geteuid() != 0:
            return {}
        account = pwd.getpwnam(UNPRIVILEGED)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, tool: str, *args: str) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.folder)}
        out = subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            **self._as,
        )
        log = self.log.read_text()[-2000:] if self.log.is_file() else ""
        assert out.returncode == 0, f"{tool} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}\n{log}"
        return out.stdout

    def database(self, name: str) -> str:
        """Create database `name`; returns its SQLAlchemy URI for MLflow."""
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, name)
        # `postgresql+psycopg2`: SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which is not installed.
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").is_file():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class TrackingServer:
    """`mlflow server` on a database, storing artifacts itself (--serve-artifacts): clients read and write them
    over HTTP, as they would from another machine."""

    def __init__(self, backend_uri: str, folder: Path) -> None:
        self.backend_uri = backend_uri
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = folder / "artifacts"
        self.log = folder / "mlflow-server.log"
        env = {
            **os.environ,
            # the job runner (GenAI scorers, trace roll-ups) starts seven more processes memoria never uses
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                backend_uri,
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",  # answers /health in about half the time of the default 4 (see STACK-NOTES)
            ],
            cwd=folder,
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115 - stays open for the server's lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, and only it
        )

    def wait_healthy(self, timeout: float = 90) -> float:
        """Poll /health until 200; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if http("GET", self.uri + "/health")[0] == 200:
                return time.monotonic() - start
            assert self.proc.poll() is None, f"mlflow server exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(f"mlflow server not healthy in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        group = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # uvicorn's worker may outlive the parent by a moment
            self.proc.poll()
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def tracking_server(cluster: PostgresCluster, database: str, folder: Path) -> Iterator[TrackingServer]:
    """A fresh database in `cluster` and an MLflow server on it, healthy, stopped on exit."""
    server = TrackingServer(cluster.database(database), folder)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()
