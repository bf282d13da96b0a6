"""Failures that heal, through the real service (`bentoml serve`, real MLflow, real HTTP), and the pieces under them.

Each service test puts one fault in the way of a running or starting service, under load where it matters, and
checks what the service did: every 200 answer carries the scores of the model its header names (two different
sentiment models are in play, so a mix-up would show), accepted requests are answered, and the time to recover is
bounded. A fault that cannot be made for real on a test machine (a full disk, a download cut short) is injected
into the artifact download of the service's own processes (a `sitecustomize` on their PYTHONPATH). Each test
prints one `FAULT` line with what it measured (`pytest -s` shows them; the README's fault table comes from them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from serving.contract.bundle import BundleError
from serving.contract.names import DIGEST_TAG
from serving.contract.registry import (
    ChampionRef,
    NoChampion,
    RegistryUnavailable,
    champion_bundle,
    champion_ref,
    private_folder,
)
from serving.contract.store_location import MARKER
from tests.serving_harness import (
    Server,
    answered_by_its_model,
    copy_store,
    free_port,
    http,
    load,
    second_sentiment_version,
    sentiment_scores,
)
from training.registry.promotion import promote
from training.registry.publish import register

TEXT = "the crew was lovely but the flight was late"
SENTIMENT = {"texts": [TEXT]}
ADMIN = {"Authorization": "Bearer admin-token"}
QUICK = {"MEMORIA_RELOAD_INTERVAL_S": "1", "MEMORIA_RETRY_MAX_S": "2", "MEMORIA_ADMIN_TOKEN": "admin-token"}


@dataclass(frozen=True)
class TwoModels:
    first: str  # the store's sentiment champion
    second: str  # another sentiment model (other seed), registered but not champion
    expected: dict[str, dict[str, float]]  # version -> the scores its own bundle gives TEXT


@pytest.fixture(scope="module")
def models(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> TwoModels:
    second = second_sentiment_version(store)
    uri = store["MLFLOW_TRACKING_URI"]
    first = str(MlflowClient(tracking_uri=uri).get_model_version_by_alias("sentiment", "champion").version)
    cache = tmp_path_factory.mktemp("reference-cache")
    expected = {v: sentiment_scores(uri, v, cache, TEXT) for v in (first, second)}
    assert expected[first] != expected[second]
    return TwoModels(first, second, expected)


def label_of(result_models: dict[str, int], version: str) -> str | None:
    return next((m for m in result_models if m.startswith(f"sentiment/v{version} ")), None)


def report(fault: str, **measured: object) -> None:
    print(f"\nFAULT {fault}: " + json.dumps(measured))


# -- the registry goes away --------------------------------------------------------------------------------------


class Registry:
    """`mlflow server` over a SQLite store on a fixed port, stopped and started again by the test."""

    def __init__(self, database_uri: str, port: int, folder: Path) -> None:
        self.database_uri, self.port, self.folder = database_uri, port, folder
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it and wait for /health; returns time.time() when it answered."""
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                *("server", "--backend-store-uri", self.database_uri, "--host", "127.0.0.1"),
                *("--port", str(self.port), "--workers", "1"),
            ],
            cwd=self.folder,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=open(self.folder / "mlflow-server.log", "ab"),  # noqa: SIM115 - open while it runs
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 90
        while http("GET", self.uri + "/health")[0] != 200:
            assert time.time() < deadline and self.proc.poll() is None, (self.folder / "mlflow-server.log").read_text()
            time.sleep(0.1)
        return time.time()

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # as a crash or a network cut: no goodbye
        self.proc.wait(timeout=20)
        self.proc = None


