"""Two or more translation bundles side by side, as serving runs them: the everyday probe's BLEU / chrF, the size of
the served graphs, and the served latency per request (beam search, what `POST /translate` runs) at batch 1 and 32
relative to the first bundle, measured in turns on the probe's sentences (training/experiments/study.py
`latency_ratios`), so a busy moment of the machine hits every bundle.

Usage: `python -m training.experiments.translation_bundles [--beam N] BUNDLE_DIR BUNDLE_DIR [...]` (the first is the
reference), e.g. the champion's bundle and a new run's from `mlruns/artifacts/translation/<run>/artifacts/bundles`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from serving.translation import TranslationPredictor
from training.data.translation.everyday_probe import multi_reference_scores, probe_rows
from training.experiments.side_by_side import graph_megabytes, load_predictors, with_reference
from training.experiments.study import latency_ratios

# A batch of 32 beam searches costs about 30 single requests: fewer calls keep a comparison to a few minutes.
CALLS = (60, 6)


def translate(predictor: TranslationPredictor, texts: list[str], beam: int | None) -> list[str]:
    return predictor.translate(texts, beam_size=beam)  # None: the bundle's own beam


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.translation_bundles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE_DIR", help="a translation bundle folder")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: each bundle's own)")
    args = parser.parse_args(argv)
    predictors = load_predictors(args.bundles, "translation", TranslationPredictor)
    if predictors is None:
        return 2
    rows = probe_rows()
    texts = [row["es"] for row in rows]
    try:
        scores = {name: multi_reference_scores(translate(p, texts, args.beam), rows) for name, p in predictors.items()}
    except ValueError as e:  # a beam a bundle does not allow; the message names the limit
        print(f"error: --beam: {e}", file=sys.stderr)
        return 2
    request = partial(translate, beam=args.beam)
    timing = list(latency_ratios(with_reference(predictors), texts, request=request, calls=CALLS).values())
    for (name, (bleu, chrf)), cost, path in zip(scores.items(), timing, args.bundles, strict=True):
        print(f"{name}: served graphs {graph_megabytes(path):.1f} MB, everyday probe BLEU {bleu:.1f} / chrF {chrf:.1f}")
        print(
            f"  latency x the first bundle: batch 1 {cost['ratio_batch_1']:.2f} ({cost['ms_batch_1']:.1f} ms), "
            f"batch 32 {cost['ratio_batch_32']:.2f} ({cost['ms_batch_32']:.0f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
