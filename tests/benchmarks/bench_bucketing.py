"""Length bucketing in the served sentiment model: merged batches of real test texts, with and without sorting by
length before cutting them into onnxruntime calls, and at several call sizes.

A recurrent graph runs every row to the longest row of its call, so padding is computed, not skipped; sorting by
length keeps rows of one call alike. One process, one onnxruntime thread (what each serving worker gets on
2 cores), variants interleaved so that background load hits them alike. Usage:
`python -m tests.benchmarks.bench_bucketing` (part of `make bench`).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

from serving.resolve import resolve_bundle
from tests.benchmarks.workload import held_out_split, read_field

BATCH = 128  # a merged batch as 32 clients x 4 texts, or 8 clients x 16 texts, produce it
VARIANTS = [(False, 128), (True, 128), (True, 64), (True, 32), (True, 16), (True, 8), (True, 1)]
ROUNDS = 5


def main() -> None:
    os.environ.setdefault("MEMORIA_ORT_THREADS", "1")
    from serving.sentiment import SentimentPredictor

    served = resolve_bundle("sentiment")
    predictor = SentimentPredictor(served.bundle)
    served_chunk = predictor.chunk  # 1 for an int8 graph (serving.sentiment.activations_quantized), else CHUNK
    texts = read_field(held_out_split(served), "text", 2000, 4096)
    rng = random.Random(0)
    batches = [rng.sample(texts, BATCH) for _ in range(6)]
    timings: dict[tuple[bool, int], list[float]] = {v: [] for v in VARIANTS}
    for _ in range(ROUNDS):
        for bucketing, chunk in VARIANTS:
            predictor.bucketing, predictor.chunk = bucketing, chunk
            started = time.perf_counter()
            for batch in batches:
                predictor.predict(batch)
            timings[(bucketing, chunk)].append((time.perf_counter() - started) / (len(batches) * BATCH))
    base = statistics.median(timings[(False, 128)])
    rows = []
    for bucketing, chunk in VARIANTS:
        per_text = statistics.median(timings[(bucketing, chunk)])
        rows.append(
            {
                "sorted_by_length": bucketing,
                "texts_per_call": chunk,
                "ms_per_text": round(per_text * 1000, 3),
                "speedup_vs_unsorted_128": round(base / per_text, 2),
            }
        )
    out = Path("reports")
    out.mkdir(exist_ok=True)
    report = {
        "model": served.label,
        "merged_batch": BATCH,
        "onnxruntime_threads": 1,
        "served_texts_per_call": served_chunk,
        "rows": rows,
    }
    (out / "bench-bucketing.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Length bucketing, {served.label}, merged batches of {BATCH} real test texts, 1 onnxruntime thread")
    print(f"(served: {served_chunk} text(s) per call)")
    print("| sorted by length | texts per call | ms per text | speed-up vs unsorted, 128 per call |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'yes' if r['sorted_by_length'] else 'no'} | {r['texts_per_call']} | {r['ms_per_text']} | "
            f"{r['speedup_vs_unsorted_128']}× |"
        )


if __name__ == "__main__":
    main()