def test_an_unreachable_registry_at_start_and_while_polling_heals_without_a_wrong_or_lost_answer(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    env = copy_store(store, tmp_path)
    registry = Registry(env["MLFLOW_TRACKING_URI"], free_port(), tmp_path)
    srv = Server({**env, **QUICK, "MLFLOW_TRACKING_URI": registry.uri}, tmp_path / "serve.log")
    try:
        # 1. the registry is down when the service starts: not ready, and it says why (not "train one first")
        deadline = time.time() + 60
        while http("GET", srv.base + "/livez")[0] != 200:
            assert time.time() < deadline and srv.proc.poll() is None, srv.log.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(2)  # a first check and a retry have failed
        assert http("GET", srv.base + "/readyz")[0] == 503
        code, body, _ = http("POST", srv.base + "/sentiment", SENTIMENT)
        assert code == 503, body
        log = srv.log.read_text()
        assert "registry is unreachable" in log and "train one first" not in log and "REFUSED" not in log
        up = registry.start()
        srv.wait_ready(timeout=30)
        ready_after = time.time() - up
        # /readyz was answered by one worker; another may still wait out its retry backoff, and step 2 needs each
        # worker to hold the first model before the registry goes away again
        srv.wait_log("sentiment model ready: ", len(workers(srv)), timeout=30)

        # 2. under load, the registry dies, and the champion moves while it is down
        timeline: dict[str, object] = {}

        def outage() -> None:
            time.sleep(1)
            registry.stop()
            timeline["down"] = time.time()
            time.sleep(1)
            code, body, _ = http("POST", srv.base + "/admin/reload", {"task": "sentiment"}, ADMIN)
            timeline["reload"] = json.loads(body)[0] if code == 200 else code
            promote(MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]), "sentiment", models.second)

        mover = threading.Thread(target=outage)
        mover.start()
        check = answered_by_its_model(models.expected)
        result = load(srv.base + "/sentiment", SENTIMENT, clients=8, seconds=6, check=check)
        mover.join()
        assert result.failures == 0 and result.wrong == 0, (result.statuses, result.wrong)
        assert set(result.models) == {label_of(result.models, models.first)}, result.models
        reload = timeline["reload"]
        assert isinstance(reload, dict) and reload["outcome"] == "unreachable", reload
        assert reload["model"].startswith(f"sentiment/v{models.first} ")
        assert "train one first" not in reload["reason"]

        # 3. it comes back: the service follows the promotion it missed
        up = registry.start()
        followed_after = first_answer_from(srv, models.second, check, up + 30) - up
        assert "REFUSED" not in srv.log.read_text()
        report(
            "registry unreachable",
            ready_after_registry_up_s=round(ready_after, 2),
            requests=result.requests,
            failed=result.failures,
            wrong=result.wrong,
            outage_s=round(up - float(timeline["down"]), 2),  # type: ignore[arg-type]
            new_champion_served_after_registry_up_s=round(followed_after, 2),
        )
    finally:
        srv.stop()
        registry.stop()


# -- downloads that go wrong -------------------------------------------------------------------------------------

# Wraps MLflow's artifact download in the service's processes. A fault is armed by a file in MEMORIA_TEST_FAULTS
# named `<kind>-<n>`; each download takes at most one (a rename: exactly one process gets it).
FAULTS_SITECUSTOMIZE = """
import errno, os, pathlib
import mlflow.artifacts as artifacts

_download = artifacts.download_artifacts


def _take(kind):
    folder = pathlib.Path(os.environ["MEMORIA_TEST_FAULTS"])
    for armed in sorted(folder.glob(kind + "-*")):
        try:
            os.replace(armed, folder / "used" / armed.name)
            return True
        except OSError:
            continue
    return False


def _half_of_the_biggest_file(folder):
    biggest = max((p for p in pathlib.Path(folder).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(biggest, "r+b") as f:
        f.truncate(biggest.stat().st_size // 2)


def download_artifacts(*args, **kwargs):
    out = _download(*args, **kwargs)
    if _take("enospc"):  # the disk filled up half-way through
        _half_of_the_biggest_file(out)
        raise OSError(errno.ENOSPC, "No space left on device")
    if _take("truncate"):  # the copy was cut short, and nothing noticed
        _half_of_the_biggest_file(out)
    return out


artifacts.download_artifacts = download_artifacts
"""


def first_answer_from(srv: Server, version: str, check: Callable[[str, str], bool], deadline: float) -> float:
    """Ask until an answer comes from `version` (every answer checked on the way); returns time.time() then."""
    while True:
        code, body, headers = http("POST", srv.base + "/sentiment", SENTIMENT)
        assert code == 200 and check(headers["x-memoria-model"], body), (code, body)
        if headers["x-memoria-model"].startswith(f"sentiment/v{version} "):
            return time.time()
        assert time.time() < deadline, f"v{version} never served:\n{srv.log.read_text()[-3000:]}"
        time.sleep(0.1)


def arm(faults: Path, kind: str, times: int) -> None:
    for i in range(times):
        (faults / f"{kind}-{i}").touch()


