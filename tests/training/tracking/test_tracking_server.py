"""memoria against a shared tracking server: the README's recipe (scripts/tracking_server.py: MLflow's basic-auth
app over TLS, on a real PostgreSQL) with its three accounts (scripts/registry_accounts.py), reached over HTTPS.

What it proves: the server answers HTTPS only, with the certificate clients are told to trust, and nothing without
an account (401); the trainer logs runs and bundles but can neither register a version nor move `champion` (403);
the promoter registers, gates and promotes; the serving account resolves and downloads the champion, cannot move
the alias or write anything (403), and still serves. Runs, versions and the alias live in PostgreSQL; bundles are
stored behind the server (--serve-artifacts), not on the machine that trained. The default tier does this with one
logged run; the slow tier trains through the CLI and answers HTTP with `bentoml serve`. PostgreSQL's binaries are
installed by `make test` (`make postgres`): without them these tests fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import REPO
from tests.tracking_server import PostgresCluster, SecureTrackingServer, postgres_bindir, secure_tracking_server

RECIPE_SCRIPTS = ("scripts/tracking_server.py", "scripts/registry_accounts.py")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    bindir, why_not = postgres_bindir()
    if bindir is None:
        # `make test` installs PostgreSQL (make postgres): a machine without it is a broken setup, not a reason to
        # pass quietly without ever testing the shared server.
        pytest.fail(why_not)
    cluster = PostgresCluster(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture
def server(postgres: PostgresCluster, tmp_path: Path) -> Iterator[SecureTrackingServer]:
    folder = tmp_path / "server"
    folder.mkdir()
    with secure_tracking_server(postgres, f"mlflow_{uuid.uuid4().hex[:8]}", folder) as srv:  # fresh databases
        yield srv


def aliases_in_postgres(postgres: PostgresCluster, backend_uri: str) -> list[tuple[str, str, int]]:
    import psycopg2

    database = backend_uri.rsplit("/", 1)[-1]
    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="memoria", dbname=database)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT name, alias, version FROM registered_model_aliases ORDER BY name")
        return cursor.fetchall()


def bundle_files_behind(server: SecureTrackingServer) -> set[str]:
    return {p.name for p in server.artifacts.rglob("bundles/*/*")}


def status(server: SecureTrackingServer, path: str, user: str = "", password: str = "") -> int:
    """The HTTP status of a GET, over TLS trusting the server's certificate, with Basic credentials if given."""
    headers = {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()} if user else {}
    request = urllib.request.Request(server.uri + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30, context=server.tls()) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def act_as(monkeypatch: pytest.MonkeyPatch, server: SecureTrackingServer, role: str) -> MlflowClient:
    """Become a machine of `role`: MLflow's own client settings (read at every request), and a client."""
    for key, value in server.client_env(role).items():
        monkeypatch.setenv(key, value)
    return MlflowClient(tracking_uri=server.uri)


def assert_forbidden(call: Callable[[], object]) -> None:
    with pytest.raises(MlflowException) as refused:
        call()
    assert refused.value.get_http_status_code() == 403, refused.value


