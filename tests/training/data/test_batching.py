"""Length bucketing: batches of similar length, every example once per epoch, and the padding it saves."""

from __future__ import annotations

import random

from training.data.batching import BucketBatchSampler, padding_share
from training.train.modules.base import lr_factor


def test_bucketed_batches_cover_every_example_once_and_pad_less() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 40) for _ in range(1000)]
    batches = list(BucketBatchSampler(lengths, 32, shuffle=True, seed=1))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    order = list(range(1000))
    rng.shuffle(order)
    unbucketed = [order[i : i + 32] for i in range(0, 1000, 32)]
    assert padding_share(lengths, batches) < 0.1 < 0.3 < padding_share(lengths, unbucketed)
    assert padding_share([3, 3, 3], [[0, 1, 2]]) == 0.0
    assert padding_share([1, 3], [[0, 1]]) == 1 - 4 / 6


def test_learning_rate_schedule_ends_low_when_the_time_cap_comes_first() -> None:
    # warm-up, then cosine to 10%; progress is the larger of steps done and time used
    assert lr_factor(0, 1000, 10) == 0.1
    assert lr_factor(10, 1000, 10) == 1.0
    assert abs(lr_factor(1000, 1000, 10) - 0.1) < 1e-9
    # a run planned for 1000 steps whose time cap is 90% used after 300 steps is near the floor already
    assert lr_factor(300, 1000, 10, elapsed_fraction=0.9) < 0.15 < lr_factor(300, 1000, 10)
    assert lr_factor(300, 1000, 10, elapsed_fraction=1.5) == lr_factor(1000, 1000, 10)