def test_a_full_disk_or_a_truncated_download_is_retried_and_never_refuses_a_good_champion(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    env = copy_store(store, tmp_path)
    faults = tmp_path / "faults"
    (faults / "used").mkdir(parents=True)
    (faults / "sitecustomize.py").write_text(FAULTS_SITECUSTOMIZE)
    # One worker: it takes every download, so each armed fault hits the swap under test.
    extra = {"PYTHONPATH": str(faults), "MEMORIA_TEST_FAULTS": str(faults), "MEMORIA_WORKERS": "1"}
    srv = Server({**env, **QUICK, **extra}, tmp_path / "serve.log")
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    cache = Path(env["MEMORIA_BUNDLE_CACHE"])
    try:
        srv.wait_ready()
        check = answered_by_its_model(models.expected)
        measured = {}
        # 1. disk full three times in a row while fetching the new champion, then space comes back
        arm(faults, "enospc", 3)
        # 2. then a copy cut short that the download did not notice: caught by verification, fetched again
        first = client.get_model_version("sentiment", models.first)
        third = register(client, "sentiment", first.run_id, first.source, first.tags[DIGEST_TAG]).version
        expected = {**models.expected, str(third): models.expected[models.first]}  # the first model, as v3
        for fault, version in (("disk full", models.second), ("truncated download", str(third))):
            if fault == "truncated download":
                arm(faults, "truncate", 1)
            moved: dict[str, float] = {}

            def move(version: str = version, moved: dict[str, float] = moved) -> None:
                time.sleep(1)
                moved["at"] = time.time()
                promote(client, "sentiment", version)

            mover = threading.Thread(target=move)
            mover.start()
            result = load(srv.base + "/sentiment", SENTIMENT, clients=8, seconds=8, check=check)
            mover.join()
            assert result.failures == 0 and result.wrong == 0, (fault, result.statuses, result.wrong)
            new = label_of(result.models, version)
            # on a busy machine the retries may outlast the load: then one request at a time until it swaps
            served_at = result.first_seen[new] if new else first_answer_from(srv, version, check, moved["at"] + 30)
            measured[fault] = {
                "requests": result.requests,
                "failed": result.failures,
                "wrong": result.wrong,
                "new_champion_served_after_s": round(served_at - moved["at"], 2),
            }
            check = answered_by_its_model(expected)
        assert not list(faults.glob("enospc-*")) and not list(faults.glob("truncate-*")), "a fault was never hit"
        log = srv.log.read_text()
        assert "REFUSED" not in log
        assert "No space left on device" in log and "checking again" in log
        assert "failed verification" in log and "fetching again" in log
        assert not list(cache.rglob(".download-*")) and not list(cache.rglob(".discard-*")), "half copies left"
        report("disk full / truncated download", **measured)
    finally:
        srv.stop()
        promote(client, "sentiment", models.first)


# -- a worker dies ------------------------------------------------------------------------------------------------


def workers(srv: Server) -> list[int]:
    out = []
    for pid in srv.pids():
        try:
            if b"_bentoml_impl.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return sorted(out)


@dataclass
class KilledWorker:
    result: Any
    replaced_after_s: float


def kill_a_worker_under_load(srv: Server, base: str, models: TwoModels, clients: int = 16) -> KilledWorker:
    """SIGKILL one of the service's two workers 2 s into 10 s of load sent to `base` (the service itself, or a load
    balancer in front of it); returns the load's result once the replacement worker has loaded both models."""
    srv.wait_every_worker_ready()  # two workers, two models each
    before = workers(srv)
    assert len(before) == 2, before
    ready_lines = 4
    timeline: dict[str, float] = {}

    def kill() -> None:
        time.sleep(2)
        os.kill(before[0], signal.SIGKILL)
        timeline["killed"] = time.time()
        deadline = time.time() + 60
        while time.time() < deadline:  # the replacement has loaded both models
            if srv.log.read_text().count(" model ready: ") >= ready_lines + 2:
                timeline["replaced"] = time.time()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill)
    killer.start()
    check = answered_by_its_model(models.expected)
    result = load(base + "/sentiment", SENTIMENT, clients=clients, seconds=10, check=check)
    killer.join()
    after = workers(srv)
    assert len(after) == 2 and before[0] not in after, (before, after)
    assert "replaced" in timeline, srv.log.read_text()[-3000:]
    assert result.wrong == 0
    assert not any(isinstance(k, int) and k >= 500 for k in result.statuses), result.statuses
    replaced_after = timeline["replaced"] - timeline["killed"]
    assert replaced_after < 45, replaced_after  # a fresh process imports and loads both models, on a busy machine
    assert all(http("POST", base + "/sentiment", SENTIMENT)[0] == 200 for _ in range(20))
    return KilledWorker(result, replaced_after)


