"""Open-loop HTTP load: requests sent at a fixed rate whatever the answers, as many independent callers do.

Why open loop beside loadgen.py's closed loop: a closed-loop client waits for its answer before it sends again, so
it never offers more than the server answers and overload cannot show. Callers that do not coordinate (many
users, many services) keep arriving at their own rate; if the server is slower, a backlog builds, and only
shedding (503) keeps the latency of what it accepts bounded. Every request here is its own task, on a connector
without a connection limit, so the client never queues a request the schedule says is due.

Bounded: at most `MAX_REQUESTS` per phase, each with a timeout, and only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_REQUESTS = 20_000
REQUEST_TIMEOUT_S = 120.0  # longer than the service's own 60 s timeout: the server, not the client, decides


@dataclass(frozen=True)
class Outcome:
    sent_s: float  # since the phase started
    latency_s: float
    status: int  # 0: no HTTP answer (connection error, client timeout)
    retry_after: str | None


@dataclass
class Phase:
    """One rate held for `seconds`: what each request met."""

    name: str
    rate: float  # requests per second
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)  # the server's total RSS, sampled during the phase

    @property
    def accepted(self) -> list[float]:
        return sorted(o.latency_s for o in self.outcomes if o.status == 200)

    def share(self, status: int) -> float:
        return sum(o.status == status for o in self.outcomes) / max(len(self.outcomes), 1)

    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    values = sorted(values)
    rank = (len(values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def _local_only(base_url: str) -> None:
    if urlsplit(base_url).hostname != "127.0.0.1":
        raise ValueError(f"the open-loop generator only sends to 127.0.0.1, not {base_url}")


async def _one(session: aiohttp.ClientSession, path: str, body: bytes, phase: Phase, sent: float, t0: float) -> None:
    status, retry_after = 0, None
    try:
        async with session.post(path, data=body, headers=JSON_HEADERS) as response:
            await response.read()
            status, retry_after = response.status, response.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError):
        pass
    phase.outcomes.append(Outcome(sent - t0, time.perf_counter() - sent, status, retry_after))


async def _sample_rss(rss: Callable[[], int], phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        phase.rss_kib.append(rss())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def run_phases(base_url: str, path: str, body: bytes, phases: list[Phase], rss: Callable[[], int]) -> list[Phase]:
    """Run the phases back to back on one schedule (no pause between them: the change of rate is part of what
    is measured). Returns when every request has its answer."""
    _local_only(base_url)
    connector = aiohttp.TCPConnector(limit=0)  # no client-side queue: a due request is sent now
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        tasks: list[asyncio.Task[None]] = []
        for phase in phases:
            count = min(int(phase.rate * phase.seconds), MAX_REQUESTS)
            stop = asyncio.Event()
            sampler = asyncio.ensure_future(_sample_rss(rss, phase, stop))
            t0 = time.perf_counter()
            for i in range(count):
                due = t0 + i / phase.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(_one(session, path, body, phase, time.perf_counter(), t0)))
            remaining = t0 + phase.seconds - time.perf_counter()
            if remaining > 0:
                await asyncio.sleep(remaining)
            stop.set()
            await sampler
        await asyncio.gather(*tasks)
    return phases


async def closed_rate(base_url: str, path: str, body: bytes, clients: int, seconds: float) -> float:
    """Answers per second with `clients` callers each waiting for its answer: what the server can serve."""
    _local_only(base_url)
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    answered = 0
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal answered
            while time.perf_counter() < deadline:
                async with session.post(path, data=body, headers=JSON_HEADERS) as response:
                    await response.read()
                    if response.status == 200 and time.perf_counter() <= deadline:
                        answered += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
    return answered / min(seconds, time.perf_counter() - started)
