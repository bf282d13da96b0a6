"""In-process micro-batching: merged calls, order, limits, failures, and no waiting for company."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.batcher import MicroBatcher


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
    batcher = MicroBatcher(fn, max_batch_size=128, on_batch=sizes.append)

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
