"""Translation bundles trained on different splits, compared on the same test pairs:

    python -m training.experiments.shared_test_pairs --data PREPARED_DIR --data PREPARED_DIR ... BUNDLE_DIR ...

Adding a training-only source (back-translated tweets, the games' dialogue) regroups the held-out pairs, so two
runs' test splits differ and their test scores are not paired. This scores every bundle on the test pairs that
every given prepared folder (`data/translation/mix` of each run's home: its train.jsonl and test.jsonl) holds out:
in each test split and in no training split, so no bundle was trained on them. It prints corpus BLEU / chrF against
the single reference per domain and over all, with serving's own decoding (TranslationPredictor, the bundle's beam
unless --beam says otherwise). Nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serving.contract.bundle import BundleError, load_bundle
from serving.translation import TranslationPredictor
from training.data.prepared import load_split
from training.metrics.bleu import scores_by_domain


def shared_test_rows(prepared: Sequence[Path]) -> list[dict[str, Any]]:
    """The test rows (in the first folder's order) whose Spanish is in every folder's test split and in none of
    their training splits."""
    tests = [load_split(p, "test") for p in prepared]
    trained = {row["source"] for p in prepared for row in load_split(p, "train")}
    in_every_test = set.intersection(*({row["source"] for row in rows} for rows in tests))
    return [row for row in tests[0] if row["source"] in in_every_test and row["source"] not in trained]


def format_scores(name: str, scores: dict[str, float], rows: Sequence[dict[str, Any]]) -> str:
    domains = sorted({row.get("domain") or "all" for row in rows})
    parts = [f"{d} {scores[f'{d}/bleu']:.1f} / {scores[f'{d}/chrf']:.1f}" for d in domains if f"{d}/bleu" in scores]
    parts.append(f"all {scores['bleu']:.1f} / {scores['chrf']:.1f}")
    return f"{name}: " + " | ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.shared_test_pairs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, action="append", required=True, help="a run's prepared translation data")
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE_DIR", help="a translation bundle folder")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: each bundle's own default)")
    args = parser.parse_args(argv)
    try:
        rows = shared_test_rows(args.data)
    except FileNotFoundError as e:  # not a prepared folder
        print(
            f"error: {e.filename}: no such file; --data names a run's prepared folder (data/translation/mix)",
            file=sys.stderr,
        )
        return 2
    if not rows:
        print("error: the prepared folders share no held-out test pair", file=sys.stderr)
        return 2
    counts = {d: sum(1 for r in rows if r.get("domain") == d) for d in sorted({r.get("domain") for r in rows})}
    print(f"{len(rows)} test pairs held out of every split: {counts}")
    for path in args.bundles:
        try:
            predictor = TranslationPredictor(load_bundle(path, "translation"))
            beam = predictor.default_beam_size if args.beam is None else args.beam
            outputs = predictor.translate([row["source"] for row in rows], beam_size=beam)
        except (BundleError, ValueError) as e:  # not a (trusted) translation bundle, or a beam it does not allow
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        print(format_scores(str(path), scores_by_domain(outputs, rows), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
