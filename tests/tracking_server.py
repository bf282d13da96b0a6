"""A real PostgreSQL and a real `mlflow server` on it, for the tests that go through a shared tracking server.

PostgreSQL is Debian's `postgresql` package, whose binaries are not on PATH (`pg_config --bindir` finds them).
`initdb` and `postgres` refuse to run as root, so as root they run as `nobody` in a folder that user owns; the
cluster listens on 127.0.0.1 and on a Unix socket inside that folder, trusts local connections (a throwaway test
cluster), and is stopped with `pg_ctl stop`, which signals the postmaster named in its own pid file. `make test`
installs the package where it is missing (`make postgres`), and the tests that need it fail, not skip, without it.

Two servers: `TrackingServer`, a plain `mlflow server` (the registry tests that need a real server and nothing
else), and `SecureTrackingServer`, the README's recipe itself (scripts/tracking_server.py: MLflow's basic-auth app
over TLS, with a certificate made here) and its accounts (scripts/registry_accounts.py).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO
from tests.serving_harness import free_port, http

UNPRIVILEGED = "nobody"  # exists on every Debian system; owns nothing else the cluster could touch
SUPERUSER = "memoria"  # the cluster's database superuser (a role name, not an OS account)


SERVER_BINARIES = ("initdb", "pg_ctl", "createdb")
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"  # where Debian's postgresql-NN packages put them


def postgres_bindir() -> tuple[Path | None, str]:
    """The folder of PostgreSQL's server binaries, or None and why not (the tests fail with that reason).
    `pg_config --bindir` first; else the newest Debian version folder (pg_config may belong to libpq-dev alone)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = [p for p in Path("/").glob(DEBIAN_BINDIRS.lstrip("/")) if p.parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in SERVER_BINARIES):
            return bindir, ""
    looked = ", ".join(str(c) for c in candidates) or f"no pg_config, no {DEBIAN_BINDIRS}"
    return None, (
        f"no PostgreSQL server binaries {list(SERVER_BINARIES)} ({looked}): `make postgres` installs Debian's "
        "postgresql (as root), or `sudo apt-get install postgresql`"
    )


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


