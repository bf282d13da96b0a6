"""Two `bentoml serve` replicas on one registry behind a real load balancer (HAProxy), under 32 clients, through a
promotion and a rollback of the sentiment champion: no request fails, every answer carries the scores of the model
its `X-Memoria-Model` header names, both replicas end on the new champion, and the test measures how long the two
disagreed and how long until both served the new model (printed as a `REPLICAS` line; figures in the README,
"Replicas behind a load balancer")."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.load_balancer import REPLICA_HEADER, HAProxy
from tests.serving_harness import (
    Server,
    answered_by_its_model,
    copy_store,
    http,
    second_sentiment_version,
    sentiment_scores,
)

CLIENTS = 32
TEXT = "the flight was late but the crew was lovely"
# One worker each, so two replicas, HAProxy and 32 clients share the 2 cores of the development machine. The poll
# interval is the test's parameter: 1 s, and the production default of 10 s (replicas poll independently, so how
# long they disagree depends on where each one's poll falls).
ADMIN_TOKEN = "replica-test-admin-token"
REPLICA_SETTINGS = {"MEMORIA_RETRY_MAX_S": "2", "MEMORIA_WORKERS": "1", "MEMORIA_ADMIN_TOKEN": ADMIN_TOKEN}
SETTLE_S = 3.0  # load before the first move and after each convergence, so every phase has answers from both


@dataclass(frozen=True)
class Answer:
    done: float  # time.time() when the answer came back
    status: int | str  # HTTP status, or the client error's name
    model: str  # X-Memoria-Model
    replica: str  # X-Memoria-Replica, set by HAProxy
    body: str

    @property
    def version(self) -> str:
        return self.model.split()[0].removeprefix("sentiment/v") if self.model else ""


def closed_loop(url: str, clients: int, stop: threading.Event, answers: list[Answer]) -> None:
    """`clients` keep-alive clients through the load balancer, each sending its next request when the last
    returns, until `stop` is set; every answer is appended to `answers` as it comes back."""
    import aiohttp

    async def client(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                async with session.post(url, json={"texts": [TEXT]}) as r:
                    body = (await r.read()).decode()
                    model, replica = r.headers.get("X-Memoria-Model", ""), r.headers.get(REPLICA_HEADER, "")
                    answers.append(Answer(time.time(), r.status, model, replica, body))
            except aiohttp.ClientError as e:
                answers.append(Answer(time.time(), type(e).__name__, "", "", ""))

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            await asyncio.gather(*(client(session) for _ in range(clients)))

    asyncio.run(main())


@dataclass(frozen=True)
class Switch:
    """What clients saw from the moment the alias moved until the next phase."""

    answers: int
    failed: int
    disagreement_s: float  # first answer from the new model -> last answer from the old one (0: never both)
    converged_s: float  # alias moved -> both replicas answer with the new model and the old one answers no more
    replica_first_new_s: dict[str, float]  # per replica: alias moved -> its first answer from the new model

    def figures(self) -> dict[str, object]:
        rounded = {k: round(v, 2) for k, v in self.replica_first_new_s.items()}
        return {
            "answers": self.answers,
            "failed": self.failed,
            "disagreement_s": round(self.disagreement_s, 2),
            "converged_s": round(self.converged_s, 2),
            "replica_first_new_s": rounded,
        }


def measure(answers: list[Answer], moved: float, until: float, old: str, new: str, replicas: set[str]) -> Switch:
    window = [a for a in answers if moved <= a.done < until]
    ok = [a for a in window if a.status == 200]
    old_done = [a.done for a in ok if a.version == old]
    new_done = [a.done for a in ok if a.version == new]
    first_new = {r: min(a.done for a in ok if a.replica == r and a.version == new) for r in replicas}
    last_old = max(old_done, default=moved)
    return Switch(
        answers=len(window),
        failed=len(window) - len(ok),
        disagreement_s=max(0.0, last_old - min(new_done)),
        converged_s=max(max(first_new.values()), last_old) - moved,
        replica_first_new_s={r: t - moved for r, t in first_new.items()},
    )


def wait_until_all_serve(answers: list[Answer], version: str, since: float, replicas: set[str], timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        seen = {a.replica for a in list(answers) if a.done >= since and a.version == version and a.status == 200}
        if seen >= replicas:
            return
        assert time.time() < deadline, f"replicas {sorted(replicas - seen)} never served v{version} in {timeout}s"
        time.sleep(0.1)


def reload_every(servers: dict[str, Server]) -> None:
    """What a deploy hook does after a promotion: POST /admin/reload to each replica itself (through the load
    balancer it would reach only one), all at once."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    threads = [
        threading.Thread(target=http, args=("POST", s.base + "/admin/reload", {"task": "sentiment"}, headers))
        for s in servers.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.slow
