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
from dataclasses import replace
from pathlib import Path

from serving.resolve import resolve_bundle
from serving.sentiment import activations_quantized
from tests.benchmarks.workload import held_out_split, read_field

BATCH = 128  # a merged batch as 32 clients x 4 texts, or 8 clients x 16 texts, produce it
VARIANTS = [(False, 128), (True, 128), (True, 64), (True, 32), (True, 16), (True, 8), (True, 1)]
ROUNDS = 5


def time_variants(predictor: object, batches: list[list[str]]) -> list[dict]:
    """ms per text for each (sorted, texts per call) variant, interleaved over ROUNDS."""
    timings: dict[tuple[bool, int], list[float]] = {v: [] for v in VARIANTS}
    for _ in range(ROUNDS):
        for bucketing, chunk in VARIANTS:
            predictor.bucketing, predictor.chunk = bucketing, chunk
            started = time.perf_counter()
            for batch in batches:
                predictor.predict(batch)
            timings[(bucketing, chunk)].append((time.perf_counter() - started) / (len(batches) * BATCH))
    base = statistics.median(timings[(False, 128)])
    return [
        {
            "sorted_by_length": bucketing,
            "texts_per_call": chunk,
            "ms_per_text": round(statistics.median(timings[(bucketing, chunk)]) * 1000, 3),
            "speedup_vs_unsorted_128": round(base / statistics.median(timings[(bucketing, chunk)]), 2),
        }
        for bucketing, chunk in VARIANTS
    ]


def main() -> None:
    os.environ.setdefault("MEMORIA_ORT_THREADS", "1")
    from serving.sentiment import SentimentPredictor

    served = resolve_bundle("sentiment")
    texts = read_field(held_out_split(served), "text", 2000, 4096)
    rng = random.Random(0)
    batches = [rng.sample(texts, BATCH) for _ in range(6)]
    graphs = {"served": served.bundle}
    if "classifier_fp32" in served.bundle.manifest["graphs"] and activations_quantized(served.bundle.manifest):
        manifest = dict(served.bundle.manifest)
        manifest["graphs"] = {**manifest["graphs"], "classifier": manifest["graphs"]["classifier_fp32"]}
        manifest.pop("quantization")
        graphs["fp32"] = replace(served.bundle, manifest=manifest)
    report: dict = {"model": served.label, "merged_batch": BATCH, "onnxruntime_threads": 1, "graphs": {}}
    for name, bundle in graphs.items():
        predictor = SentimentPredictor(bundle)
        report["graphs"][name] = {
            "file": bundle.manifest["graphs"]["classifier"],
            "served_texts_per_call": predictor.chunk,  # 1 for an int8 graph (activations_quantized), else CHUNK
            "rows": time_variants(predictor, batches),
        }
    out = Path("reports")
    out.mkdir(exist_ok=True)
    (out / "bench-bucketing.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Length bucketing, {served.label}, merged batches of {BATCH} real test texts, 1 onnxruntime thread")
    for name, graph in report["graphs"].items():
        print(f"\n{name} graph {graph['file']} (served with {graph['served_texts_per_call']} text(s) per call)")
        print("| sorted by length | texts per call | ms per text | speed-up vs unsorted, 128 per call |")
        print("|---|---:|---:|---:|")
        for r in graph["rows"]:
            print(
                f"| {'yes' if r['sorted_by_length'] else 'no'} | {r['texts_per_call']} | {r['ms_per_text']} | "
                f"{r['speedup_vs_unsorted_128']}× |"
            )


if __name__ == "__main__":
    main()
