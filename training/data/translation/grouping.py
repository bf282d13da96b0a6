"""Groups of translation pairs that must share a split, and a domain-stratified split of whole groups.

Exact de-duplication is not enough to keep test scores honest:
- parallel Bible passages (Kings / Chronicles, the Gospels, Ezra 2 / Nehemiah 7) differ by a word or two;
- game catalogs hold near-identical strings ("You feel a little better." / "You feel much better.");
- a second translation of the same English (Cataclysm's es_AR beside es_ES) is a different Spanish sentence with the
  very same target.
A model that saw one member in training and is tested on another is rewarded for memorising. So pairs are joined
into groups (union-find) when their normalised Spanish is near-identical (training/data/grouping.py: MinHash LSH over
character 5-grams, estimated Jaccard >= `threshold`, then checked exactly) or their normalised English is identical,
and the split assigns whole groups.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from training.data.grouping import SHINGLE, UnionFind, join_near_duplicates, key_shingles
from training.data.translation.pairs import TranslationPair, dedupe_key


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    """Character `size`-grams of a Spanish text's normalised key."""
    return key_shingles(dedupe_key(text), size)


def group_pairs(pairs: Sequence[TranslationPair], threshold: float = 0.7) -> tuple[list[int], Counter[str]]:
    """Group id of each pair (the index of its group's first pair), and how many joins each rule made."""
    uf = UnionFind(len(pairs))
    joins: Counter[str] = Counter()
    by_target: dict[str, int] = {}
    for i, pair in enumerate(pairs):
        key = dedupe_key(pair.target)
        if key in by_target:
            joins["same_target"] += uf.union(by_target[key], i)
        else:
            by_target[key] = i
    if threshold < 1.0:
        joins["near_duplicate_source"] += join_near_duplicates(uf, [dedupe_key(p.source) for p in pairs], threshold)
    return [uf.find(i) for i in range(len(pairs))], joins


def split_groups(
    pairs: Sequence[TranslationPair],
    groups: Sequence[int],
    validation_size: int,
    test_size: int,
    seed: int,
    train_only: frozenset[str] = frozenset(),
    max_heldout_group: int = 20,
) -> tuple[dict[str, list[TranslationPair]], Counter[str]]:
    """Per domain, about `validation_size` and `test_size` pairs of whole groups; the rest is training data.

    A group belongs to the domain of its first pair. Groups larger than `max_heldout_group` always train (a big
    cluster of templated strings would make a test set of one kind of sentence). Pairs of `train_only` domains in a
    held-out group are dropped (counted), not scored: they are second sources of a pair scored there already.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_domain: dict[str, list[int]] = defaultdict(list)
    for g in sorted(members):
        if len(members[g]) <= max_heldout_group and pairs[g].domain not in train_only:
            by_domain[pairs[g].domain].append(g)
    rng = random.Random(f"split:{seed}")
    assigned: dict[int, str] = {}
    for domain in sorted(by_domain):
        candidates = by_domain[domain]
        rng.shuffle(candidates)
        for split, size in (("test", test_size), ("validation", validation_size)):
            taken = 0
            while candidates and taken < size:
                g = candidates.pop()
                assigned[g] = split
                taken += sum(1 for i in members[g] if pairs[i].domain not in train_only)
    splits: dict[str, list[TranslationPair]] = {"train": [], "validation": [], "test": []}
    dropped: Counter[str] = Counter()
    for i, pair in enumerate(pairs):
        split = assigned.get(groups[i], "train")
        if split != "train" and pair.domain in train_only:
            dropped["train_only_domain_in_heldout_group"] += 1
            continue
        splits[split].append(pair)
    return splits, dropped


def group_stats(groups: Sequence[int]) -> dict[str, int]:
    sizes = Counter(Counter(groups).values())
    return {
        "groups": sum(sizes.values()),
        "pairs_in_groups_of_2_or_more": sum(size * n for size, n in sizes.items() if size > 1),
        "largest_group": max(sizes) if sizes else 0,
    }


def domain_counts(split: Sequence[TranslationPair]) -> Mapping[str, int]:
    return dict(sorted(Counter(p.domain for p in split).items()))
