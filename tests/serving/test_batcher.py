"""In-process micro-batching: merged calls, order, limits, failures, no waiting for company, and back-pressure
(bounded queue, refusals at once, work nobody waits for dropped before the model, explanations queued alone)."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from serving.batcher import DeadlineExceeded, MicroBatcher, Overloaded, QueueLimits

# Limits that never refuse in these tests. The wait estimate counts the running batch's elapsed time per item, so a
# burst submitted while the first lone item runs reads a stall of the machine as a slow model: with 60 s, a 0.2-s stall
# (a busy 2-core CI machine) refused the 300-request burst of the lone-request test.
ROOMY = QueueLimits(max_queued=100_000, max_wait_s=3600)


class SlowDouble:
    """A batch function that takes `delay` per call (like a model) and records the batches it saw."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return [2 * i for i in items]


def test_concurrent_calls_share_model_calls_and_each_gets_its_own_answers() -> None:
    fn = SlowDouble(delay=0.02)
    batcher = MicroBatcher(fn, max_batch_size=64, name="t")

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(batcher([i, 100 + i]) for i in range(20)))

    answers = asyncio.run(main())
    assert answers == [[2 * i, 2 * (100 + i)] for i in range(20)]
    # The first call runs alone (the model was idle); the other 19 queue behind it and run together.
    assert len(fn.batches) < 20 and max(len(b) for b in fn.batches) > 2
    assert sorted(x for b in fn.batches for x in b) == sorted([i for i in range(20)] + [100 + i for i in range(20)])
    assert fn.threads == {"batch-t_0"}  # always the model's own thread, never the event loop
    batcher.close()


def test_batches_never_exceed_the_limit_and_keep_requests_whole() -> None:
    fn = SlowDouble(delay=0.01)
    batcher = MicroBatcher(fn, max_batch_size=5)

    async def main() -> list[list[int]]:
        sizes = [3, 3, 1, 7, 2, 2]  # a request larger than the limit runs alone, whole
        return await asyncio.gather(*(batcher(list(range(n))) for n in sizes))

    answers = asyncio.run(main())
    assert [len(a) for a in answers] == [3, 3, 1, 7, 2, 2]
    assert all(len(b) <= 5 or len(b) == 7 for b in fn.batches)
    assert [len(b) for b in fn.batches if len(b) > 5] == [7]
    batcher.close()


