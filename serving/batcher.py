"""In-process micro-batching: concurrent requests share one model call, and a lone request never waits.

Requests queue their items; the model takes *everything queued* (up to `max_batch_size` items) as soon as it is
free, and each request gets its slice. So batches form exactly when requests arrive faster than the model
answers, and a request that finds the model idle runs at once. There is no timer and nothing learned to go stale.

Two ways to run the model, chosen per task:
- `inline=True` (short calls, e.g. sentiment): in the event loop itself. The first request to find the model idle
  leads: it yields to the loop while other requests keep joining (each yield lets every request already read
  reach the queue), then runs the whole queue. With one worker process per core, a model thread buys no
  parallelism, and each hand-off to it and back costs a thread wake-up: measured on 2 vCPUs, ~1 ms per
  single-text request (p50 3.1 ms -> 2.1 ms inline), more than the model itself.
- `inline=False` (long calls, e.g. beam-search decoding): on the model's own thread, so the event loop keeps
  answering other requests and probes while a batch decodes for tens of milliseconds.

Back-pressure (why: traffic that arrives faster than the model answers would otherwise queue without end, and
every accepted request would wait for the whole backlog; measured before this: 4x the rate two workers serve,
all accepted, the last answered after 52 s). The queue is bounded twice, and a request past either bound is
refused at once with `Overloaded` (the service answers 503 + Retry-After):
- by size: at most `QueueLimits.max_queued` items waiting (a memory bound);
- by time: a new job is refused when the work queued ahead of it would take the model longer than
  `QueueLimits.max_wait_s` (queued items times the measured seconds per item, a moving average of recent
  batches), or when the oldest waiting job has already waited that long (the model is stuck or slower than
  measured). A time bound adapts to the model and the work (a beam-8 text costs ~8 greedy ones), which a count
  cannot; an accepted request waits about max_wait_s at most, plus the batch running when it came. One job may
  always wait behind the running batch, so work of any size gets in when the queue is empty.
  (Why not the oldest job's age alone: it lets in everything that arrives while the first job ages, which at
  high rates is many times max_wait_s of work; measured, accepted p99 then grew to 5 s at a 0.3 s bound.)
Work nobody waits for any more is dropped before it reaches the model: a job whose future is done (its request
was answered 504 by the timeout, or its client disconnected: serving/http_guard.py cancels it) or whose deadline
passed (the caller gets `DeadlineExceeded`).

Explanations go through the same queue as `solo` jobs: run alone, in arrival order, on the same thread (so they
neither bypass the limits nor compete with batches for the cores on another thread pool).

Why not BentoML's adaptive batching (CorkDispatcher in bentoml 1.4.40): besides costing a process hop when the
batched endpoint lives in a separate service, it holds a request while `n * (its queue age) <= 0.95 * wait`,
where `wait` is the *mean queue wait of the last 50 batches*. Under a burst, requests queue behind each other,
so that mean grows to the queueing delay (about 190 ms on 2 cores at 32 clients); afterwards a lone request is
held for about that long, its own hold is logged as the next sample, and idle time never refreshes the
statistics. That is the 11 ms -> 180-200 ms single-client latency after one burst measured on the old layout.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

In = TypeVar("In")
MAX_GATHER_YIELDS = 8  # an inline leader waits at most this many loop turns for company
Out = TypeVar("Out")
R = TypeVar("R")

QUEUED_BATCHES = 8  # default queue size in batches: with the age bound below, size binds only for cheap items
DEFAULT_MAX_WAIT_S = 1.0  # sized for 2 cores: a 64-sentence beam-8 request on the default model takes ~0.7 s
COST_SMOOTHING = 0.3  # weight of the newest batch in the moving average of seconds per item


def _env_number(name: str, default: float, minimum: float) -> float:
    """A setting from the environment; a bad value stops the service with the variable named."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: must be a number") from None
    if not value >= minimum:  # also refuses nan
        raise ValueError(f"{name}={raw!r}: must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class QueueLimits:
    """How much work one batcher (one task, one worker) accepts before it refuses new work."""

    max_queued: int  # items waiting (not counting the batch being computed)
    max_wait_s: float  # refuse new work that would wait longer than this (estimated), or while the oldest has

    @classmethod
    def from_env(cls, max_batch_size: int) -> QueueLimits:
        """MEMORIA_MAX_QUEUED_TEXTS (default 8 batches' worth of texts per task and worker) and
        MEMORIA_MAX_QUEUE_WAIT_S (default 1 s)."""
        queued = _env_number("MEMORIA_MAX_QUEUED_TEXTS", QUEUED_BATCHES * max_batch_size, 1)
        return cls(int(queued), _env_number("MEMORIA_MAX_QUEUE_WAIT_S", DEFAULT_MAX_WAIT_S, 0.001))

    @property
    def retry_after_s(self) -> int:
        """What a refused client is told to wait (whole seconds, as HTTP's Retry-After wants): about one queue
        wait, by when the backlog it met has been worked off or refused."""
        return max(1, math.ceil(self.max_wait_s))


class Overloaded(Exception):
    """Refused at the door: the queue is full or not draining. `limit` names the setting that refused it."""

    def __init__(self, limit: str, retry_after_s: int) -> None:
        super().__init__(f"overloaded: {limit}")
        self.limit = limit
        self.retry_after_s = retry_after_s


class DeadlineExceeded(Exception):
    """The job's deadline passed while it waited: it was dropped without running."""


@dataclass
class _Job(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop = field(repr=False)
    weight: int
    deadline: float  # time.monotonic(); math.inf: none
    enqueued: float
    run: Callable[[], Any] | None = None  # a solo job's own work, run alone instead of merged


class MicroBatcher(Generic[In, Out]):
    """Run `fn(items) -> outputs` (one output per item, in order) on merged items of concurrent calls.

    `fn` runs one batch at a time: on a dedicated thread (the event loop keeps reading requests meanwhile;
    onnxruntime releases the GIL), or with `inline=True` in the event loop of the caller (then all callers must
    share one loop). A failing batch fails only the requests in it. `close()` lets queued work finish.
    `limits` default to the environment's (QueueLimits.from_env).
    """

    def __init__(
        self,
        fn: Callable[[list[In]], list[Out]],
        max_batch_size: int = 64,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
        inline: bool = False,
        limits: QueueLimits | None = None,
    ) -> None:
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.on_batch = on_batch
        self.on_drop: Callable[[str], None] | None = None  # called with "gone" or "deadline" per dropped job
        self.inline = inline
        self.limits = limits if limits is not None else QueueLimits.from_env(max_batch_size)
        self.dropped = 0  # jobs dropped before the model (gone or past their deadline)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self._pending: deque[_Job[In, Out]] = deque()
        self._queued = 0  # total weight of _pending
        self._running_weight = 0  # weight of the batch the model is computing now
        self._batch_started = 0.0  # time.monotonic() when it started
        self._seconds_per_item = 0.0  # moving average over recent batches; 0 until the first one
        self._lock = threading.Lock()  # jobs may come from several loops in tests; cheap when uncontended
        self._running = False

    async def __call__(self, items: Sequence[In], deadline: float = math.inf) -> list[Out]:
        """The outputs for `items`. Raises Overloaded at once when the queue is past its limits, and
        DeadlineExceeded if `deadline` (time.monotonic()) passes before the items reach the model."""
        return await self._submit(items, len(items), deadline, None)

    async def solo(self, run: Callable[[], R], weight: int, deadline: float = math.inf) -> R:
        """`run()` on the model's thread (or inline), alone, in queue order, under the same limits; `weight`
        counts it against max_queued like that many items."""
        return await self._submit((), weight, deadline, run)

    async def _submit(self, items: Sequence[In], weight: int, deadline: float, run: Callable[[], Any] | None) -> Any:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        job: _Job[In, Out] = _Job(items, loop.create_future(), loop, weight, deadline, now, run)
        with self._lock:
            self._admit(weight, now)
            self._pending.append(job)
            self._queued += weight
            start = not self._running
            self._running = True
        if start and self.inline:
            await self._lead()
        elif start:
            self._executor.submit(self._drain)
        return await job.future

    def _admit(self, weight: int, now: float) -> None:
        """Raises Overloaded if a job of `weight` does not fit (called under the lock)."""
        limits = self.limits
        if self._queued:
            # The batch running now bounds the cost from below: it has taken `elapsed` already (before the first
            # measurement, this is the only estimate; when the model slows down, the average lags behind it).
            elapsed = now - self._batch_started if self._running_weight else 0.0
            per_item = max(self._seconds_per_item, elapsed / max(self._running_weight, 1))
            ahead_s = (self._queued + self._running_weight) * per_item
            if ahead_s > limits.max_wait_s or now - self._pending[0].enqueued > limits.max_wait_s:
                raise Overloaded(
                    f"queue wait over MEMORIA_MAX_QUEUE_WAIT_S={limits.max_wait_s:g}", limits.retry_after_s
                )
        # A job larger than the whole queue still runs when the queue is empty (no request is refused forever).
        if self._queued and self._queued + weight > limits.max_queued:
            raise Overloaded(f"queue full (MEMORIA_MAX_QUEUED_TEXTS={limits.max_queued})", limits.retry_after_s)

    async def _lead(self) -> None:
        """Inline mode: gather company while it keeps coming, then run the queue in this event loop."""
        cancelled: asyncio.CancelledError | None = None
        try:
            seen = 0
            for _ in range(MAX_GATHER_YIELDS):
                if len(self._pending) == seen:
                    break
                seen = len(self._pending)
                await asyncio.sleep(0)
        except asyncio.CancelledError as e:  # this request gave up; the ones that joined it still wait
            cancelled = e
        self._drain()
        if cancelled is not None:
            raise cancelled

    def _take(self) -> list[_Job[In, Out]]:
        """The next batch: whole jobs in arrival order, up to max_batch_size items (at least one job), or one solo
        job alone. Jobs nobody waits for any more are dropped here, before the model sees them."""
        now = time.monotonic()
        with self._lock:
            taken: list[_Job[In, Out]] = []
            size = 0
            while self._pending:
                job = self._pending[0]
                if job.future.done() or job.deadline <= now:
                    self._pending.popleft()
                    self._queued -= job.weight
                    self._drop(job, "gone" if job.future.done() else "deadline")
                    continue
                if taken and (job.run is not None or taken[0].run is not None):
                    break  # a solo job runs alone
                if taken and size + len(job.items) > self.max_batch_size:
                    break
                self._pending.popleft()
                self._queued -= job.weight
                taken.append(job)
                size += len(job.items)
            if not taken:
                self._running = False
            self._running_weight = sum(job.weight for job in taken)
            self._batch_started = now
            return taken

    def _drop(self, job: _Job[In, Out], reason: str) -> None:
        self.dropped += 1
        if reason == "deadline":
            self._hand_over(job, None, DeadlineExceeded("deadline passed while queued: not computed"))
        if self.on_drop is not None:
            self.on_drop(reason)

    def _drain(self) -> None:
        """Runs batches until the queue is empty (on the model thread, or in the leader's event loop)."""
        while jobs := self._take():
            started = time.perf_counter()
            if jobs[0].run is not None:
                self._run_solo(jobs[0])
            else:
                self._run_batch(jobs)
            self._measured(time.perf_counter() - started, sum(job.weight for job in jobs))

    def _measured(self, seconds: float, weight: int) -> None:
        per_item = seconds / max(weight, 1)
        previous = self._seconds_per_item
        self._seconds_per_item = per_item if previous == 0 else previous + COST_SMOOTHING * (per_item - previous)

    def _run_batch(self, jobs: list[_Job[In, Out]]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            outputs = self.fn(items)
            if len(outputs) != len(items):
                raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(items)} items")
            error = None
        except Exception as e:  # handed to every caller of this batch
            outputs, error = [], e
        if self.on_batch is not None:
            self.on_batch(len(items))
        start = 0
        for job in jobs:
            n = len(job.items)
            self._hand_over(job, outputs[start : start + n], error)
            start += n

    def _run_solo(self, job: _Job[In, Out]) -> None:
        assert job.run is not None
        try:
            result, error = job.run(), None
        except Exception as e:
            result, error = None, e
        self._hand_over(job, result, error)

    def _hand_over(self, job: _Job[In, Out], result: Any, error: Exception | None) -> None:
        if self.inline:
            _settle(job.future, result, error)
        else:
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _settle(future: asyncio.Future, result: Any, error: Exception | None) -> None:
    if future.done():  # the caller gave up (timeout, disconnect)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
