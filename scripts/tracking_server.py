"""Start the team's shared MLflow tracking server: MLflow's own authentication (`--app-name basic-auth`) over TLS.

    MLFLOW_FLASK_SERVER_SECRET_KEY=... MLFLOW_AUTH_ADMIN_PASSWORD=... .venv/bin/python scripts/tracking_server.py \\
        --backend-store-uri postgresql+psycopg2://USER:PASSWORD@DBHOST:5432/mlflow \\
        --auth-db-uri postgresql+psycopg2://USER:PASSWORD@DBHOST:5432/mlflow_auth \\
        --artifacts /srv/mlflow-artifacts --cert /etc/mlflow/tls/cert.pem --key /etc/mlflow/tls/key.pem \\
        --config-dir /srv/mlflow-config --host 0.0.0.0 --port 5000 --allowed-hosts mlflow.example.org:5000

This file is the recipe: the README quotes it and tests/training/tracking/test_tracking_server.py runs it, so the
command a team copies is the one that was tested. It writes MLflow's auth config (users and permissions live in
their own database; an account without a grant sees nothing), then replaces itself with `mlflow server`.
Accounts and permissions: scripts/registry_accounts.py. There is no plain-HTTP mode: passwords travel in every
request's Authorization header, so without TLS anyone on the path could read them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # signs the UI's CSRF tokens (Flask-WTF): the same on every worker
ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"  # read once, when the auth database has no admin yet
MIN_SECRET_CHARS = 32  # e.g. `openssl rand -hex 32`
ADMIN = "admin"
# MLflow checks the password of every request against its scrypt hash, several times per request (each permission
# check authenticates again): about 1.8 s per request on a busy 2-core machine, which made one `make export` take
# minutes. A worker that has checked a password trusts it for this long; a changed or deleted account is refused at
# once by the worker that changed it, and by the other workers after at most this long (MLflow's own trade-off,
# documented in its basic_auth.ini).
AUTH_CACHE_S = 30


@dataclass(frozen=True)
class ServerConfig:
    backend_store_uri: str
    auth_db_uri: str
    artifacts: str  # a folder, or an object-store URI (s3://bucket/prefix)
    cert: Path
    key: Path
    config_dir: Path
    host: str
    port: int
    workers: int
    allowed_hosts: str
    auth_cache_s: int


def parse(argv: list[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="scripts/tracking_server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend-store-uri", required=True, help="runs and registry, e.g. postgresql+psycopg2://…")
    parser.add_argument("--auth-db-uri", required=True, help="users and permissions (a database of their own)")
    parser.add_argument(
        "--artifacts",
        required=True,
        help="where the server stores artifacts (bundles): a folder, or s3://BUCKET/PREFIX on any S3-compatible store "
        "(endpoint and keys from this process's MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    )
    parser.add_argument("--cert", required=True, type=Path, help="TLS certificate chain (PEM)")
    parser.add_argument("--key", required=True, type=Path, help="TLS private key (PEM)")
    parser.add_argument("--config-dir", required=True, type=Path, help="a private folder for the auth config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--allowed-hosts", default="", help="Host headers clients use (needed with a host name)")
    parser.add_argument(
        "--auth-cache-s",
        type=int,
        default=AUTH_CACHE_S,
        help=f"seconds a worker trusts a checked password (default {AUTH_CACHE_S}; 0: hash it at every request)",
    )
    args = parser.parse_args(argv)
    return ServerConfig(**vars(args))


def check(cfg: ServerConfig, env: dict[str, str]) -> None:
    """Refuse to start half-secured, naming what is missing."""
    for name, path in (("--cert", cfg.cert), ("--key", cfg.key)):
        if not path.is_file():
            raise SystemExit(f"{name} {path}: no such file (the server speaks HTTPS only)")
    if cfg.artifacts.startswith("s3://"):
        if importlib.util.find_spec("boto3") is None:
            raise SystemExit("--artifacts s3://...: boto3 is not installed (make install brings it)")
        if not env.get("AWS_ACCESS_KEY_ID") and not env.get("AWS_PROFILE"):
            raise SystemExit("--artifacts s3://...: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    elif "://" in cfg.artifacts:
        raise SystemExit(f"--artifacts {cfg.artifacts}: a folder or s3://BUCKET/PREFIX")
    if len(env.get(SECRET_KEY, "")) < MIN_SECRET_CHARS:
        raise SystemExit(f"{SECRET_KEY} must be set to at least {MIN_SECRET_CHARS} random characters")
    # MLFLOW_AUTH_ADMIN_PASSWORD is needed on the first start only; MLflow 3.17 refuses that start without it.


def write_auth_config(cfg: ServerConfig) -> Path:
    """MLflow's basic-auth settings, in a folder only this user can read (the database URI may hold a password)."""
    cfg.config_dir.mkdir(parents=True, exist_ok=True)
    cfg.config_dir.chmod(0o700)
    path = cfg.config_dir / "basic_auth.ini"
    text = (
        "[mlflow]\n"
        # Deny by default: an account reads or writes only what scripts/registry_accounts.py granted it.
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {cfg.auth_db_uri}\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {cfg.auth_cache_s}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT
    return path


def command(cfg: ServerConfig) -> list[str]:
    args = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        cfg.backend_store_uri,
        "--serve-artifacts",  # bundles stay behind the server: every client downloads what another logged
        "--artifacts-destination",
        cfg.artifacts,
        "--host",
        cfg.host,
        "--port",
        str(cfg.port),
        "--workers",
        str(cfg.workers),
        # uvicorn (MLflow's default server) terminates TLS itself
        "--uvicorn-opts",
        f"--ssl-certfile {shlex.quote(str(cfg.cert))} --ssl-keyfile {shlex.quote(str(cfg.key))}",
    ]
    if cfg.allowed_hosts:
        args += ["--allowed-hosts", cfg.allowed_hosts]
    return args


def main(argv: list[str] | None = None) -> None:
    cfg = parse(argv)
    env = dict(os.environ)
    check(cfg, env)
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(cfg))
    # The GenAI job runner (scorers, trace roll-ups) starts more processes and needs its own credentials under
    # basic-auth; memoria never uses it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    server = command(cfg)
    os.execve(server[0], server, env)


if __name__ == "__main__":
    main()