def test_roles_on_the_authenticated_tls_server_on_postgresql(
    server: SecureTrackingServer, postgres: PostgresCluster, tmp_path: Path, monkeypatch
) -> None:
    from serving.contract.names import CHAMPION
    from serving.resolve import resolve_bundle
    from tests.training.registry.test_registry import fake_training_run
    from training.config import Workspace
    from training.registry.alias_history import read_history
    from training.tasks import publish_run

    # The door: HTTPS only, with the certificate clients are given; no account (or a wrong password), no answer
    assert status(server, "/health") == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(server.uri + "/health", timeout=30)  # the system's trust store does not vouch for it
    with pytest.raises(OSError):  # plain HTTP on the same port: the TLS handshake fails, nothing is served
        urllib.request.urlopen(server.uri.replace("https://", "http://") + "/health", timeout=30)
    model = "/api/2.0/mlflow/registered-models/get?name=sentiment"
    assert status(server, model) == 401
    assert status(server, model, "serving", "not-the-password") == 401
    assert status(server, model, "serving", server.passwords["serving"]) == 200  # created by registry_accounts.py

    # Given a trainer: it logs a run with its model, but may neither register a version nor move the alias
    trainer = act_as(monkeypatch, server, "trainer")
    trainer_ws = Workspace(root=tmp_path / "trainer", tracking_uri=server.uri)
    run_id = fake_training_run(trainer_ws, tmp_path, 0.5, seed=1)
    source = trainer.get_run(run_id).info.artifact_uri + "/model"
    assert_forbidden(lambda: trainer.create_model_version("sentiment", source, run_id))
    assert_forbidden(lambda: trainer.set_registered_model_alias("sentiment", CHAMPION, "1"))
    assert_forbidden(lambda: trainer.create_run(trainer.get_experiment_by_name("memoria-alias-history").experiment_id))

    # When the promoter exports that run (`make export`): bundle, version, gate, alias
    act_as(monkeypatch, server, "promoter")
    published = publish_run(Workspace(root=tmp_path / "promoter", tracking_uri=server.uri), run_id)

    # Then the server's PostgreSQL holds the alias, and the bundle lies behind the server, not with the trainer
    assert (published.version, published.promoted) == ("1", True)
    assert aliases_in_postgres(postgres, server.backend_uri) == [("sentiment", "champion", 1)]
    assert trainer.get_experiment_by_name("sentiment").artifact_location.startswith("mlflow-artifacts:")
    assert {"manifest.json", "classifier.onnx", "tokenizer.json"} <= bundle_files_behind(server)
    assert not (tmp_path / "trainer" / "mlruns").exists(), "a server's client must not keep artifacts locally"
    assert [m.reason for m in read_history(trainer, "sentiment")] == ["promoted"]  # the trainer reads the history

    # And the serving account, elsewhere, resolves the champion and downloads its bundle through the server alone
    serving = act_as(monkeypatch, server, "serving")
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path / "server-side"))
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache"))
    served = resolve_bundle("sentiment")
    assert served.origin == "registry" and served.registry_version == "1"
    assert served.bundle.digest == published.bundle_digest
    assert served.bundle.path.is_relative_to(tmp_path / "cache")

    # But it cannot move the alias, register a version or write to a run (403), and it still serves the champion
    assert_forbidden(lambda: serving.set_registered_model_alias("sentiment", CHAMPION, "1"))
    assert_forbidden(lambda: serving.delete_registered_model_alias("sentiment", CHAMPION))
    assert_forbidden(lambda: serving.create_model_version("sentiment", source, run_id))
    assert_forbidden(lambda: serving.set_tag(run_id, "memoria.task", "translation"))
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache-again"))  # a fresh download, not the cache
    again = resolve_bundle("sentiment")
    assert (again.registry_version, again.bundle.digest) == ("1", published.bundle_digest)
    assert aliases_in_postgres(postgres, server.backend_uri) == [("sentiment", "champion", 1)]


def test_the_readme_recipe_is_the_tested_one() -> None:
    """The README's shared-server section runs the scripts this test module runs, with flags they accept."""
    readme = (REPO / "README.md").read_text()
    assert "### Shared tracking server" in readme, "README: the shared-server section is gone or renamed"
    section = readme.split("### Shared tracking server", 1)[1].split("\n#", 1)[0]
    for script in RECIPE_SCRIPTS:
        assert script in section, f"README's shared-server recipe no longer runs {script}"
        help_text = subprocess.run(
            [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
        ).stdout
        used = set(re.findall(r"(--[a-z][a-z-]+)", section.split(script, 1)[1].split("\n\n", 1)[0]))
        assert used <= set(re.findall(r"(--[a-z][a-z-]+)", help_text)), f"{script}: unknown flags in the README"


@pytest.mark.slow
def test_train_promote_and_serve_over_http_through_the_authenticated_server(
    server: SecureTrackingServer, postgres: PostgresCluster, tmp_path: Path
) -> None:
    from tests.serving_harness import SENTIMENT_ARGS, TRANSLATION_ARGS, answers_both_tasks_from_version_1, cli_run

    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")},
        "BENTOML_DO_NOT_TRACK": "true",
    }
    # Given both tasks trained through the CLI (`make train`) as the trainer: runs and bundles logged, and the
    # registration refused, because registering is the promoter's
    trainer = tmp_path / "trainer"
    trainer_env = {**base, **server.client_env("trainer"), "MEMORIA_HOME": str(trainer)}
    for task, args in (("sentiment", SENTIMENT_ARGS), ("translation", TRANSLATION_ARGS)):
        out = cli_run(trainer_env, "train", "--task", task, "--preset", "smoke", *args)
        # one clear line naming the refusal, not a traceback
        assert out.returncode == 2, out.stderr[-3000:]
        assert "error: the tracking server refused" in out.stderr, out.stderr[-3000:]
        assert "model-versions/create failed with error code 403" in out.stderr, out.stderr[-3000:]
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
    # When the promoter exports the best run of each (`make export TASK=all`)
    promoter_env = {**base, **server.client_env("promoter"), "MEMORIA_HOME": str(tmp_path / "promoter")}
    out = cli_run(promoter_env, "export", "--task", "all")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("promoted to champion") == 2, out.stdout
    assert aliases_in_postgres(postgres, server.backend_uri) == [
        ("sentiment", "champion", 1),
        ("translation", "champion", 1),
    ]
    assert not (trainer / "mlruns").exists(), "a server's client must not keep artifacts locally"

    # Then `bentoml serve` in another home, with only the server's address and the serving account, answers
    elsewhere = tmp_path / "serving-host"
    elsewhere.mkdir()
    serve_env = {
        **base,
        **server.client_env("serving"),
        "MEMORIA_HOME": str(elsewhere),
        "MEMORIA_BUNDLE_CACHE": str(elsewhere / "cache"),
    }
    answers_both_tasks_from_version_1(serve_env, tmp_path / "serve.log")
