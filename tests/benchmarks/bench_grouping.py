"""Near-duplicate grouping of translation's preparation (training/data/grouping.py) on the real prepared pairs: the
vectorised MinHash signatures and LSH bands against datasketch's objects item by item (`indexed_candidate_pairs`,
how grouping worked before), and `dedupe_key`'s punctuation table against the per-character definition it
replaced; in turns within one process, each pair of paths asserted equal.

Usage: `python -m tests.benchmarks.bench_grouping` after `make data TASK=translation` (reads the prepared splits of
the workspace, MEMORIA_HOME or the current directory).
"""

from __future__ import annotations

import platform
import time
import unicodedata

from training.config import Workspace
from training.data.grouping import (
    RECALL_WEIGHTS,
    candidate_pairs,
    indexed_candidate_pairs,
    key_shingles,
    minhash_signatures,
)
from training.data.prepared import SPLITS, load_split
from training.data.translation.pairs import dedupe_key

ROUNDS = 2
THRESHOLD = 0.7  # translation's default near_duplicate_threshold


def per_character_key(text: str) -> str:
    """`dedupe_key` as it was: unicodedata asked about every character (the "before" being measured)."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def main() -> None:
    folder = Workspace.from_env().prepared("translation", "mix")
    texts = [text for split in SPLITS for row in load_split(folder, split) for text in (row["source"], row["target"])]
    times: dict[str, list[float]] = {
        name: [] for name in ("keys: table", "keys: per character", "pairs: vectorised", "pairs: indexed")
    }
    for _ in range(ROUNDS):
        start = time.perf_counter()
        keys = [dedupe_key(t) for t in texts]
        times["keys: table"].append(time.perf_counter() - start)
        start = time.perf_counter()
        assert keys == [per_character_key(t) for t in texts], "the keys differ"
        times["keys: per character"].append(time.perf_counter() - start)
        sets = [key_shingles(k) for k in keys[::2]]  # the Spanish sources, as group_pairs shingles them
        start = time.perf_counter()
        fast = candidate_pairs(minhash_signatures(sets), THRESHOLD, RECALL_WEIGHTS)
        times["pairs: vectorised"].append(time.perf_counter() - start)
        start = time.perf_counter()
        assert fast == indexed_candidate_pairs(sets, THRESHOLD, RECALL_WEIGHTS), "the candidate pairs differ"
        times["pairs: indexed"].append(time.perf_counter() - start)
    counts = f"{len(texts)} texts keyed, {len(sets)} Spanish sources grouped ({len(fast)} candidate pairs)"
    print(f"{platform.machine()}, {counts}; seconds, {ROUNDS} rounds:")
    for name, seconds in times.items():
        print(f"  {name}: {', '.join(f'{s:.1f}' for s in seconds)}")


if __name__ == "__main__":
    main()