def test_a_worker_killed_under_load_is_replaced_and_no_answer_is_wrong(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    env = {**store, "MEMORIA_BUNDLE_CACHE": str(tmp_path / "cache"), "MEMORIA_WORKERS": "2"}
    srv = Server(env, tmp_path / "serve.log")
    try:
        killed = kill_a_worker_under_load(srv, srv.base, models)
        # Only what the killed worker held can be lost: the requests it had read and not answered, and those sent
        # on a kept-alive connection to it before the client saw it close (at most two per client); never a 5xx.
        lost = killed.result.failures
        assert lost <= 2 * 16, killed.result.statuses
        report(
            "worker SIGKILL",
            requests=killed.result.requests,
            lost_in_flight_on_the_killed_worker=lost,
            wrong=killed.result.wrong,
            statuses={str(k): v for k, v in killed.result.statuses.items()},
            replacement_serving_after_s=round(killed.replaced_after_s, 2),
        )
    finally:
        srv.stop()


def test_behind_a_retrying_load_balancer_only_an_answer_cut_mid_write_is_lost(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    # A process killed while it holds a request cannot answer it; what saves the request is a proxy that sends it
    # again (HAProxy's retry-on empty-response, tests/load_balancer.py). Safe because a prediction has no side effect.
    from tests.load_balancer import HAProxy

    env = {**store, "MEMORIA_BUNDLE_CACHE": str(tmp_path / "cache"), "MEMORIA_WORKERS": "2"}
    srv = Server(env, tmp_path / "serve.log")
    # No health check: /readyz is answered per worker, and while the replacement worker loads, checks that land on
    # it fail; two in a row take the only replica out and the proxy answers 503 itself (seen in CI: 5,301 of
    # 11,083). With one replica there is nothing to fail over to, so the check only hurts.
    proxy = HAProxy({"memoria": srv.port}, tmp_path, health_check=False)
    try:
        srv.wait_ready()
        deadline = time.time() + 30
        while http("GET", proxy.base + "/readyz")[0] != 200:  # the proxy's health check has seen it ready
            assert time.time() < deadline, proxy.log.read_text()[-2000:]
            time.sleep(0.2)
        killed = kill_a_worker_under_load(srv, proxy.base, models)
        # What no proxy can send again: an answer the worker was killed in the middle of writing. uvicorn writes the
        # headers and the body in two calls; once the headers have left, HAProxy has passed them on (also with
        # `http-response wait-for-body`, tried) and the client sees the body cut short (aiohttp's
        # ClientPayloadError: an error, never a wrong answer). A worker writes one answer at a time, so at most one.
        # A request the proxy failed to send again would show as a 502 or a dropped connection instead.
        cut = killed.result.statuses["ClientPayloadError"]
        assert killed.result.failures == cut <= 1, (killed.result.statuses, proxy.log.read_text()[-2000:])
        report(
            "worker SIGKILL behind HAProxy (retry-on empty-response)",
            requests=killed.result.requests,
            lost=killed.result.failures,
            cut_mid_answer=cut,
            wrong=killed.result.wrong,
            replacement_serving_after_s=round(killed.replaced_after_s, 2),
        )
    finally:
        proxy.stop()
        srv.stop()


# -- SQLite shared with training ----------------------------------------------------------------------------------


def test_a_training_write_transaction_does_not_stall_the_services_polls(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    env = copy_store(store, tmp_path)
    database = Path(env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))
    marker_before = (database.parent / MARKER).read_text()
    with sqlite3.connect(database) as db:  # training put the store in WAL mode (training/tracking/store.py)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    srv = Server({**env, **QUICK}, tmp_path / "serve.log")
    try:
        srv.wait_ready()
        timeline: dict[str, object] = {}

        def training_writes() -> None:
            time.sleep(1)
            # as a training run committing a big batch: the write lock held for 6 s (longer than the 5 s busy
            # timeout every MLflow connection has)
            db = sqlite3.connect(database, timeout=30, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            db.execute("UPDATE registered_models SET description = description")
            started = time.time()
            code, body, _ = http("POST", srv.base + "/admin/reload", {"task": "sentiment"}, ADMIN)
            timeline["reload"] = json.loads(body)[0] if code == 200 else code
            timeline["reload_s"] = time.time() - started
            time.sleep(max(0.0, 6 - (time.time() - started)))
            db.execute("ROLLBACK")
            db.close()
            promote(MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]), "sentiment", models.second)
            timeline["moved"] = time.time()

        writer = threading.Thread(target=training_writes)
        writer.start()
        result = load(
            srv.base + "/sentiment", SENTIMENT, clients=8, seconds=11, check=answered_by_its_model(models.expected)
        )
        writer.join()
        assert result.failures == 0 and result.wrong == 0, (result.statuses, result.wrong)
        reload = timeline["reload"]
        assert isinstance(reload, dict) and reload["outcome"] == "unchanged", reload  # read while the lock is held
        assert float(timeline["reload_s"]) < 2, timeline  # type: ignore[arg-type]
        log = srv.log.read_text()
        assert "unreachable" not in log and "locked" not in log
        new = label_of(result.models, models.second)
        assert new is not None, result.models
        followed = result.first_seen[new] - float(timeline["moved"])  # type: ignore[arg-type]
        # serving only read the copied store: no relocation written, locations mapped in memory
        assert (database.parent / MARKER).read_text() == marker_before
        report(
            "SQLite write-locked by training",
            requests=result.requests,
            failed=result.failures,
            wrong=result.wrong,
            reload_during_lock_s=round(float(timeline["reload_s"]), 2),  # type: ignore[arg-type]
            promotion_after_lock_served_after_s=round(followed, 2),
        )
    finally:
        srv.stop()


# -- the reload trigger with polling off ---------------------------------------------------------------------------


def test_a_reload_request_moves_every_worker_with_polling_off(
    store: dict[str, str], models: TwoModels, tmp_path: Path
) -> None:
    env = copy_store(store, tmp_path)
    settings = {**QUICK, "MEMORIA_RELOAD_INTERVAL_S": "0", "MEMORIA_WORKERS": "2"}
    srv = Server({**env, **settings}, tmp_path / "serve.log")
    try:
        srv.wait_ready()
        srv.wait_log("sentiment model ready", 2)  # both workers serve the first model
        promote(MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]), "sentiment", models.second)
        time.sleep(2.5)
        labels = {http("POST", srv.base + "/sentiment", SENTIMENT)[2]["x-memoria-model"] for _ in range(10)}
        assert all(label.startswith(f"sentiment/v{models.first} ") for label in labels), labels  # no polling
        code, body, _ = http("POST", srv.base + "/admin/reload", {"task": "sentiment"}, ADMIN)
        assert code == 200 and json.loads(body)[0]["outcome"] == "swapped", body
        time.sleep(2.5)
        assert srv.log.read_text().count("sentiment swapped") == 2, "not every worker followed the reload request"
        check = answered_by_its_model(models.expected)
        for _ in range(20):
            code, body, headers = http("POST", srv.base + "/sentiment", SENTIMENT)
            assert code == 200 and headers["x-memoria-model"].startswith(f"sentiment/v{models.second} ")
            assert check(headers["x-memoria-model"], body)
    finally:
        srv.stop()


