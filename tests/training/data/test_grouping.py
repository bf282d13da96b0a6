"""Near-duplicate grouping (training/data/grouping.py): the vectorised MinHash signatures and LSH bands give exactly
what datasketch's own objects give, item by item, so splits do not change with the faster path."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from training.data.grouping import (
    RECALL_WEIGHTS,
    UnionFind,
    candidate_pairs,
    indexed_candidate_pairs,
    jaccard,
    join_near_duplicates,
    key_shingles,
    minhash_signatures,
)

WORDS = [
    "el",
    "la",
    "de",
    "que",
    "y",
    "en",
    "un",
    "ser",
    "se",
    "no",
    "haber",
    "por",
    "con",
    "su",
    "para",
    "como",
    "estar",
    "tener",
    "le",
    "lo",
    "todo",
    "pero",
    "más",
    "hacer",
    "o",
    "poder",
]


def near_duplicate_corpus(n: int, seed: int) -> list[str]:
    """Sentences of which about half are small edits (a word dropped, swapped or replaced) of an earlier one,
    with accents, ñ and emoji so that shingles are not all ASCII."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < 0.5:
            words = rng.choice(texts).split()
            i = rng.randrange(len(words))
            edit = rng.choice(("drop", "swap", "replace"))
            if edit == "drop" and len(words) > 2:
                del words[i]
            elif edit == "swap":
                j = rng.randrange(len(words))
                words[i], words[j] = words[j], words[i]
            else:
                words[i] = rng.choice(WORDS)
        else:
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
            words += rng.sample(["mañana", "está", "él", "🙂", "niño", "qué"], k=rng.randint(0, 2))
        texts.append(" ".join(words))
    return texts


@pytest.mark.parametrize(("num_perm", "seed"), [(64, 1), (16, 7)])
def test_signatures_equal_datasketchs_minhash_of_each_set(num_perm: int, seed: int) -> None:
    sets = [key_shingles(text) for text in near_duplicate_corpus(300, seed=3)] + [{"x"}, {"  a  "}]
    expected = np.array(
        [m.hashvalues for m in MinHash.bulk([[g.encode() for g in s] for s in sets], num_perm=num_perm, seed=seed)]
    )
    assert np.array_equal(minhash_signatures(sets, num_perm, seed), expected)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9])
def test_candidates_are_the_pairs_datasketchs_index_proposes(threshold: float) -> None:
    sets = [key_shingles(text) for text in near_duplicate_corpus(2000, seed=int(threshold * 10))]
    pairs = candidate_pairs(minhash_signatures(sets), threshold, RECALL_WEIGHTS)
    assert pairs == indexed_candidate_pairs(sets, threshold, RECALL_WEIGHTS)
    assert len(pairs) > 100, "the corpus must hold near-duplicates for the comparison to mean anything"
    assert all(j < i for j, i in pairs)


def test_the_groups_are_those_of_datasketchs_index_and_exact_jaccard() -> None:
    texts = near_duplicate_corpus(1500, seed=11)
    uf = UnionFind(len(texts))
    joins = join_near_duplicates(uf, texts, 0.7)
    reference = UnionFind(len(texts))
    sets = [key_shingles(t) for t in texts]
    expected = sum(
        reference.union(j, i)
        for j, i in sorted(indexed_candidate_pairs(sets, 0.7, RECALL_WEIGHTS))
        if jaccard(sets[i], sets[j]) >= 0.7
    )
    assert joins == expected > 0
    assert [uf.find(i) for i in range(len(texts))] == [reference.find(i) for i in range(len(texts))]


def test_no_items_join_nothing_and_an_empty_set_is_refused() -> None:
    assert join_near_duplicates(UnionFind(0), [], 0.7) == 0
    assert minhash_signatures([]).shape == (0, 64)
    with pytest.raises(ValueError, match="empty shingle set"):
        minhash_signatures([{"abcde"}, set()])
