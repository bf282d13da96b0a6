"""Two or more sentiment bundles side by side, as serving runs them: each probe's binary accuracy (the contrast
probe also by phenomenon), the size of the served graph, and the served latency per request at batch 1 and 32
relative to the first bundle, measured in turns on the probes' sentences (training/experiments/study.py
`latency_ratios`), so a busy moment of the machine hits every bundle.

Usage: `python -m training.experiments.sentiment_bundles BUNDLE_DIR BUNDLE_DIR [...]` (the first is the reference),
e.g. the champion of the last release and a new run's bundle from `mlruns/artifacts/sentiment/<run>/artifacts/bundles`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from serving.sentiment import SentimentPredictor
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.experiments.side_by_side import graph_megabytes, load_predictors, with_reference
from training.experiments.study import latency_ratios

LABELS = ["negative", "neutral", "positive"]


def probe_report(predictor: SentimentPredictor) -> dict[str, float]:
    """Binary accuracy on each probe, and on each phenomenon of the probes that have them."""
    report = {}
    for name, rows in probe_sets().items():
        probs = predictor.probabilities([r["text"] for r in rows])
        report[name] = binary_accuracy(probs, [r["label"] for r in rows], LABELS)
        for phenomenon in sorted({r["phenomenon"] for r in rows if "phenomenon" in r}):
            chosen = [i for i, r in enumerate(rows) if r.get("phenomenon") == phenomenon]
            report[f"{name}/{phenomenon}"] = binary_accuracy(probs[chosen], [rows[i]["label"] for i in chosen], LABELS)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.sentiment_bundles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE_DIR", help="a sentiment bundle folder")
    parser.add_argument(
        "--text",
        action="append",
        default=[],
        help="also print each bundle's probabilities for this text (repeatable): a phenomenon looked at closely",
    )
    args = parser.parse_args(argv)
    predictors = load_predictors(args.bundles, "sentiment", SentimentPredictor)
    if predictors is None:
        return 2
    reports = {name: probe_report(p) for name, p in predictors.items()}
    texts = [r["text"] for rows in probe_sets().values() for r in rows]
    timing = list(latency_ratios(with_reference(predictors), texts).values())
    for (name, report), cost, path in zip(reports.items(), timing, args.bundles, strict=True):
        print(f"{name}: served graphs {graph_megabytes(path):.1f} MB")
        print(
            f"  latency x the first bundle: batch 1 {cost['ratio_batch_1']:.2f} ({cost['ms_batch_1']:.2f} ms), "
            f"batch 32 {cost['ratio_batch_32']:.2f} ({cost['ms_batch_32']:.1f} ms)"
        )
        print("  " + ", ".join(f"{key} {value:.3f}" for key, value in report.items()))
    for text in args.text:
        print(
            f"{text!r}: "
            + "; ".join(f"#{i} {text_probabilities(p, text)}" for i, p in enumerate(predictors.values(), 1))
        )
    return 0


def text_probabilities(predictor: SentimentPredictor, text: str) -> str:
    """ "P(negative) 0.75 neutral 0.12 positive 0.13" for one text."""
    probs = predictor.probabilities([text])[0]
    return " ".join(f"{label} {p:.2f}" for label, p in zip(LABELS, probs, strict=True))


if __name__ == "__main__":
    sys.exit(main())