# -- the pieces under them (no service) ---------------------------------------------------------------------------


def champion(uri: str, version: str) -> ChampionRef:
    mv = MlflowClient(tracking_uri=uri).get_model_version("sentiment", version)
    return ChampionRef(str(mv.version), mv.source, mv.tags.get(DIGEST_TAG, ""))


def test_a_version_without_a_digest_tag_is_refused_naming_the_tag(store: dict[str, str], tmp_path: Path) -> None:
    uri = store["MLFLOW_TRACKING_URI"]
    ref = champion_ref("sentiment", uri)
    with pytest.raises(BundleError, match=DIGEST_TAG.replace(".", r"\.")):
        champion_bundle("sentiment", uri, tmp_path / "cache", ChampionRef(ref.version, ref.source, ""))


def test_a_cached_copy_that_fails_verification_is_deleted_and_fetched_again(
    store: dict[str, str], tmp_path: Path
) -> None:
    uri, cache = store["MLFLOW_TRACKING_URI"], tmp_path / "cache"
    first = champion_bundle("sentiment", uri, cache)
    graph = first.bundle.graph("classifier")
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # a crash or a full disk cut it short
    again = champion_bundle("sentiment", uri, cache)
    assert again.bundle.digest == first.bundle.digest and again.bundle.graph("classifier").stat().st_size > 0
    assert not [p for p in (cache / "sentiment").iterdir() if p.name.startswith(".")]


