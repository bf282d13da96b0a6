"""Model latency, onnxruntime (what serving runs) vs PyTorch (what training produced), side by side.

Both run in this one process on the same champion weights and the same real test-split texts, alternating, so
the ratio is measured under the same machine load. Usage: `make bench` (or python -m tests.benchmarks.bench_models).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from serving.contract.registry import champion_bundle
from serving.contract.text import encode_batch, load_tokenizer
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor
from training.config import SentimentConfig, Workspace
from training.data.sentiment.corpus import load_split as load_sentiment_split
from training.data.translation.corpus import load_split as load_translation_split
from training.tracking.store import use_store

REPEATS = 30


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def side_by_side(name: str, batch: int, torch_fn: Callable, ort_fn: Callable, repeats: int = REPEATS) -> dict:
    # Interleave rounds so that a burst of background load hits both alike.
    torch_ms, ort_ms = [], []
    for _ in range(3):
        torch_ms.append(median_ms(torch_fn, repeats // 3))
        ort_ms.append(median_ms(ort_fn, repeats // 3))
    t, o = statistics.median(torch_ms), statistics.median(ort_ms)
    return {
        "model": name,
        "batch": batch,
        "torch_ms": round(t, 2),
        "onnxruntime_ms": round(o, 2),
        "torch_over_ort": round(t / o, 2),
    }


def model_dir_of(ws: Workspace, run_id: str, dest: Path) -> Path:
    return Path(use_store(ws).download_artifacts(run_id, "model", str(dest)))


def bench_sentiment(ws: Workspace, tmp: Path) -> list[dict]:
    from training.model_folder import read_model_folder
    from training.models.classifier import ProbabilityModel, load_sentiment_net

    served = champion_bundle("sentiment", ws.tracking_uri, tmp / "cache")
    bundle = served.bundle
    folder = read_model_folder(model_dir_of(ws, bundle.manifest["source_run_id"], tmp / "s"), SentimentConfig)
    cfg = folder.config
    model = ProbabilityModel(load_sentiment_net(folder)).eval()
    predictor = SentimentPredictor(bundle)
    tokenizer = load_tokenizer(bundle.tokenizer("text"))
    texts = [r["text"] for r in load_sentiment_split(ws.prepared("sentiment", cfg.data.source), "test")]
    rows = []
    for batch in (1, 32):
        sample = texts[:batch]
        ids, lengths = encode_batch(tokenizer, sample, bundle.manifest["max_input_tokens"])
        ti, tl = torch.from_numpy(ids), torch.from_numpy(lengths)

        def run_torch(ti=ti, tl=tl) -> None:
            with torch.no_grad():
                model(ti, tl)

        def run_ort(ids=ids, lengths=lengths) -> None:
            predictor.session.run(["probabilities"], {"input_ids": ids, "lengths": lengths})

        rows.append(side_by_side(f"sentiment {served.label}", batch, run_torch, run_ort))
    return rows


def bench_translation(ws: Workspace, tmp: Path) -> list[dict]:
    from training.config import TranslationConfig
    from training.export.translation import load_model
    from training.model_folder import read_model_folder
    from training.models.seq2seq import greedy_decode

    served = champion_bundle("translation", ws.tracking_uri, tmp / "cache")
    bundle = served.bundle
    model_dir = model_dir_of(ws, bundle.manifest["source_run_id"], tmp / "t")
    folder = read_model_folder(model_dir, TranslationConfig)
    model, cfg = load_model(folder), folder.config
    predictor = TranslationPredictor(bundle)
    tokenizer = load_tokenizer(bundle.tokenizer("source"))
    pairs = load_translation_split(ws.prepared("translation", cfg.data.source), "test")
    max_out = bundle.manifest["max_output_tokens"]
    rows = []
    for batch in (1, 32):
        sample = [p["source"] for p in pairs[:batch]]
        ids, lengths = encode_batch(tokenizer, sample, bundle.manifest["max_input_tokens"])
        ti, tl = torch.from_numpy(ids), torch.from_numpy(lengths)

        def run_torch(ti=ti, tl=tl) -> None:
            with torch.no_grad():
                greedy_decode(model, ti, tl, max_out)

        def run_ort(ids=ids, lengths=lengths) -> None:
            predictor.runtime.decode(ids, lengths, max_out, beam_size=1)

        rows.append(side_by_side(f"translation greedy {served.label}", batch, run_torch, run_ort, repeats=9))
        beam = median_ms(lambda s=sample: predictor.translate(s, beam_size=4), repeats=3)
        greedy = median_ms(lambda s=sample: predictor.translate(s, beam_size=1), repeats=3)
        rows.append(
            {
                "model": "translation beam 4 vs greedy (onnxruntime, with tokenization)",
                "batch": batch,
                "greedy_ms": round(greedy, 1),
                "beam4_ms": round(beam, 1),
                "beam_over_greedy": round(beam / greedy, 2),
            }
        )
    return rows


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    ws = Workspace.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_sentiment(ws, Path(tmp)) + bench_translation(ws, Path(tmp))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), onnxruntime default threads"
    )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