class _ServerProcess:
    """A server in its own process group (stopped as one, and only it), its output in `log`."""

    uri: str
    log: Path
    proc: subprocess.Popen[bytes]

    def _start(self, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115 - stays open for the server's lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _health(self) -> int:
        return http("GET", self.uri + "/health")[0]

    def wait_healthy(self, timeout: float = 90) -> float:
        """Poll /health until 200; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self._health() == 200:
                return time.monotonic() - start
            assert self.proc.poll() is None, f"mlflow server exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.25)
        raise AssertionError(f"mlflow server not healthy in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        group = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        # uvicorn stops at once; the `mlflow server` parent above it can spend many seconds of CPU exiting on a busy
        # machine (20 s seen). Throwaway data: after a short grace, SIGKILL.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.proc.poll()
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _server_env() -> dict[str, str]:
    """This process's environment without a client's MLflow settings (a server is nobody's client)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    # the job runner (GenAI scorers, trace roll-ups) starts seven more processes memoria never uses
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


class TrackingServer(_ServerProcess):
    """`mlflow server` on a database, storing artifacts itself (--serve-artifacts): clients read and write them
    over HTTP, as they would from another machine. No login: for tests about the registry, not about access."""

    def __init__(self, backend_uri: str, folder: Path) -> None:
        self.backend_uri = backend_uri
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = folder / "artifacts"
        self.log = folder / "mlflow-server.log"
        argv = [
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
        ]
        self._start(argv, _server_env(), folder)


@dataclass(frozen=True)
class Certificate:
    cert: Path  # what the server presents and what clients trust (MLFLOW_TRACKING_SERVER_CERT_PATH)
    key: Path


def make_certificate(folder: Path, host: str = "127.0.0.1") -> Certificate:
    """A self-signed certificate for `host` (and localhost), valid for a day: what a team's CA would issue."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memoria test tracking server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


SCRIPTS = REPO / "scripts"
ROLES = ("trainer", "promoter", "serving")  # scripts/registry_accounts.py's accounts


class SecureTrackingServer(_ServerProcess):
    """The README's shared-server recipe, run as written: scripts/tracking_server.py (MLflow's basic-auth app over
    TLS, users and permissions in their own PostgreSQL database), then scripts/registry_accounts.py as the admin.
    Every secret is random per server; `client_env(role)` is what a machine of that role sets."""

    def __init__(
        self,
        cluster: PostgresCluster,
        database: str,
        folder: Path,
        artifacts: str = "",
        server_env: dict[str, str] | None = None,
    ) -> None:
        """`artifacts`: where the server stores artifacts (default: a folder beside its log; `s3://...` for an
        object store, whose endpoint and keys come in `server_env`)."""
        self.backend_uri = cluster.database(database)
        self.auth_db_uri = cluster.database(f"{database}_auth")
        self.port = free_port()
        self.uri = f"https://127.0.0.1:{self.port}"
        self.artifacts = folder / "artifacts"  # the folder, when artifacts go to a folder
        self.artifacts_destination = artifacts or str(self.artifacts)
        self.log = folder / "mlflow-server.log"
        self.certificate = make_certificate(folder / "tls")
        self.passwords = {"admin": secrets.token_urlsafe(18)} | {role: secrets.token_urlsafe(18) for role in ROLES}
        env = _server_env() | {
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.passwords["admin"],
            **(server_env or {}),
        }
        argv = [
            sys.executable,
            str(SCRIPTS / "tracking_server.py"),
            "--backend-store-uri",
            self.backend_uri,
            "--auth-db-uri",
            self.auth_db_uri,
            "--artifacts",
            self.artifacts_destination,
            "--cert",
            str(self.certificate.cert),
            "--key",
            str(self.certificate.key),
            "--config-dir",
            str(folder / "config"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",  # answers /health in about half the time of more (see STACK-NOTES)
        ]
        self._start(argv, env, folder)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate.cert))

    def _health(self) -> int:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=10, context=self.tls()) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def client_env(self, role: str) -> dict[str, str]:
        """MLflow's own client settings for one account: address, credentials, the certificate to trust."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": role,
            "MLFLOW_TRACKING_PASSWORD": self.passwords[role],
            "MLFLOW_TRACKING_SERVER_CERT_PATH": str(self.certificate.cert),
        }

    def create_accounts(self) -> str:
        """scripts/registry_accounts.py as the admin, as the README runs it; returns what it printed."""
        env = _server_env() | self.client_env("admin")
        env |= {f"MEMORIA_{role.upper()}_PASSWORD": self.passwords[role] for role in ROLES}
        out = subprocess.run(
            [sys.executable, str(SCRIPTS / "registry_accounts.py"), "--uri", self.uri],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"registry_accounts.py failed:\n{out.stdout}\n{out.stderr[-3000:]}"
        return out.stdout


@contextlib.contextmanager
def tracking_server(cluster: PostgresCluster, database: str, folder: Path) -> Iterator[TrackingServer]:
    """A fresh database in `cluster` and an MLflow server on it, healthy, stopped on exit."""
    server = TrackingServer(cluster.database(database), folder)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def secure_tracking_server(
    cluster: PostgresCluster,
    database: str,
    folder: Path,
    artifacts: str = "",
    server_env: dict[str, str] | None = None,
) -> Iterator[SecureTrackingServer]:
    """The authenticated TLS server of the README's recipe on fresh databases in `cluster`, healthy, with its three
    accounts created; stopped on exit. `artifacts`, `server_env`: see SecureTrackingServer."""
    server = SecureTrackingServer(cluster, database, folder, artifacts, server_env)
    try:
        server.wait_healthy()
        server.create_accounts()
        yield server
    finally:
        server.stop()