def test_the_bundle_cache_is_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.resolve import bundle_cache

    monkeypatch.delenv("MEMORIA_BUNDLE_CACHE", raising=False)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home"))
    assert bundle_cache() == tmp_path / "home" / "memoria" / "bundle-cache"  # the service's home, not /tmp

    made = private_folder(tmp_path / "new" / "cache")
    assert made.stat().st_mode & 0o777 == 0o700
    open_one = tmp_path / "open"
    open_one.mkdir(mode=0o777)
    os.chmod(open_one, 0o777)
    assert private_folder(open_one).stat().st_mode & 0o777 == 0o700  # ours, too open: closed
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PermissionError, match="not a plain folder"):
        private_folder(tmp_path / "link")
    if os.geteuid() == 0:  # only root can give a folder away
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        with pytest.raises(PermissionError, match="belongs to uid 65534"):
            private_folder(theirs)


def test_an_unreachable_registry_is_told_apart_from_a_missing_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://user:secret@127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(RegistryUnavailable) as unreachable:
        champion_ref("sentiment", dead)
    assert "unreachable" in str(unreachable.value) and "train one first" not in str(unreachable.value)
    assert "secret" not in str(unreachable.value)
    empty = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(tracking_uri=empty).create_registered_model("sentiment")
    with pytest.raises(NoChampion, match="train one first"):
        champion_ref("sentiment", empty)


def test_the_explanations_fp32_graph_is_hashed_when_it_is_opened(store: dict[str, str], tmp_path: Path) -> None:
    import shutil

    from serving.contract.bundle import load_bundle
    from serving.sentiment import SentimentPredictor

    served = champion_bundle("sentiment", store["MLFLOW_TRACKING_URI"], tmp_path / "cache")
    copy = tmp_path / "bundle"
    shutil.copytree(served.bundle.path, copy)
    bundle = load_bundle(copy, "sentiment")
    if "classifier_fp32" not in bundle.manifest["graphs"] or bundle.graph("classifier_fp32") == bundle.graph(
        "classifier"
    ):
        pytest.skip("this champion serves its fp32 graph: nothing is opened later")
    predictor = SentimentPredictor(bundle)
    # days later, someone replaces the fp32 graph with another valid graph (the served one)
    shutil.copyfile(bundle.graph("classifier"), bundle.graph("classifier_fp32"))
    with pytest.raises(BundleError, match="changed since the bundle was verified"):
        _ = predictor.fp32_session


def test_a_tokenizer_is_used_from_the_bytes_that_were_hashed(store: dict[str, str], tmp_path: Path) -> None:
    import shutil

    from serving.contract.bundle import load_bundle
    from serving.sentiment import SentimentPredictor

    served = champion_bundle("sentiment", store["MLFLOW_TRACKING_URI"], tmp_path / "cache")
    copy = tmp_path / "bundle"
    shutil.copytree(served.bundle.path, copy)
    bundle = load_bundle(copy, "sentiment")  # verified here
    # the tokenizer file changes on disk before the predictor opens it (still a valid tokenizer file)
    tokenizer = bundle.tokenizer("text")
    tokenizer.write_text(tokenizer.read_text() + "\n")
    with pytest.raises(BundleError, match="changed since the bundle was verified"):
        SentimentPredictor(bundle)


def test_serving_a_copied_store_only_reads_it(
    store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.resolve import resolve_bundle

    env = copy_store(store, tmp_path)
    database = Path(env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))
    old_root = (database.parent / MARKER).read_text().strip()
    assert old_root != str(database.parent)
    sources = "SELECT source FROM model_versions ORDER BY name, version"
    with sqlite3.connect(database) as db:
        before = db.execute(sources).fetchall()
    for name in ("MLFLOW_TRACKING_URI", "MEMORIA_BUNDLE_CACHE", "MEMORIA_HOME"):
        monkeypatch.setenv(name, env[name])
    served = resolve_bundle("sentiment")
    assert served.origin == "registry" and served.registry_version is not None
    with sqlite3.connect(database) as db:
        assert db.execute(sources).fetchall() == before  # locations mapped in memory, not rewritten
    assert (database.parent / MARKER).read_text().strip() == old_root
