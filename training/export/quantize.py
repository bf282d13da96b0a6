"""int8 dynamic quantisation of a classifier graph, served only if it keeps the fp32 graph's macro-F1.

The sentiment biLSTM costs about the same per text at any batch size on a CPU (compute bound), so int8 weights
are the lever left: onnxruntime's `quantize_dynamic` turns LSTM into DynamicQuantizeLSTM and Gemm/MatMul into
MatMulInteger, measured 2.4-2.6x faster. It also changes the numbers, so it must earn its place: both graphs are
scored on the run's validation split through serving's own predictor, and int8 is served only if its macro-F1 is
at most MAX_MACRO_F1_LOSS below fp32's. The test split is scored and reported, never used to decide, so the test
score stays an honest estimate of what is served.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
from sklearn.metrics import f1_score

from serving.contract.bundle import Bundle
from serving.contract.text import encode_ids, load_tokenizer, pad_batch
from serving.sentiment import SentimentPredictor

MAX_MACRO_F1_LOSS = 0.005  # 0.5 point of macro-F1 on the validation split: the most int8 may cost to be served
LATENCY_BATCHES = (1, 16)
LATENCY_ROUNDS = 3  # alternating fp32/int8 rounds: a burst of background load hits both graphs alike
LATENCY_REPEATS = 10  # timed calls per graph, batch size and round
# float rounding must not turn a loss of exactly MAX_MACRO_F1_LOSS (0.805 - 0.800) into a refusal
_EPSILON = 1e-9

Served = Literal["int8", "fp32"]


@dataclass(frozen=True)
class Decision:
    """Which graph a bundle serves, and the numbers that decided it (recorded in the manifest and on the run)."""

    served: Served
    reason: str


def quantize_graph(fp32: Path, int8: Path) -> Path:
    """Write the int8 version of the graph `fp32` to `int8`.

    Dynamic rather than static quantisation: weights are converted to int8 once, and each activation's scale is
    taken from its actual range at every call, so no calibration data set has to be chosen, shipped or kept in
    step with the model; and in these recurrent models the weight products (the LSTM's input and recurrent
    matrices, the output projection) are nearly all of the compute, which is exactly what dynamic quantisation
    speeds up. QInt8 weights: signed, symmetric around 0 like trained weights are.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _without_preprocessing_hint():
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return int8


@contextlib.contextmanager
def _without_preprocessing_hint() -> Iterator[None]:
    """quantize_dynamic logs a root-logger warning advising shape-inference pre-processing, which only matters for
    static quantisation of graphs with unknown shapes; it would read like a problem in every export's output."""

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def classifier_predictor(
    graph: Path, tokenizer: Path, labels: Sequence[str], max_tokens: int, int8: bool = False, threads: int | None = None
) -> SentimentPredictor:
    """Serving's SentimentPredictor over one graph of a bundle that is still being written.

    Scoring goes through the predictor itself (tokenizer file, `encode_ids`, length-sorted chunks, `pad_batch`,
    an onnxruntime session made as serving makes it) rather than a copy of it, so an int8 graph is scored exactly
    as it is served (one text per call: see serving.sentiment.activations_quantized)."""
    view = Bundle(
        path=graph.parent,
        manifest={
            "labels": list(labels),
            "max_input_tokens": int(max_tokens),
            "graphs": {"classifier": graph.name},
            "tokenizers": {"text": str(Path(tokenizer).resolve())},
            # the predictor then calls the int8 graph as serving will (one text per call)
            "quantization": {"served": "int8" if int8 else "fp32"},
        },
        digest="unverified",
    )
    return SentimentPredictor(view, threads=threads)


def predict_ids(predictor: SentimentPredictor, texts: Sequence[str]) -> np.ndarray:
    """Predicted label index per text."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return predictor.probabilities(texts).argmax(axis=1)


def macro_f1(labels: Sequence[str], gold: Sequence[str], predicted: np.ndarray) -> float:
    """Macro-F1 over every label of the model (a label missing from a small split counts as 0, as in training's
    torchmetrics score, rather than being left out of the mean)."""
    index = {label: i for i, label in enumerate(labels)}
    y_true = [index[g] for g in gold]
    return float(f1_score(y_true, predicted, labels=list(range(len(labels))), average="macro", zero_division=0))


def classifier_macro_f1(
    graph: Path, tokenizer: Path, labels: Sequence[str], max_tokens: int, rows: Sequence[tuple[str, str]]
) -> float:
    """Macro-F1 of a classifier graph on (text, label) rows, through serving's text path."""
    predictor = classifier_predictor(graph, tokenizer, labels, max_tokens)
    return macro_f1(labels, [label for _, label in rows], predict_ids(predictor, [text for text, _ in rows]))


def decide(val_macro_f1_fp32: float, val_macro_f1_int8: float, max_loss: float = MAX_MACRO_F1_LOSS) -> Decision:
    """int8 if it loses at most `max_loss` of validation macro-F1 against fp32, else fp32; the reason says which
    numbers decided."""
    loss = val_macro_f1_fp32 - val_macro_f1_int8
    numbers = (
        f"validation macro-F1 int8 {val_macro_f1_int8:.4f} vs fp32 {val_macro_f1_fp32:.4f} "
        f"(loss {loss * 100:+.2f} points, allowed {max_loss * 100:.2f})"
    )
    if loss <= max_loss + _EPSILON:
        return Decision("int8", numbers)
    return Decision("fp32", f"int8 loses too much: {numbers}")


