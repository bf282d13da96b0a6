"""Batches of token-id sequences, grouped by length so that little compute goes to padding."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from serving.contract.text import pad_batch


class ListDataset(Dataset):
    def __init__(self, items: Sequence) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffle, cut into pools of `pool_batches` batches, sort each pool by length, batch, shuffle batches.

    Batches hold texts of similar length (less padding: the peephole LSTM runs a Python step per time step),
    while each epoch still sees a different order. Without `shuffle` it yields length-sorted batches.

    In a multi-process (DDP) run every process builds the same batches (same seed, same epoch) and keeps every
    `num_replicas`-th one from its `rank` on, so the processes see disjoint batches. Each gets the same number of
    them, the last few repeated from the start where the count does not divide: a process with fewer batches would
    leave the others waiting in the gradient all-reduce for ever. `num_replicas` and `rank` default to those of
    the process group when one is initialised, looked up at each epoch rather than here: the loaders are built
    before the Trainer starts the group. (Lightning cannot shard a custom batch sampler itself: the Trainer runs
    with `use_distributed_sampler=False`.)
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if (num_replicas is None) != (rank is None) or (num_replicas is not None and not 0 <= rank < num_replicas):
            raise ValueError(f"give num_replicas and 0 <= rank < num_replicas, or neither: {num_replicas}, {rank}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        else:
            order.sort(key=self.lengths.__getitem__)
        batches = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=self.lengths.__getitem__)
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        replicas, rank = self._replicas()
        if replicas > 1 and batches:
            batches += [batches[i % len(batches)] for i in range(-len(batches) % replicas)]
            batches = batches[rank::replicas]
        return iter(batches)

    def __len__(self) -> int:
        replicas, _ = self._replicas()
        return -(-self._unsharded_len() // replicas)

    def _unsharded_len(self) -> int:
        return sum(
            -(-min(self.pool, len(self.lengths) - s) // self.batch_size) for s in range(0, len(self.lengths), self.pool)
        )

    def _replicas(self) -> tuple[int, int]:
        """(processes the batches are shared among, this process's rank)."""
        if self.num_replicas is not None:
            return self.num_replicas, self.rank
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0


class FinishingBatchSampler(Sampler[list[int]]):
    """`main`'s batches, except that the run's last `finish_steps` batches come from `finish`, a sampler over a
    subset of the same items (`subset[i]` is the item index of its i-th item): a run that ends on its best data,
    e.g. translation's human-translated pairs after a mix with back-translated ones.

    Batch k of epoch e is the run's step e * len(main) + k (one optimiser step per batch, as memoria trains), so the
    switch falls at step `total_steps - finish_steps` wherever the epochs divide it. An epoch keeps `main`'s length;
    `finish` is drawn epoch after epoch for as long as the finish lasts. Each process of a multi-process run counts
    its own batches, which are the run's steps, so all switch at once."""

    def __init__(
        self,
        main: BucketBatchSampler,
        finish: BucketBatchSampler,
        subset: Sequence[int],
        total_steps: int,
        finish_steps: int,
    ) -> None:
        if not 0 < finish_steps <= total_steps:
            raise ValueError(f"finish_steps must be in 1..total_steps ({total_steps}), got {finish_steps}")
        if len(finish.lengths) != len(subset) or not subset:
            raise ValueError("finish must be a sampler over the items of a non-empty subset")
        self.main = main
        self.finish = finish
        self.subset = list(subset)
        self.switch_step = total_steps - finish_steps
        self.epoch = 0
        self._finishing: Iterator[list[int]] | None = None

    def _finish_batches(self) -> Iterator[list[int]]:
        while True:
            for batch in self.finish:
                yield [self.subset[i] for i in batch]

    def __iter__(self) -> Iterator[list[int]]:
        first_step = self.epoch * len(self.main)
        self.epoch += 1
        for k, batch in enumerate(self.main):
            if first_step + k < self.switch_step:
                yield batch
                continue
            if self._finishing is None:
                self._finishing = self._finish_batches()
            yield next(self._finishing)

    def __len__(self) -> int:
        return len(self.main)


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded [batch, longest] grid that is padding, over `batches` of indices into `lengths`: what
    length bucketing saves (a step still computes padded positions)."""
    grid = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    real = sum(lengths[i] for b in batches for i in b)
    return 1.0 - real / max(1, grid)


def pad_tensor(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    ids, lengths = pad_batch(sequences)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def collate_classification(batch: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, lengths = pad_tensor([ids for ids, _ in batch])
    return ids, lengths, torch.tensor([label for _, label in batch], dtype=torch.long)


def bucketed_loader(
    items: Sequence, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int, collate, num_workers: int = 0
) -> DataLoader:
    return batch_loader(
        items, BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed), collate, num_workers
    )


def batch_loader(items: Sequence, sampler: Sampler[list[int]], collate, num_workers: int = 0) -> DataLoader:
    """`items` in the batches `sampler` yields (lists of indices), each made a tensor batch by `collate`."""
    return DataLoader(ListDataset(items), batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
