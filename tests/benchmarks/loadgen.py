"""Closed-loop HTTP load: N keep-alive clients, each sending its next request as soon as the last one returns.

Why closed loop: it is how a pool of synchronous callers (a web app's workers, a batch job's threads) meets the
service, and it never queues more than N requests, so latency stays the latency of a request, not of a backlog
the generator built. Why aiohttp in this process: one session with a connector limited to N keeps exactly N
connections open and costs far less CPU per request than locust's workers, which matters when the generator and
the server share 2 cores (they do: the figures are a floor for the server).

Requests that *complete* inside the measured window count; the warm-up's and the stragglers finishing after the
window don't. Every server gets the same body sequence: a shared counter walks one precomputed list of bodies.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT_S = 60.0
BACKOFF_AFTER_EXCEPTION_S = 0.05  # a refused connection fails in microseconds: don't spin the CPU on it
ERROR_SAMPLES = 5


@dataclass
class LoadResult:
    """What one scenario measured. Latencies in milliseconds, of requests completed inside the window."""

    window_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, q: float) -> float:
        """Linear interpolation between closest ranks (numpy's default), so p99 of few samples is not the max."""
        values = sorted(self.latencies_ms)
        if not values:
            return math.nan
        rank = (len(values) - 1) * q / 100
        low, high = math.floor(rank), math.ceil(rank)
        return values[low] + (values[high] - values[low]) * (rank - low)


class _Window:
    """The measured window and the shared cursor into the body sequence."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.start = time.perf_counter() + warmup
        self.end = self.start + seconds
        self.cursor = 0

    def next_index(self) -> int:
        index = self.cursor
        self.cursor += 1
        return index


async def _client(
    session: aiohttp.ClientSession, path: str, bodies: Sequence[bytes], window: _Window, result: LoadResult
) -> None:
    while time.perf_counter() < window.end:
        body = bodies[window.next_index() % len(bodies)]
        error: str | None = None
        started = time.perf_counter()
        try:
            async with session.post(path, data=body, headers=JSON_HEADERS) as response:
                payload = await response.read()
                if response.status != 200:
                    error = f"HTTP {response.status}: {payload[:160].decode(errors='replace')}"
        except Exception as e:  # connection reset, timeout, refused: an error of the server under test
            error = f"{type(e).__name__}: {str(e)[:160]}"
        finished = time.perf_counter()
        if window.start <= finished <= window.end:
            if error is None:
                result.latencies_ms.append((finished - started) * 1000)
            else:
                result.errors += 1
                if len(result.error_kinds) < ERROR_SAMPLES or error in result.error_kinds:
                    result.error_kinds[error] += 1
        if error is not None and not error.startswith("HTTP"):
            await asyncio.sleep(BACKOFF_AFTER_EXCEPTION_S)


async def closed_loop(
    base_url: str, path: str, bodies: Sequence[bytes], clients: int, seconds: float, warmup: float
) -> LoadResult:
    """Run `clients` concurrent closed-loop clients for `warmup` + `seconds`; measure the last `seconds`."""
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        window = _Window(warmup, seconds)
        result = LoadResult(window_s=seconds)
        await asyncio.gather(*(_client(session, path, bodies, window, result) for _ in range(clients)))
    return result


def run_load(
    base_url: str, path: str, bodies: Sequence[bytes], clients: int, seconds: float, warmup: float
) -> LoadResult:
    """Blocking wrapper: one fresh event loop (and so fresh connections) per scenario."""
    return asyncio.run(closed_loop(base_url, path, bodies, clients, seconds, warmup))
