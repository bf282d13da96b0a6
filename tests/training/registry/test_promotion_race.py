"""Concurrent promotions: the better model ends as champion whatever the interleaving, against a real tracking
server on PostgreSQL and on a local SQLite store, through the ticket queue in training/registry/promotion_lock.py.

The race that used to be lost: gate B (worse) reads the champion and scores for a while; meanwhile gate A (better)
runs start to finish and promotes; then B writes, because it never read the alias again. Here B is held inside
its scoring by an event while A runs, so the bad interleaving happens every time, not by luck.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

import training.registry.promotion as promotion
from serving.contract.names import GATE_CONCURRENCY_TAG, GATE_VERDICT_TAG, LOCK_HEARTBEAT_TAG, LOCK_OWNER_TAG
from tests.tracking_server import PostgresCluster, TrackingServer, postgres_bindir, tracking_server
from tests.training.registry.test_registry import SAME_DATA, fake_training_run
from training.config import Workspace
from training.registry.alias_history import read_history
from training.registry.promotion import champion, gate_and_promote
from training.registry.promotion_lock import LockTiming, PromotionLock, PromotionLockError, lock_name, promotion_lock
from training.registry.publish import register
from training.tasks import publish_run, task_named
from training.tracking.store import SELECTION_SCORE, experiment_id, use_store

FAST = LockTiming(lease_s=1.5, heartbeat_s=0.2, poll_s=0.05, wait_s=60)  # leases short enough for a test to outwait


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """A plain `mlflow server` (no login: the race, not the access control, is under test) on a fresh PostgreSQL."""
    bindir, why_not = postgres_bindir()
    if bindir is None:
        pytest.fail(f"the promotion race needs PostgreSQL (`make test` installs it): {why_not}")
    cluster = PostgresCluster(bindir)
    try:
        folder = tmp_path_factory.mktemp("race-server")
        with tracking_server(cluster, f"race_{uuid.uuid4().hex[:8]}", folder) as srv:
            yield srv
    finally:
        cluster.stop()


def live_tickets(client: MlflowClient, task: str = "sentiment") -> list[Any]:
    return client.search_model_versions(f"name = '{lock_name(task)}'")


def registered(ws: Workspace, tmp_path: Path, score: float, i: int) -> ModelVersion:
    """A registered version of a run with `score` and the shared data fingerprint (no bundle: the gate compares
    the logged selection scores, which is all these lock tests need)."""
    client = use_store(ws)
    tags = {"memoria.task": "sentiment", "memoria.data_fingerprint": SAME_DATA}
    with mlflow.start_run(experiment_id=experiment_id(client, ws, "sentiment"), tags=tags) as run:
        mlflow.log_metric(SELECTION_SCORE, score)
    return register(client, "sentiment", run.info.run_id, f"{tmp_path}/bundle-{i}", f"{i:064d}")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


class Thread(threading.Thread):
    """A thread whose result or exception the test reads after join()."""

    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as e:  # surfaced by the test: a thread's exception would otherwise vanish
            self.error = e


def test_the_slow_worse_gate_finishing_last_leaves_the_better_champion_on_a_server(
    server: TrackingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a champion (0.50) on a tracking server backed by PostgreSQL, and two challengers: B 0.60, A 0.70
    ws = Workspace(root=tmp_path / "trainer", tracking_uri=server.uri)
    first = publish_run(ws, fake_training_run(ws, tmp_path, 0.50, seed=1))
    run_b = fake_training_run(ws, tmp_path, 0.60, seed=2)
    run_a = fake_training_run(ws, tmp_path, 0.70, seed=3)

    # B's gate is held inside its scoring, after it has read the champion (v1) and decided it beats it
    b_scored, b_may_go = threading.Event(), threading.Event()
    real_decide = promotion.decide

    def decide(client, task, challenger, current, ws=None):
        decision = real_decide(client, task, challenger, current, ws)
        if challenger.run_id == run_b and not b_scored.is_set():
            b_scored.set()
            assert b_may_go.wait(120), "the test never let B go on"
        return decision

    monkeypatch.setattr(promotion, "decide", decide)
    gate_b = Thread(lambda: publish_run(ws, run_b))
    gate_b.start()
    assert b_scored.wait(120), gate_b.error
    assert gate_b.result is None and str(champion(use_store(ws), "sentiment").version) == first.version

    # When A runs start to finish while B is paused, and only then B goes on
    a = publish_run(ws, run_a)
    assert a.promoted, a.gate
    b_may_go.set()
    gate_b.join(120)
    assert not gate_b.is_alive() and gate_b.error is None, gate_b.error
    b = gate_b.result

    # Then A is champion: B met A when it read the alias again under the lock, gated against it, and stayed out
    client = MlflowClient(tracking_uri=server.uri)
    assert not b.promoted and str(champion(client, "sentiment").version) == a.version == b.champion_version
    tags = client.get_run(run_b).data.tags
    assert tags[GATE_VERDICT_TAG] == "not promoted"
    assert f"the champion moved v{first.version} -> v{a.version} while it scored" in tags[GATE_CONCURRENCY_TAG]
    # And the alias history shows exactly the two moves that happened, and no ticket is left behind
    moves = read_history(client, "sentiment")
    assert [(m.from_version, m.to_version, m.reason) for m in moves] == [
        ("", first.version, "promoted"),
        (first.version, a.version, "promoted"),
    ]
    assert live_tickets(client) == []


def test_a_gate_waits_behind_a_live_ticket_longer_than_a_lease_and_the_history_says_so(
    ws: Workspace, tmp_path: Path
) -> None:
    # Given a champion, and a holder of the lock that keeps its ticket alive (heartbeats) for longer than a lease
    client = use_store(ws)
    first, candidate = registered(ws, tmp_path, 0.50, 1), registered(ws, tmp_path, 0.70, 2)
    assert gate_and_promote(client, task_named("sentiment"), first, ws, FAST).promote
    with promotion_lock(client, "sentiment", str(first.version), "test holder", FAST) as (_, held):
        # When a gate for a better candidate starts meanwhile
        own = MlflowClient(ws.tracking_uri)
        gate = Thread(lambda: gate_and_promote(own, task_named("sentiment"), candidate, ws, FAST))
        gate.start()
        wait_for(lambda: len(live_tickets(client)) == 2, 30, "the gate took a ticket")
        time.sleep(2 * FAST.lease_s)
        # Then it waits: the holder's heartbeat keeps its ticket from looking stale
        assert gate.is_alive() and champion(client, "sentiment").version == first.version
    gate.join(60)
    assert gate.error is None, gate.error
    decision = gate.result
    assert decision.promote and champion(client, "sentiment").version == candidate.version
    move = read_history(client, "sentiment")[-1]
    assert move.to_version == str(candidate.version)
    assert f"behind ticket {held.ticket} (test holder of sentiment v1 by " in move.concurrency
    assert "broke" not in move.concurrency
    waited = float(move.concurrency.split("waited ")[1].split(" s")[0])
    assert waited >= 2 * FAST.lease_s
    assert live_tickets(client) == []


def test_a_crashed_gates_ticket_is_broken_after_one_lease(ws: Workspace, tmp_path: Path) -> None:
    # Given a ticket whose gate died holding the lock (no heartbeat ever comes)
    client = use_store(ws)
    first, version = registered(ws, tmp_path, 0.50, 1), registered(ws, tmp_path, 0.70, 2)
    assert gate_and_promote(client, task_named("sentiment"), first, ws, FAST).promote
    ghost = "gate of sentiment v9 by ghost@elsewhere pid 1"
    dead = client.create_model_version(
        lock_name("sentiment"),
        f"models:/sentiment/{first.version}",
        tags={LOCK_OWNER_TAG: ghost, LOCK_HEARTBEAT_TAG: "0"},
    )
    # When a better candidate's gate runs
    started = time.monotonic()
    decision = gate_and_promote(client, task_named("sentiment"), version, ws, FAST)
    # Then it deletes the silent ticket after one lease (its own clock), promotes, and says what it broke
    assert decision.promote and time.monotonic() - started >= FAST.lease_s
    assert str(champion(client, "sentiment").version) == str(version.version)
    move = read_history(client, "sentiment")[-1]
    assert f"broke stale ticket {dead.version} ({ghost}, no heartbeat for " in move.concurrency
    assert live_tickets(client) == []


def test_a_gate_whose_ticket_was_deleted_refuses_to_write(ws: Workspace, tmp_path: Path) -> None:
    client = use_store(ws)
    lock = PromotionLock(client, "sentiment", str(registered(ws, tmp_path, 0.5, 1).version), "gate", FAST)
    lock.acquire()
    client.delete_model_version(lock_name("sentiment"), lock.ticket)  # a waiter judged it stale
    with pytest.raises(PromotionLockError, match="deleted as stale"):
        lock.ensure_held()
    lock.release()  # its ticket is gone already: releasing is quiet


def test_lock_timing_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"LockTiming\.poll_s must be > 0"):
        LockTiming(poll_s=0)
    with pytest.raises(ValueError, match=r"LockTiming\.heartbeat_s .* at most lease_s / 3"):
        LockTiming(lease_s=3, heartbeat_s=2)
