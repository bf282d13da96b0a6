"""Batches of token-id sequences, grouped by length so that little compute goes to padding."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from serving.text import pad_batch


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
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0, pool_batches: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

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
        return iter(batches)

    def __len__(self) -> int:
        return sum(
            -(-min(self.pool, len(self.lengths) - s) // self.batch_size) for s in range(0, len(self.lengths), self.pool)
        )


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
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(ListDataset(items), batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
