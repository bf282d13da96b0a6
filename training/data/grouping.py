"""Near-duplicate groups, shared by both tasks: items joined (union-find) when their normalised keys are
near-identical, so that a split can assign whole groups. Candidates come from MinHash LSH over character 5-grams;
the exact Jaccard (>= `threshold`) decides. translation/grouping.py groups sentence pairs with it (parallel Bible
passages, near-identical game strings), sentiment/dedupe.py groups texts (retweets, cut-off copies).

The signatures and the bands are datasketch's (MinHash with its default affine32 scheme, MinHashLSH's band layout for
the threshold and weights), computed for all items at once: each distinct shingle is hashed once, the permutations
run in numpy, and the items that share a band are found by sorting rather than by querying an index one item at a
time. Same candidates, same groups (tests/training/data/test_grouping.py checks both against datasketch's own
objects). The candidate pairs of the 153,903 prepared translation pairs take 4 s instead of 26-29 s
(`python -m tests.benchmarks.bench_grouping`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import combinations

import numpy as np
from datasketch import MinHash, MinHashLSH
from datasketch.minhash import _fmix  # the scheme's pre-mix; pinned datasketch, checked against MinHash in the tests

SHINGLE = 5  # characters: short enough for 3-word lines, long enough that unrelated sentences rarely share many
NUM_PERM = 64
# LSH weighted towards recall (12 bands of 5 rows: a pair at Jaccard 0.7 is proposed 89% of the time, at 0.8 99%;
# datasketch's default weights give 38% and 77%): a missed pair leaks, a false candidate only costs the exact check.
RECALL_WEIGHTS = (0.1, 0.9)


class UnionFind:
    """Disjoint sets over 0..n-1: which items must end up in the same split."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def key_shingles(key: str, size: int = SHINGLE) -> set[str]:
    """Character `size`-grams of an already normalised key, padded with a space so short words count."""
    key = f" {key} "
    return {key[i : i + size] for i in range(max(1, len(key) - size + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def minhash_signatures(shingle_sets: Sequence[Collection[str]], num_perm: int = NUM_PERM, seed: int = 1) -> np.ndarray:
    """[len(shingle_sets), num_perm] uint32: each set's MinHash signature, equal to datasketch's
    `MinHash(num_perm=num_perm, seed=seed)` updated with the set's UTF-8 encoded shingles. Every set must be non-empty
    (`key_shingles` never returns an empty one)."""
    sizes = np.fromiter((len(shingles) for shingles in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    if (sizes == 0).any():
        raise ValueError("an empty shingle set has no MinHash signature")
    if not len(sizes):
        return np.empty((0, num_perm), dtype=np.uint32)
    reference = MinHash(num_perm=num_perm, seed=seed)
    a, b = reference.permutations
    distinct: dict[str, int] = {}
    flat = np.fromiter(
        (distinct.setdefault(g, len(distinct)) for shingles in shingle_sets for g in shingles), dtype=np.int64
    )
    hashes = np.fromiter((reference.hashfunc(g.encode()) for g in distinct), dtype=np.uint32, count=len(distinct))
    mixed = _fmix(hashes, 32)[flat]  # every shingle of every set, in order, hashed once per distinct shingle
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    signatures = np.empty((num_perm, len(shingle_sets)), dtype=np.uint32)
    for k in range(num_perm):  # one permutation at a time over all sets: flat arrays, wrapping as uint32 does
        signatures[k] = np.minimum.reduceat(mixed * a[k] + b[k], starts)
    return signatures.T


def candidate_pairs(signatures: np.ndarray, threshold: float, weights: tuple[float, float]) -> set[tuple[int, int]]:
    """Every pair (j, i), j < i, whose signatures agree on at least one band of the LSH index datasketch builds for
    `threshold` and `weights`: the pairs its query-then-insert loop proposes, each once."""
    index = MinHashLSH(threshold=threshold, num_perm=signatures.shape[1], weights=weights)
    pairs: set[tuple[int, int]] = set()
    for band in range(index.b):
        rows = np.ascontiguousarray(signatures[:, band * index.r : (band + 1) * index.r])
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * index.r))).ravel()
        order = np.argsort(keys, kind="stable")
        same = keys[order][1:] == keys[order][:-1]  # neighbours in sorted order that share this band
        run = np.concatenate([[0], np.cumsum(~same)])  # the bucket of each sorted item
        shared = np.isin(run, run[1:][same])  # only buckets of two or more items can propose a pair
        for bucket in np.split(order[shared], np.flatnonzero(np.diff(run[shared])) + 1):
            pairs.update(combinations(sorted(bucket.tolist()), 2))
    return pairs


def indexed_candidate_pairs(
    shingle_sets: Sequence[Collection[str]], threshold: float, weights: tuple[float, float]
) -> set[tuple[int, int]]:
    """`candidate_pairs` of the sets' signatures, the slow way: datasketch's MinHash per set and its LSH index queried,
    then inserted into, one item at a time (how this module worked until the vectorised path replaced it). The
    reference the fast path is checked against by the tests and `bench_grouping`."""
    hashes = MinHash.bulk([[g.encode() for g in shingles] for shingles in shingle_sets], num_perm=NUM_PERM, seed=1)
    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=weights)
    pairs: set[tuple[int, int]] = set()
    for i, signature in enumerate(hashes):
        pairs.update((j, i) for j in index.query(signature))
        index.insert(i, signature)
    return pairs


def join_near_duplicates(uf: UnionFind, keys: Sequence[str], threshold: float) -> int:
    """Union every two items whose keys' character-shingle Jaccard is >= `threshold`; returns how many joins
    merged two groups (the same whatever order the pairs come in: the groups are the graph's components). Shared by
    the translation pairs (Spanish side) and the sentiment texts."""
    grams = [key_shingles(k) for k in keys]
    if not grams:
        return 0
    joins = 0
    for j, i in candidate_pairs(minhash_signatures(grams), threshold, RECALL_WEIGHTS):
        if jaccard(grams[i], grams[j]) >= threshold:  # LSH proposes; the exact Jaccard decides
            joins += uf.union(j, i)
    return joins
