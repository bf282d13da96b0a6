"""One trained translation bundle decoded with other search settings, to choose them on validation:

    python -m training.experiments.decoding_settings --data PREPARED_DIR [--split validation] BUNDLE_DIR \\
        SETTING [SETTING ...]

A SETTING is `beam=4,length_penalty=1.0,no_repeat_ngram=3` (any of the three left out keeps the bundle's own). For
each it decodes the split (a run's `data/translation/mix`, validation by default: choose there, then read the test
split once) and the everyday probe with serving's own search (TranslationPredictor: the ONNX graphs and the numpy
beam search behind /translate, no torch), and prints corpus BLEU / chrF against the single reference per domain and
over all, the probe's against all its references, and how many outputs differ from the first setting's. Decoding
is deterministic, so two settings on the same bundle are paired on every sentence. Nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.contract.bundle import BundleError, load_bundle
from serving.translation import TranslationPredictor
from training.data.prepared import load_split
from training.data.translation.everyday_probe import multi_reference_scores, probe_rows
from training.experiments.shared_test_pairs import format_scores
from training.metrics.bleu import scores_by_domain


@dataclass(frozen=True)
class SearchSetting:
    beam: int | None = None
    length_penalty: float | None = None
    no_repeat_ngram: int | None = None

    def label(self, predictor: TranslationPredictor) -> str:
        beam = predictor.default_beam_size if self.beam is None else self.beam
        return f"beam {beam}, length penalty {predictor.length_penalty:g}, no repeat n-gram {predictor.no_repeat_ngram}"


def parse_setting(text: str) -> SearchSetting:
    """`beam=4,length_penalty=0.8,no_repeat_ngram=3` -> SearchSetting; a key outside the three is an error."""
    fields: dict[str, float | int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in ("beam", "length_penalty", "no_repeat_ngram"):
            raise argparse.ArgumentTypeError(f"{part!r}: expected beam=N, length_penalty=X or no_repeat_ngram=N")
        fields[key] = float(value) if key == "length_penalty" else int(value)
    return SearchSetting(**fields)  # type: ignore[arg-type]


def apply(predictor: TranslationPredictor, setting: SearchSetting, bundle_default: tuple[float, int]) -> int:
    """Sets the predictor's search to `setting` (the bundle's own where it is silent); returns the beam."""
    predictor.length_penalty = bundle_default[0] if setting.length_penalty is None else setting.length_penalty
    predictor.no_repeat_ngram = bundle_default[1] if setting.no_repeat_ngram is None else setting.no_repeat_ngram
    return predictor.default_beam_size if setting.beam is None else setting.beam


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.decoding_settings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="a run's prepared translation data")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("bundle", type=Path, metavar="BUNDLE_DIR", help="a translation bundle folder")
    parser.add_argument("settings", nargs="+", type=parse_setting, metavar="SETTING")
    args = parser.parse_args(argv)
    try:
        rows = load_split(args.data, args.split)
        predictor = TranslationPredictor(load_bundle(args.bundle, "translation"))
    except FileNotFoundError as e:
        print(f"error: {e.filename}: no such file; --data names a run's prepared folder", file=sys.stderr)
        return 2
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    probe = probe_rows()
    sources = [row["source"] for row in rows] + [row["es"] for row in probe]
    bundle_default = (predictor.length_penalty, predictor.no_repeat_ngram)
    print(f"{args.bundle}: {len(rows)} {args.split} pairs and {len(probe)} probe sentences")
    first: list[str] | None = None
    for setting in args.settings:
        try:
            beam = apply(predictor, setting, bundle_default)
            started = time.perf_counter()
            outputs = predictor.translate(sources, beam_size=beam)
        except ValueError as e:  # a beam the bundle does not allow
            print(f"error: {e}", file=sys.stderr)
            return 2
        seconds = time.perf_counter() - started
        split_out, probe_out = outputs[: len(rows)], outputs[len(rows) :]
        bleu, chrf = multi_reference_scores(probe_out, probe)
        changed = "" if first is None else f", {sum(a != b for a, b in zip(first, outputs))} outputs differ"
        first = outputs if first is None else first
        print(format_scores(setting.label(predictor), scores_by_domain(split_out, rows), rows))
        print(f"    probe {bleu:.1f} / {chrf:.1f}  ({seconds:.0f} s{changed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