def test_a_failing_batch_fails_only_its_own_callers() -> None:
    def fn(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return items

    batcher = MicroBatcher(fn)

    async def main() -> None:
        with pytest.raises(ValueError, match="bad item"):
            await batcher([-1])
        assert await batcher([1, 2]) == [1, 2]  # the batcher keeps working

    asyncio.run(main())
    batcher.close()


def test_a_wrong_number_of_outputs_is_an_error_not_a_mixup() -> None:
    batcher = MicroBatcher(lambda items: items[:-1])

    async def main() -> None:
        with pytest.raises(RuntimeError, match="returned 1 outputs for 2 items"):
            await batcher([1, 2])

    asyncio.run(main())
    batcher.close()


def test_a_lone_request_after_a_burst_does_not_wait_for_company() -> None:
    """The old layout's batcher held a lone request ~190 ms after a burst; here it runs as soon as it comes."""
    fn = SlowDouble(delay=0.005)
    sizes: list[int] = []
    batcher = MicroBatcher(fn, max_batch_size=128, on_batch=sizes.append, limits=ROOMY)

    async def main() -> list[float]:
        await asyncio.gather(*(batcher([i]) for i in range(300)))  # the burst
        lone = []
        for i in range(10):
            start = time.perf_counter()
            await batcher([i])
            lone.append(time.perf_counter() - start)
        return lone

    lone = asyncio.run(main())
    assert max(sizes) > 1, "the burst should have been batched"
    assert sorted(lone)[5] < 0.005 + 0.02, f"lone requests waited: {lone}"
    assert sizes[-10:] == [1] * 10
    batcher.close()


class Gate:
    """A batch function that blocks until released, so a test can fill the queue behind a running batch."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.started.set()
        assert self.release.wait(10)
        return items


async def _wait_started(gate: Gate) -> None:
    while not gate.started.is_set():
        await asyncio.sleep(0.001)


def test_a_full_queue_refuses_at_once_and_keeps_what_it_accepted() -> None:
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch_size=4, limits=QueueLimits(max_queued=6, max_wait_s=60))

    async def main() -> None:
        running = asyncio.ensure_future(batcher([0]))  # taken by the model at once
        await _wait_started(gate)
        waiting = [asyncio.ensure_future(batcher([i, i])) for i in (1, 2, 3)]  # 6 items: the queue is full
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="MEMORIA_MAX_QUEUED_TEXTS=6") as refused:
            await batcher([9])
        assert time.perf_counter() - started < 0.05 and refused.value.retry_after_s >= 1
        gate.release.set()
        assert await running == [0]
        assert await asyncio.gather(*waiting) == [[1, 1], [2, 2], [3, 3]]

    asyncio.run(main())
    assert [9] not in gate.batches
    batcher.close()


def test_work_that_would_wait_longer_than_the_bound_is_refused() -> None:
    """Measured cost: ~20 ms per item (batches of 1). With a 0.1 s bound, a few waiting items fill the wait."""
    fn = SlowDouble(delay=0.02)
    batcher = MicroBatcher(fn, max_batch_size=1, limits=QueueLimits(max_queued=1000, max_wait_s=0.1))

    async def main() -> list[object]:
        await batcher([0])  # measured once
        return await asyncio.gather(*(batcher([i]) for i in range(30)), return_exceptions=True)

    answers = asyncio.run(main())
    refused = [a for a in answers if isinstance(a, Overloaded)]
    accepted = [a for a in answers if isinstance(a, list)]
    assert refused and accepted and len(refused) + len(accepted) == 30
    assert all("MEMORIA_MAX_QUEUE_WAIT_S=0.1" in str(a) for a in refused)
    # The estimate keeps the accepted backlog near the bound: about 0.1 s / 20 ms items, not 30.
    assert len(accepted) <= 10, len(accepted)
    batcher.close()


def test_cancelled_and_late_work_is_dropped_before_the_model() -> None:
    gate = Gate()
    dropped: list[str] = []
    batcher = MicroBatcher(gate, max_batch_size=64, limits=ROOMY)
    batcher.on_drop = dropped.append

    async def main() -> None:
        running = asyncio.ensure_future(batcher([0]))
        await _wait_started(gate)
        abandoned = asyncio.ensure_future(batcher([1]))  # its client will go (timeout answered 504, disconnect)
        late = asyncio.ensure_future(batcher([2], deadline=time.monotonic() + 0.01))
        kept = asyncio.ensure_future(batcher([3], deadline=math.inf))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        gate.release.set()
        assert await running == [0]
        with pytest.raises(DeadlineExceeded):
            await late
        assert await kept == [3]

    asyncio.run(main())
    assert gate.batches == [[0], [3]], "the abandoned and the late item never reached the model"
    assert sorted(dropped) == ["deadline", "gone"] and batcher.dropped == 2
    batcher.close()


def test_solo_work_runs_alone_in_queue_order_on_the_model_thread() -> None:
    fn = SlowDouble(delay=0.01)
    batcher = MicroBatcher(fn, max_batch_size=64, name="m", limits=ROOMY)
    order: list[str] = []

    def explain() -> str:
        order.append(f"solo after {len(fn.batches)} batches on {threading.current_thread().name}")
        return "explained"

    async def main() -> list[object]:
        first = asyncio.ensure_future(batcher([1]))
        await asyncio.sleep(0.002)  # the first batch is running; the rest queue behind it
        return await asyncio.gather(first, batcher([2]), batcher.solo(explain, weight=5), batcher([3]))

    answers = asyncio.run(main())
    assert answers == [[2], [4], "explained", [6]]
    assert fn.batches == [[1], [2], [3]], "the solo job split the queue: nothing merged across it"
    assert order == ["solo after 2 batches on batch-m_0"]
    batcher.close()


def test_limits_come_from_the_environment_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMORIA_MAX_QUEUED_TEXTS", raising=False)
    monkeypatch.delenv("MEMORIA_MAX_QUEUE_WAIT_S", raising=False)
    assert QueueLimits.from_env(64) == QueueLimits(max_queued=8 * 64, max_wait_s=1.0)
    monkeypatch.setenv("MEMORIA_MAX_QUEUE_WAIT_S", "2.5")
    monkeypatch.setenv("MEMORIA_MAX_QUEUED_TEXTS", "100")
    assert QueueLimits.from_env(64) == QueueLimits(max_queued=100, max_wait_s=2.5)
    assert QueueLimits(10, 2.5).retry_after_s == 3
    monkeypatch.setenv("MEMORIA_MAX_QUEUE_WAIT_S", "soon")
    with pytest.raises(ValueError, match="MEMORIA_MAX_QUEUE_WAIT_S='soon': must be a number"):
        QueueLimits.from_env(64)
    monkeypatch.setenv("MEMORIA_MAX_QUEUE_WAIT_S", "0")
    with pytest.raises(ValueError, match="MEMORIA_MAX_QUEUE_WAIT_S='0': must be at least"):
        QueueLimits.from_env(64)
