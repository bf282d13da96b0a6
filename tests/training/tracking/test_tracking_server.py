"""memoria against a shared tracking server: a real `mlflow server` on a real PostgreSQL, reached over HTTP.

What it proves: runs, registered versions and the `champion` alias live in PostgreSQL; bundles are stored behind
the server (--serve-artifacts), not on the machine that trained; serving resolves and downloads the champion
through the server alone. The default tier does one log-register-promote round trip; the slow tier trains through
the CLI and answers HTTP with `bentoml serve`. Skips (with the reason) where PostgreSQL's binaries are missing.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.tracking_server import PostgresCluster, TrackingServer, postgres_bindir, tracking_server


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    bindir, why_not = postgres_bindir()
    if bindir is None:
        pytest.skip(why_not)
    cluster = PostgresCluster(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture
def server(postgres: PostgresCluster, tmp_path: Path) -> Iterator[TrackingServer]:
    folder = tmp_path / "server"
    folder.mkdir()
    with tracking_server(postgres, f"mlflow_{uuid.uuid4().hex[:8]}", folder) as srv:  # a fresh database per test
        yield srv


def aliases_in_postgres(postgres: PostgresCluster, backend_uri: str) -> list[tuple[str, str, int]]:
    import psycopg2

    database = backend_uri.rsplit("/", 1)[-1]
    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="memoria", dbname=database)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT name, alias, version FROM registered_model_aliases ORDER BY name")
        return cursor.fetchall()


def bundle_files_behind(server: TrackingServer) -> set[str]:
    return {p.name for p in server.artifacts.rglob("bundles/*/*")}


def test_log_register_promote_and_serve_through_a_server_on_postgresql(
    server: TrackingServer, postgres: PostgresCluster, tmp_path: Path, monkeypatch
) -> None:
    from serving.resolve import resolve_bundle
    from tests.training.registry.test_registry import fake_training_run
    from training.config import Workspace
    from training.registry.alias_history import read_history
    from training.tasks import publish_run

    # Given a trainer whose workspace points at the server
    trainer = Workspace(root=tmp_path / "trainer", tracking_uri=server.uri)
    # When a run is logged, exported, registered and promoted through it
    published = publish_run(trainer, fake_training_run(trainer, tmp_path, 0.5, seed=1))

    # Then the server's PostgreSQL holds the alias, and the bundle lies behind the server, not with the trainer
    assert (published.version, published.promoted) == ("1", True)
    assert aliases_in_postgres(postgres, server.backend_uri) == [("sentiment", "champion", 1)]
    client = MlflowClient(tracking_uri=server.uri)
    assert client.get_experiment_by_name("sentiment").artifact_location.startswith("mlflow-artifacts:")
    assert {"manifest.json", "classifier.onnx", "tokenizer.json"} <= bundle_files_behind(server)
    assert not (trainer.root / "mlruns").exists(), "a server's client must not keep artifacts locally"
    assert [m.reason for m in read_history(client, "sentiment")] == ["promoted"]

    # And serving, elsewhere, resolves the champion and downloads its bundle through the server alone
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path / "server-side"))
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache"))
    served = resolve_bundle("sentiment")
    assert served.origin == "registry" and served.registry_version == "1"
    assert served.bundle.digest == published.bundle_digest
    assert served.bundle.path.is_relative_to(tmp_path / "cache")


@pytest.mark.slow
def test_train_promote_and_serve_over_http_through_a_server_on_postgresql(
    server: TrackingServer, postgres: PostgresCluster, tmp_path: Path
) -> None:
    from tests.serving_harness import Server, http, train_store

    # Given both tasks trained, registered and promoted through the CLI (`make train`) against the server
    trainer = tmp_path / "trainer"
    env = train_store(trainer, tracking_uri=server.uri)
    assert aliases_in_postgres(postgres, server.backend_uri) == [
        ("sentiment", "champion", 1),
        ("translation", "champion", 1),
    ]
    assert not (trainer / "mlruns").exists(), "a server's client must not keep artifacts locally"

    # When `bentoml serve` starts in another home, with only the server's address
    elsewhere = tmp_path / "serving-host"
    elsewhere.mkdir()
    serve_env = {**env, "MEMORIA_HOME": str(elsewhere), "MEMORIA_BUNDLE_CACHE": str(elsewhere / "cache")}
    service = Server(serve_env, tmp_path / "serve.log")
    try:
        service.wait_ready()
        # Then it answers with the server's champions
        code, body, headers = http("POST", service.base + "/sentiment", {"texts": ["Great flight, thanks!"]})
        assert code == 200, body
        assert json.loads(body)[0]["label"] in ("negative", "neutral", "positive")
        assert headers["x-memoria-model"].startswith("sentiment/v1 sha256:")
        code, body, headers = http("POST", service.base + "/translate", {"texts": ["Buenos días."]})
        assert code == 200, body
        assert headers["x-memoria-model"].startswith("translation/v1 sha256:")
    finally:
        service.stop()
