"""The shared-server recipe with its artifacts on an S3-compatible object store: scripts/tracking_server.py with
`--artifacts s3://BUCKET/PREFIX` on a real PostgreSQL, the store being moto's server on 127.0.0.1
(tests/object_store.py). Clients never hold the store's keys: training uploads and serving downloads through the
tracking server (--serve-artifacts), which alone talks S3. The test trains and promotes both tasks through the CLI,
finds every bundle file in the bucket (and nothing on the server's disk), serves both champions over HTTP from
another home, checks the registered digests, and shows that a bundle file altered inside the bucket is refused,
not served."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serving.contract.bundle import BundleError
from serving.contract.names import DIGEST_TAG
from serving.contract.registry import champion_bundle
from tests.conftest import REPO
from tests.object_store import S3Store, s3_store
from tests.serving_harness import SENTIMENT_ARGS, TRANSLATION_ARGS, answers_both_tasks_from_version_1, cli
from tests.tracking_server import PostgresCluster, SecureTrackingServer, postgres_bindir, secure_tracking_server

PREFIX = "mlflow"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[S3Store, SecureTrackingServer]]:
    bindir, why_not = postgres_bindir()
    if bindir is None:
        pytest.fail(why_not)  # `make test-slow` installs PostgreSQL (make postgres)
    cluster = PostgresCluster(bindir)
    folder = tmp_path / "server"
    folder.mkdir()
    try:
        with (
            s3_store(tmp_path) as s3,
            secure_tracking_server(
                cluster,
                f"mlflow_{uuid.uuid4().hex[:8]}",
                folder,
                artifacts=f"s3://{s3.bucket}/{PREFIX}",
                server_env=s3.server_env(),
            ) as server,
        ):
            yield s3, server
    finally:
        cluster.stop()


def client_env(server: SecureTrackingServer, role: str, home: Path) -> dict[str, str]:
    """A machine of `role`: the tracking server's address and one account, and no object-store keys at all."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "AWS_", "MLFLOW_S3_"))}
    home.mkdir(parents=True, exist_ok=True)
    return {**base, **server.client_env(role), "MEMORIA_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}


@pytest.mark.slow
def test_bundles_on_an_s3_compatible_store_are_trained_promoted_served_and_verified(
    servers: tuple[S3Store, SecureTrackingServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, server = servers
    # Given both tasks trained, registered and promoted through the CLI by the promoter
    promoter = client_env(server, "promoter", tmp_path / "promoter")
    for task, args in (("sentiment", SENTIMENT_ARGS), ("translation", TRANSLATION_ARGS)):
        out = cli(promoter, "train", "--task", task, "--preset", "smoke", *args)
        assert "registered version 1" in out and "promoted to champion" in out, out

    # Then every bundle file lies in the bucket, none on the server's disk or the trainer's
    client = MlflowClient(tracking_uri=server.uri)
    for key, value in server.client_env("serving").items():
        monkeypatch.setenv(key, value)
    keys = s3.keys_under(PREFIX + "/")
    for task in ("sentiment", "translation"):
        version = client.get_model_version_by_alias(task, "champion")
        bundle_keys = [k for k in keys if f"/{version.run_id}/artifacts/bundles/" in k]
        names = {k.rsplit("/", 1)[1] for k in bundle_keys}
        assert {"manifest.json", "manifest.sig"} <= names, keys
        # the registered digest is the bundle's, verified file by file from what came out of the bucket
        served = champion_bundle(task, server.uri, tmp_path / "verify-cache")
        assert served.bundle.digest == version.tags[DIGEST_TAG]
        assert set(served.bundle.manifest["files"]) <= names
    assert not server.artifacts.exists(), "artifacts went to the server's disk, not the object store"
    assert not (tmp_path / "promoter" / "mlruns").exists()

    # And `bentoml serve`, logged in as `serving` on another home, answers from those bundles
    serving_home = tmp_path / "serving-host"
    serve_env = client_env(server, "serving", serving_home) | {"MEMORIA_BUNDLE_CACHE": str(serving_home / "cache")}
    answers_both_tasks_from_version_1(serve_env, tmp_path / "serve.log")

    # And a bundle file changed inside the bucket (by anyone holding the store's keys) is refused, not served
    version = client.get_model_version_by_alias("sentiment", "champion")
    prefix = next(k for k in keys if f"/{version.run_id}/artifacts/bundles/" in k).rsplit("/", 1)[0]
    victim = next(k for k in keys if k.startswith(prefix + "/") and not k.rsplit("/", 1)[1].startswith("manifest"))
    original = s3.client().get_object(Bucket=s3.bucket, Key=victim)["Body"].read()
    s3.client().put_object(Bucket=s3.bucket, Key=victim, Body=original + b" ")
    with pytest.raises(BundleError, match="sha256"):
        champion_bundle("sentiment", server.uri, tmp_path / "fresh-cache")


def recipe_script():
    """scripts/tracking_server.py as a module (scripts/ is not a package): its own argument parsing and checks."""
    spec = importlib.util.spec_from_file_location("tracking_server_recipe", REPO / "scripts" / "tracking_server.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclass looks its module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def recipe_args(tmp_path: Path, artifacts: str) -> list[str]:
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("-")
    return [
        *("--backend-store-uri", "postgresql+psycopg2://u@h/mlflow", "--auth-db-uri", "postgresql+psycopg2://u@h/auth"),
        *("--artifacts", artifacts, "--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem")),
        *("--config-dir", str(tmp_path / "config")),
    ]


def test_the_recipe_passes_an_s3_destination_through_and_refuses_one_it_cannot_use(tmp_path: Path) -> None:
    script = recipe_script()
    secret = {script.SECRET_KEY: "k" * 32}
    cfg = script.parse(recipe_args(tmp_path, "s3://memoria-artifacts/mlflow"))
    # the URI reaches `mlflow server` as written (a Path would have made it `s3:/memoria-artifacts/mlflow`)
    command = script.command(cfg)
    assert command[command.index("--artifacts-destination") + 1] == "s3://memoria-artifacts/mlflow"
    script.check(cfg, {**secret, "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"})
    with pytest.raises(SystemExit, match="AWS_ACCESS_KEY_ID"):
        script.check(cfg, secret)  # no keys: the first upload would fail, long after start
    with pytest.raises(SystemExit, match="a folder or s3://"):
        script.check(script.parse(recipe_args(tmp_path, "gs://bucket/x")), secret)
    script.check(script.parse(recipe_args(tmp_path, str(tmp_path / "artifacts"))), secret)  # a folder, as before


def test_the_readme_object_store_recipe_uses_flags_the_script_accepts() -> None:
    readme = (REPO / "README.md").read_text()
    assert "### Artifacts on an object store (S3)" in readme
    section = readme.split("### Artifacts on an object store (S3)", 1)[1].split("\n#", 1)[0]
    assert "scripts/tracking_server.py --artifacts s3://" in section
    help_text = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "tracking_server.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    ).stdout
    used = set(re.findall(r"(--[a-z][a-z-]+)", section.split("scripts/tracking_server.py", 1)[1].split("\n\n", 1)[0]))
    assert used and used <= set(re.findall(r"(--[a-z][a-z-]+)", help_text))
