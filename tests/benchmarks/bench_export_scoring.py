"""Export's int8-or-fp32 scoring of a sentiment bundle (training/export/quantize.py, `score_graphs`): the four
predictions (fp32 and int8 graphs, validation and test splits) side by side on one-thread sessions, as export runs
them, against the same four in turn on onnxruntime's default threads, in alternating rounds within one process; both
must give the same scores.

Usage: `python -m tests.benchmarks.bench_export_scoring BUNDLE_DIR` (a sentiment bundle with `classifier_fp32` and
`classifier_int8`, e.g. one under mlruns/artifacts/sentiment/<run>/artifacts/bundles/), after `make data`;
MEMORIA_HOME locates the prepared splits of the `default` preset.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from training.config import Workspace
from training.data.prepared import load_split
from training.export.quantize import classifier_predictor, macro_f1, predict_ids, score_graphs
from training.tasks import preset, task_named

ROUNDS = 2


def in_turn(graphs: dict[str, Path], tokenizer: Path, labels: list[str], max_tokens: int, splits: dict) -> dict:
    """The four predictions one after another, each session on onnxruntime's default threads (before: export)."""
    scores = {}
    for name, graph in graphs.items():
        predictor = classifier_predictor(graph, tokenizer, labels, max_tokens, int8=name == "int8")
        for split, short in (("validation", "val"), ("test", "test")):
            rows = splits[split]
            predicted = predict_ids(predictor, [t for t, _ in rows])
            scores[f"{short}_macro_f1_{name}"] = macro_f1(labels, [label for _, label in rows], predicted)
    return scores


def main(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    graphs = {name: bundle / manifest["graphs"][f"classifier_{name}"] for name in ("fp32", "int8")}
    tokenizer = bundle / manifest["tokenizers"]["text"]
    labels, max_tokens = list(manifest["labels"]), int(manifest["max_input_tokens"])
    cfg = preset("sentiment", "default")
    prepared = task_named("sentiment").find_prepared(cfg.data, Workspace.from_env())
    if prepared is None:
        raise SystemExit("no prepared sentiment data in MEMORIA_HOME: make data TASK=sentiment")
    splits = {s: [(r["text"], r["label"]) for r in load_split(prepared.dir, s)] for s in ("validation", "test")}
    seconds: dict[str, list[float]] = {"side by side, one thread each (export)": [], "in turn, default threads": []}
    for _ in range(ROUNDS):
        start = time.perf_counter()
        together = score_graphs(graphs, tokenizer, labels, max_tokens, splits)
        seconds["side by side, one thread each (export)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        alone = in_turn(graphs, tokenizer, labels, max_tokens, splits)
        seconds["in turn, default threads"].append(time.perf_counter() - start)
        assert all(together[key] == value for key, value in alone.items()), "the two ways scored differently"
    texts = sum(len(rows) for rows in splits.values())
    print(f"{platform.machine()}, {texts} texts x 2 graphs; seconds per scoring, {ROUNDS} rounds:")
    for name, values in seconds.items():
        print(f"  {name}: {', '.join(f'{s:.1f}' for s in values)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
