"""Length bucketing: batches of similar length, every example once per epoch, and the padding it saves."""

from __future__ import annotations

import random

import pytest

from training.data.batching import BucketBatchSampler, FinishingBatchSampler, padding_share
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


def test_the_last_steps_of_a_run_come_from_the_subset_only() -> None:
    lengths = [i % 7 + 1 for i in range(100)]
    subset = [i for i in range(100) if i % 3 == 0]  # 34 items: 4 batches of up to 10
    sampler = FinishingBatchSampler(
        BucketBatchSampler(lengths, 10, shuffle=True, seed=1),
        BucketBatchSampler([lengths[i] for i in subset], 10, shuffle=True, seed=2),
        subset,
        total_steps=25,
        finish_steps=12,
    )
    epochs = [list(sampler) for _ in range(3)]
    steps = [batch for epoch in epochs for batch in epoch]
    assert [len(epoch) for epoch in epochs] == [10, 10, 10], "an epoch keeps the main sampler's length"
    in_subset = [all(i % 3 == 0 for i in batch) for batch in steps]
    assert not any(in_subset[:13]) and all(in_subset[13:]), "steps 13.. (the last 12 of 25) read the subset"
    # the subset's batches are its own epochs, one after the other, mapped back to item indices
    first_pass = sorted(i for batch in steps[13:17] for i in batch)
    assert first_pass == subset
    assert sorted(i for batch in epochs[0] for i in batch) == list(range(100)), "before the switch: main as is"


def test_a_finish_longer_than_the_run_or_over_no_items_is_refused() -> None:
    main = BucketBatchSampler([1, 2, 3], 2, shuffle=True)
    with pytest.raises(ValueError, match=r"finish_steps must be in 1\.\.total_steps"):
        FinishingBatchSampler(main, BucketBatchSampler([1], 2, shuffle=True), [0], total_steps=5, finish_steps=6)
    with pytest.raises(ValueError, match="non-empty subset"):
        FinishingBatchSampler(main, BucketBatchSampler([], 2, shuffle=True), [], total_steps=5, finish_steps=2)
