"""int8 dynamic quantisation of the registry champions, side by side with fp32: what it costs in quality, what it
gives in speed.

- sentiment: macro-F1 of the fp32 and int8 classifier on the whole validation split (the one export decides on)
  and test split, through serving's predictor (training/export/quantize.py), and one-thread latency at batch 1 and 16.
  Sentiment bundles already carry this decision; here it is re-measured on the champion as served.
- translation: its export is unchanged (fp32 only); this measures what int8 `encoder` + `decoder_step` graphs
  would give: BLEU and chrF (sacrebleu, as training/metrics/bleu.py scores a run) of greedy decoding on an evenly
  spaced sample of the test split, and greedy-decoding latency at batch 1 and 16 on one thread.

Every onnxruntime session here runs on one thread (MEMORIA_ORT_THREADS=1), the graphs alternating, so ratios are
per core and both graphs see the same machine load. The splits are checked against the data card the champion's
training run logged (sha256 of each split file): scores on another preparation of the data (other domains, other
limits) would mix in the champion's training sentences, and the report says so when that happens.

Writes reports/bench-quantization.json and reports/bench-quantization.md (also printed). Usage:
    python -m tests.benchmarks.bench_quantization [--sentences 200] [--out reports]
MEMORIA_HOME locates the prepared data, MLFLOW_TRACKING_URI the registry (defaults as for training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from serving.contract.bundle import Bundle
from serving.contract.files import sha256_file
from serving.contract.registry import champion_bundle
from serving.contract.text import encode_batch, load_tokenizer
from serving.translation import TranslationPredictor
from training.config import SentimentConfig, TranslationConfig, Workspace, from_dict
from training.export.quantize import MAX_MACRO_F1_LOSS, compare_latency, decide, quantize_graph, score_graphs
from training.metrics.bleu import translation_scores
from training.tracking.store import use_store

REPO = Path(__file__).resolve().parents[2]
SENTENCES = 200  # translation test sentences scored (greedy): about a minute per graph pair on one thread
MAX_BLEU_LOSS = 0.5  # the rule for translation, reported only (its export does not quantise)
ROUNDS = 3
REPEATS = 5


def alternating_ms(
    fns: dict[str, Callable[[], object]], rounds: int = ROUNDS, repeats: int = REPEATS
) -> dict[str, float]:
    """Median ms per call of each function, in alternating rounds so a burst of background load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000)
            per_round[name].append(statistics.median(times))
    return {name: statistics.median(values) for name, values in per_round.items()}


def run_split_check(ws: Workspace, run_id: str, directory: Path, splits: tuple[str, ...]) -> dict[str, Any]:
    """Whether the prepared split files are byte for byte those the run was trained and scored with (the sha256s
    in the data card it logged)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            card = json.loads(Path(use_store(ws).download_artifacts(run_id, "data/card.json", tmp)).read_text())
        except Exception as e:  # an old run without a card (MLflow raises its own types): reported, not fatal
            return {"directory": str(directory), "same_as_run": False, "why": f"no data card on run {run_id}: {e}"}
    files = card.get("files", {})
    same = {
        s: (directory / f"{s}.jsonl").is_file() and files.get(f"{s}.jsonl") == sha256_file(directory / f"{s}.jsonl")
        for s in splits
    }
    return {"directory": str(directory), "same_as_run": all(same.values()), "splits": same}


def mib(*paths: Path) -> float:
    """Size on disk: int8 weights also shrink the bundle (and what a worker keeps in memory)."""
    return round(sum(p.stat().st_size for p in paths) / 2**20, 2)


def bench_sentiment(ws: Workspace, cache: Path, tmp: Path) -> dict[str, Any]:
    """The champion's fp32 classifier (`classifier_fp32` where the bundle has one) against its int8 version, scored
    and timed with the same code export decides with."""
    from training.data.sentiment.corpus import load_split

    served = champion_bundle("sentiment", ws.tracking_uri, cache)
    bundle = served.bundle
    graphs = bundle.manifest["graphs"]
    fp32 = bundle.path / graphs.get("classifier_fp32", graphs["classifier"])
    int8 = quantize_graph(fp32, tmp / "classifier.int8.onnx")
    cfg = from_dict(SentimentConfig, bundle.manifest["config"])
    directory = ws.prepared("sentiment", cfg.data.source)
    data = run_split_check(ws, bundle.manifest["source_run_id"], directory, ("validation", "test"))
    splits = {s: [(r["text"], r["label"]) for r in load_split(directory, s)] for s in ("validation", "test")}
    tokenizer, labels, max_tokens = (
        bundle.tokenizer("text"),
        bundle.manifest["labels"],
        bundle.manifest["max_input_tokens"],
    )
    started = time.perf_counter()
    scores = score_graphs({"fp32": fp32, "int8": int8}, tokenizer, labels, max_tokens, splits)
    decision = decide(scores["val_macro_f1_fp32"], scores["val_macro_f1_int8"])
    return {
        "model": served.label,
        "served_now": bundle.manifest.get("quantization", {}).get("served", "fp32 (bundle from before int8)"),
        "data": data,
        **scores,
        "scoring_seconds": round(time.perf_counter() - started, 1),
        "decision": {"served": decision.served, "reason": decision.reason, "max_loss": MAX_MACRO_F1_LOSS},
        "latency_one_thread": compare_latency(fp32, int8, tokenizer, max_tokens, [t for t, _ in splits["test"]]),
        "size_mib": {"fp32": mib(fp32), "int8": mib(int8)},
    }


def with_graphs(bundle: Bundle, graphs: dict[str, Path]) -> Bundle:
    """The same bundle with other graph files (absolute paths), for serving's predictor."""
    return replace(bundle, manifest={**bundle.manifest, "graphs": {k: str(v) for k, v in graphs.items()}})