def one_thread_session(graph: Path) -> ort.InferenceSession:
    """A session pinned to one thread, with serving's optimisation level: latency per core, comparable across
    machines and unaffected by how many cores the exporting machine happens to have."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def compare_latency(
    fp32: Path,
    int8: Path,
    tokenizer: Path,
    max_tokens: int,
    texts: Sequence[str],
    batches: Sequence[int] = LATENCY_BATCHES,
) -> dict[str, dict[str, float]]:
    """Median milliseconds per call of both graphs on one thread, alternating, on the first texts of `texts`:
    {"batch_1": {"fp32_ms", "int8_ms", "fp32_over_int8"}, ...} ({} without texts)."""
    if not texts:
        return {}
    sessions = {"fp32": one_thread_session(fp32), "int8": one_thread_session(int8)}
    sample = [texts[i % len(texts)] for i in range(max(batches))]  # a small split is repeated to fill a batch
    ids = encode_ids(load_tokenizer(tokenizer), sample, max_tokens)
    out: dict[str, dict[str, float]] = {}
    for batch in batches:
        input_ids, lengths = pad_batch(ids[:batch])
        feed = {"input_ids": input_ids, "lengths": lengths}
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        for session in sessions.values():
            session.run(None, feed)  # warm-up: first calls allocate
        for _ in range(LATENCY_ROUNDS):
            for name, session in sessions.items():
                times[name].append(_median_ms(session, feed))
        fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
        out[f"batch_{batch}"] = {
            "fp32_ms": round(fp32_ms, 3),
            "int8_ms": round(int8_ms, 3),
            "fp32_over_int8": round(fp32_ms / int8_ms, 2),
        }
    return out


def _median_ms(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> float:
    times = []
    for _ in range(LATENCY_REPEATS):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def quantize_classifier(
    fp32: Path,
    tokenizer: Path,
    labels: Sequence[str],
    max_tokens: int,
    splits: dict[str, Sequence[tuple[str, str]]],
) -> tuple[Path, dict[str, Any]]:
    """Build `<name>.int8.onnx` beside `fp32`, score both graphs on `splits` ("validation" decides, "test" is
    reported), time them, decide. Returns the int8 graph's path and the manifest's `quantization` section."""
    int8 = quantize_graph(fp32, fp32.with_name(fp32.stem + ".int8.onnx"))
    scores = score_graphs({"fp32": fp32, "int8": int8}, tokenizer, labels, max_tokens, splits)
    if scores["val_macro_f1_fp32"] is None or scores["val_macro_f1_int8"] is None:
        decision = Decision("fp32", "the validation split is empty: int8 cannot be checked")
    else:
        decision = decide(scores["val_macro_f1_fp32"], scores["val_macro_f1_int8"])
    texts = [t for t, _ in splits.get("validation") or splits.get("test") or []]
    section = {
        "served": decision.served,
        "reason": decision.reason,
        "method": "onnxruntime quantize_dynamic, QInt8 weights, activations quantised per call",
        "max_val_macro_f1_loss": MAX_MACRO_F1_LOSS,
        **scores,
        "latency_one_thread": compare_latency(fp32, int8, tokenizer, max_tokens, texts),
        "graphs": {"fp32": fp32.name, "int8": int8.name},
    }
    return int8, section


def score_graphs(
    graphs: dict[str, Path],
    tokenizer: Path,
    labels: Sequence[str],
    max_tokens: int,
    splits: dict[str, Sequence[tuple[str, str]]],
) -> dict[str, Any]:
    """Both graphs on the validation and test splits: `{val,test}_macro_f1_{fp32,int8}` (None for an empty
    split), `{val,test}_agreement` (share of texts given the same label) and `{val,test}_texts`.

    The four predictions run side by side, one per core, each session on one onnxruntime thread, as a serving worker
    runs them: the int8 graph is called once per text, and such calls gain nothing from a second thread of their own
    (`python -m tests.benchmarks.bench_export_scoring`: 7.9 and 7.7 s against 13.3 and 10.5 s in turn on default
    threads, for `default`'s splits on 2 cores, the same scores; default threads side by side were no faster)."""
    predictors = {
        name: classifier_predictor(g, tokenizer, labels, max_tokens, int8=name == "int8", threads=1)
        for name, g in graphs.items()
    }
    jobs = [(split, name) for split in ("validation", "test") for name in predictors]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        done = pool.map(lambda job: predict_ids(predictors[job[1]], [t for t, _ in splits.get(job[0]) or []]), jobs)
        predictions = dict(zip(jobs, done, strict=True))
    scores: dict[str, Any] = {}
    for split, short in (("validation", "val"), ("test", "test")):
        rows = splits.get(split) or []
        gold = [label for _, label in rows]
        predicted = {name: predictions[split, name] for name in predictors}
        for name, pred in predicted.items():
            scores[f"{short}_macro_f1_{name}"] = macro_f1(labels, gold, pred) if rows else None
        scores[f"{short}_agreement"] = float((predicted["fp32"] == predicted["int8"]).mean()) if rows else None
        scores[f"{short}_texts"] = len(rows)
    return scores


def not_quantized(reason: str) -> dict[str, Any]:
    """The `quantization` section of a bundle that serves fp32 without an int8 candidate."""
    return {"served": "fp32", "reason": reason}
