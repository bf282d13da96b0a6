"""The everyday probe on bundles that are already trained, to compare them side by side:

    python -m training.experiments.everyday_probe BUNDLE_DIR [BUNDLE_DIR ...] [--beam N] [--show]

prints each bundle's corpus BLEU and chrF on the probe (training/data/translation/everyday_probe.jsonl, against
every reference), its BLEU per topic, and with --show each sentence's output beside its references. A bundle folder
is what `python -m training pull --task translation` writes (bundles/translation) or a run's `bundles/<digest>`
artifact. Decoding is serving's own (TranslationPredictor: the ONNX graphs and beam search behind /translate, no
torch), and the beam is the bundle's default unless --beam says otherwise: the numbers are the ones a training run
logs as `probe/everyday_bleu` and `probe/everyday_chrf` for the bundle it exports. Nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.contract.bundle import BundleError, load_bundle
from serving.translation import TranslationPredictor
from training.data.translation.everyday_probe import bleu_by_topic, multi_reference_scores, probe_rows


@dataclass(frozen=True)
class ProbeReport:
    bundle: str
    beam_size: int
    bleu: float
    chrf: float
    bleu_by_topic: dict[str, float]
    outputs: tuple[str, ...]  # one per probe row, in file order


def score_bundle(path: Path, beam_size: int | None = None, rows: Sequence[dict[str, Any]] | None = None) -> ProbeReport:
    """Decode the probe with the bundle at `path` (`beam_size` None: the bundle's default) and score it."""
    rows = probe_rows() if rows is None else rows
    predictor = TranslationPredictor(load_bundle(path, "translation"))
    beam = predictor.default_beam_size if beam_size is None else beam_size
    outputs = predictor.translate([row["es"] for row in rows], beam_size=beam)
    bleu, chrf = multi_reference_scores(outputs, rows)
    return ProbeReport(str(path), beam, bleu, chrf, bleu_by_topic(outputs, rows), tuple(outputs))


def format_report(report: ProbeReport, rows: Sequence[dict[str, Any]], show: bool = False) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["topic"]] = counts.get(row["topic"], 0) + 1
    lines = [
        f"{report.bundle} (beam {report.beam_size}): BLEU {report.bleu:.1f}  chrF {report.chrf:.1f}  "
        f"({len(rows)} sentences, multi-reference)",
        *(f"  {topic:<10} {counts[topic]:>3}  BLEU {bleu:5.1f}" for topic, bleu in report.bleu_by_topic.items()),
    ]
    if show:
        for row, output in zip(rows, report.outputs, strict=True):
            lines += [f"  [{row['topic']}] {row['es']}", f"      -> {output}", f"      ref: {' | '.join(row['en'])}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.everyday_probe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE_DIR", help="a translation bundle folder")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: each bundle's own default)")
    parser.add_argument("--show", action="store_true", help="print every sentence's output and references")
    args = parser.parse_args(argv)
    rows = probe_rows()
    for path in args.bundles:
        try:
            report = score_bundle(path, args.beam, rows)
        except BundleError as e:  # not a (trusted) translation bundle; the message names the folder
            print(f"error: {e}", file=sys.stderr)
            return 2
        except ValueError as e:  # a beam the bundle does not allow
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        print(format_report(report, rows, args.show))
    return 0


if __name__ == "__main__":
    sys.exit(main())