# (poll interval, seconds between the two replicas' starts, POST /admin/reload to every replica after each move):
# started together, their polls fall together and they barely disagree; started half an interval apart (as replicas
# started at different times are), they disagree for about that long, which is the case to plan with; a reload
# sent to every replica right after the move makes both check at once, whatever their poll phase.
@pytest.mark.parametrize(
    ("interval", "stagger", "fan_out"), [(1, 0.0, False), (10, 5.0, False), (10, 5.0, True)], ids=str
)
def test_two_replicas_behind_haproxy_follow_one_champion_through_a_promotion_and_a_rollback(
    store: dict[str, str], tmp_path: Path, interval: int, stagger: float, fan_out: bool
) -> None:
    from training.registry.promotion import promote, rollback

    second = second_sentiment_version(store)
    env = copy_store(store, tmp_path)  # one registry (SQLite), shared by both replicas and the promoter
    uri = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri)
    first = str(client.get_model_version_by_alias("sentiment", "champion").version)
    expected = {v: sentiment_scores(uri, v, tmp_path / "reference-cache", TEXT) for v in (first, second)}
    assert expected[first] != expected[second]  # two different models, so a header that lies would be caught
    check = answered_by_its_model(expected)

    servers: dict[str, Server] = {}
    for name in ("r1", "r2"):
        if servers:
            time.sleep(stagger)  # each replica's polls keep the phase of its start
        folder = tmp_path / name
        folder.mkdir()
        # its own bundle cache: another machine's disk
        servers[name] = Server(
            {
                **env,
                **REPLICA_SETTINGS,
                "MEMORIA_RELOAD_INTERVAL_S": str(interval),
                "MEMORIA_BUNDLE_CACHE": str(folder / "cache"),
            },
            folder / "serve.log",
        )
    replicas = set(servers)
    answers: list[Answer] = []
    stop = threading.Event()
    try:
        for s in servers.values():
            s.wait_ready()
        lb = HAProxy({name: s.port for name, s in servers.items()}, tmp_path)
        try:
            url = lb.base + "/sentiment"
            deadline = time.time() + 30  # HAProxy marks a replica up after its first /readyz check
            seen: set[str] = set()
            while seen != replicas:
                assert time.time() < deadline, f"HAProxy routes to {seen} only:\n{lb.log.read_text()[-2000:]}"
                status, _, headers = http("POST", url, {"texts": [TEXT]})
                if status == 200:
                    seen.add(headers[REPLICA_HEADER.lower()])
            loader = threading.Thread(target=closed_loop, args=(url, CLIENTS, stop, answers))
            started = time.time()
            loader.start()
            time.sleep(SETTLE_S)
            promoted = time.time()  # just before the move: the measured times include the move itself
            promote(client, "sentiment", second)
            if fan_out:
                reload_every(servers)
            wait_until_all_serve(answers, second, promoted, replicas, timeout=60)
            time.sleep(SETTLE_S)
            rolled_back = time.time()
            assert rollback(client, "sentiment") == first
            if fan_out:
                reload_every(servers)
            wait_until_all_serve(answers, first, rolled_back, replicas, timeout=60)
            time.sleep(SETTLE_S)
            ended = time.time()
        finally:
            stop.set()
            if "loader" in locals():
                loader.join(timeout=90)
            lb.stop()
    finally:
        for s in servers.values():
            s.stop()

    promotion = measure(answers, promoted, rolled_back, first, second, replicas)
    back = measure(answers, rolled_back, ended, second, first, replicas)
    ok = [a for a in answers if a.status == 200]
    figures = {
        "reload_interval_s": interval,
        "start_stagger_s": stagger,
        "admin_reload_to_every_replica": fan_out,
        "clients": CLIENTS,
        "requests": len(answers),
        "seconds": round(ended - started, 1),
        "failed": len(answers) - len(ok),
        "wrong": sum(not check(a.model, a.body) for a in ok),
        "per_replica": {r: sum(a.replica == r for a in ok) for r in sorted(replicas)},
        "promotion": promotion.figures(),
        "rollback": back.figures(),
    }
    print("\nREPLICAS " + json.dumps(figures))
    assert figures["failed"] == 0, [a for a in answers if a.status != 200][:5]
    assert figures["wrong"] == 0  # every answer has the scores of the model its header names
    assert all(a.model and a.replica in replicas for a in ok)  # a client can tell which model and replica answered
    assert all(n > len(ok) / 4 for n in figures["per_replica"].values())  # both replicas took the load
    before = [a for a in ok if started <= a.done < promoted]
    assert before and {a.version for a in before} == {first}
    for switch in (promotion, back):
        # each replica follows within a poll interval, a fetch and a warm-up (seconds on a busy machine)
        assert switch.converged_s < interval + 15
        assert switch.disagreement_s <= switch.converged_s
    # after convergence only the new champion answers
    assert {a.version for a in ok if a.done >= promoted + promotion.converged_s and a.done < rolled_back} == {second}
    assert {a.version for a in ok if a.done >= rolled_back + back.converged_s} == {first}