def bench_translation(ws: Workspace, cache: Path, tmp: Path, sentences: int) -> dict[str, Any]:
    """The champion's encoder + decoder_step against their int8 versions, both decoded by serving's predictor."""
    from training.data.translation.corpus import load_split

    served = champion_bundle("translation", ws.tracking_uri, cache)
    bundle = served.bundle
    fp32 = {name: bundle.graph(name) for name in ("encoder", "decoder_step")}
    int8 = {name: quantize_graph(path, tmp / f"{name}.int8.onnx") for name, path in fp32.items()}
    predictors = {"fp32": TranslationPredictor(bundle), "int8": TranslationPredictor(with_graphs(bundle, int8))}
    cfg = from_dict(TranslationConfig, bundle.manifest["config"])
    directory = ws.prepared("translation", cfg.data.source)
    data = run_split_check(ws, bundle.manifest["source_run_id"], directory, ("test",))
    rows = load_split(directory, "test")
    sample = rows[:: max(1, len(rows) // sentences)][:sentences]  # evenly spaced: every domain of the split
    texts = [r["source"] for r in sample]

    result: dict[str, Any] = {"model": served.label, "data": data, "sentences": len(sample)}
    outputs = {}
    for name, predictor in predictors.items():
        started = time.perf_counter()
        outputs[name] = predictor.translate(texts, beam_size=1)
        result[f"decode_seconds_{name}"] = round(time.perf_counter() - started, 1)
        result |= {f"{key}_{name}": value for key, value in translation_scores(outputs[name], sample).items()}
    result["identical_outputs"] = sum(a == b for a, b in zip(outputs["fp32"], outputs["int8"], strict=True)) / len(
        texts
    )
    loss = result["bleu_fp32"] - result["bleu_int8"]
    result["rule"] = {
        "max_bleu_loss": MAX_BLEU_LOSS,
        "bleu_loss": round(loss, 2),
        "would_serve": "int8" if loss <= MAX_BLEU_LOSS else "fp32",
    }

    tokenizer = load_tokenizer(bundle.tokenizer("source"))
    max_in, max_out = bundle.manifest["max_input_tokens"], bundle.manifest["max_output_tokens"]
    latency = {}
    for batch in (1, 16):
        ids, lengths = encode_batch(tokenizer, texts[:batch], max_in)
        calls = {
            name: (lambda p=p, ids=ids, lengths=lengths: p.runtime.decode(ids, lengths, max_out, beam_size=1))
            for name, p in predictors.items()
        }
        ms = alternating_ms(calls)
        latency[f"batch_{batch}"] = {
            "fp32_ms": round(ms["fp32"], 2),
            "int8_ms": round(ms["int8"], 2),
            "fp32_over_int8": round(ms["fp32"] / ms["int8"], 2),
        }
    result["greedy_latency_one_thread"] = latency
    result["logged_test_bleu_greedy"] = bundle.manifest.get("metrics", {}).get("test/bleu_greedy")
    result["size_mib"] = {"fp32": mib(*fp32.values()), "int8": mib(*int8.values())}
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on: int8 kernels differ by CPU (VNNI or not), so ratios only travel with it."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "onnxruntime": metadata.version("onnxruntime"),
        "threads": int(os.environ.get("MEMORIA_ORT_THREADS", "1")),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report for people: fp32 and int8 side by side per model, the rule's verdict, and whether the splits
    were the champion's own."""
    m, s, t = report["machine"], report["sentiment"], report["translation"]
    lines = [
        "# int8 dynamic quantisation vs fp32 (registry champions)",
        "",
        f"{m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, {m['threads']} thread; "
        "onnxruntime `quantize_dynamic`, QInt8 weights.",
        "",
        f"## Sentiment: {s['model']} (serves {s['served_now']})",
        "",
        "| | fp32 | int8 | int8 - fp32 |",
        "|---|---:|---:|---:|",
    ]
    for label, key, n in (
        ("validation macro-F1 (decides)", "val", s["val_texts"]),
        ("test macro-F1 (reported)", "test", s["test_texts"]),
    ):
        a, b = s[f"{key}_macro_f1_fp32"], s[f"{key}_macro_f1_int8"]
        lines.append(f"| {label}, {n} texts | {a:.4f} | {b:.4f} | {(b - a) * 100:+.2f} points |")
    lines.append(f"| same label as fp32 (test) | | {s['test_agreement']:.1%} | |")
    lines += _latency_rows(s["latency_one_thread"], "latency")
    lines.append(f"| graph size (MiB) | {s['size_mib']['fp32']} | {s['size_mib']['int8']} | |")
    lines += [
        "",
        f"Rule (validation macro-F1 may drop at most {s['decision']['max_loss'] * 100:.1f} point): "
        f"**{s['decision']['served']}**; {s['decision']['reason']}.",
        _data_line(s["data"]),
        "",
        f"## Translation: {t['model']} (export unchanged: fp32)",
        "",
        "| | fp32 | int8 | int8 - fp32 |",
        "|---|---:|---:|---:|",
    ]
    for label, key in (("BLEU", "bleu"), ("chrF", "chrf"), ("BLEU, multi-reference", "bleu_multi_ref")):
        a, b = t[f"{key}_fp32"], t[f"{key}_int8"]
        lines.append(f"| {label}, {t['sentences']} test sentences, greedy | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    lines.append(f"| identical translations | | {t['identical_outputs']:.1%} | |")
    lines += _latency_rows(t["greedy_latency_one_thread"], "greedy decoding")
    lines.append(f"| encoder + decoder_step size (MiB) | {t['size_mib']['fp32']} | {t['size_mib']['int8']} | |")
    rule, logged = t["rule"], t["logged_test_bleu_greedy"]
    lines += [
        "",
        f"Rule (BLEU may drop at most {rule['max_bleu_loss']}; reported only): "
        f"int8 loses {rule['bleu_loss']:+.2f} BLEU "
        f"-> would serve **{rule['would_serve']}** ({t['sentences']} sentences: read the difference, not the "
        f"level). The champion's own greedy test BLEU, logged by its run on the whole split: {_number(logged)}.",
        _data_line(t["data"]),
        "",
    ]
    return "\n".join(lines)


def _latency_rows(latency: dict[str, dict[str, float]], what: str) -> list[str]:
    return [
        f"| {what}, batch {key.removeprefix('batch_')} (ms) | {row['fp32_ms']} | {row['int8_ms']} | "
        f"{row['fp32_over_int8']}x faster |"
        for key, row in latency.items()
    ]


def _number(value: float | None) -> str:
    return "not logged" if value is None else f"{value:.2f}"


def _data_line(data: dict[str, Any]) -> str:
    if data["same_as_run"]:
        return f"Splits: byte-identical to the champion's run ({data['directory']})."
    why = data.get("why") or f"split files differ from the run's data card: {data.get('splits')}"
    return f"**Warning**: the splits in {data['directory']} are not the champion's ({why}); scores may be inflated."


def main() -> None:
    """Measure both champions and write the JSON and markdown reports."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=SENTENCES, help="translation test sentences to score")
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="where the two report files go")
    args = parser.parse_args()
    os.environ["MEMORIA_ORT_THREADS"] = "1"  # every session, serving's predictors included: per-core numbers
    ws = Workspace.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        cache, work = Path(tmp) / "cache", Path(tmp) / "int8"
        work.mkdir()
        report = {
            "machine": machine(),
            "sentiment": bench_sentiment(ws, cache, work),
            "translation": bench_translation(ws, cache, work, args.sentences),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-quantization.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "bench-quantization.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
