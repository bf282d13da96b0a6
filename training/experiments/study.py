"""The sentiment study behind the table of docs/measured.md, "Sentiment: the study": the peer, each cell, each
technique, `default` and `full`, all on the same split, each an MLflow run you can open and compare (tag
`memoria.study`).

`python -m training study` trains every variant that has no finished run of the same config yet (so an interrupted
study resumes, and a re-run only re-measures), runs the TF-IDF peer, then exports each run's model the way
`make train` does (int8 where it keeps the validation score) and measures its served latency beside the
reference row (the `default` of before this study), interleaved in one process. It writes
reports/sentiment-study.md and .json.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.config import Workspace, apply_overrides
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.tasks.sentiment import SENTIMENT

STUDY_TASK = SENTIMENT.name  # the study compares sentiment variants only
STUDY_TAG = "memoria.study"
CONFIG_TAG = "memoria.study.config"
REPORT = Path("reports") / "sentiment-study"

# Every technique switched off, and the model `default` had before this study: the reference row.
ALL_OFF = (
    "ngrams.buckets=0",
    "ensemble.members=1",
    "ensemble.cells=",
    "word_dropout=0.0",
    "tune_offsets=false",
    "class_weighted_loss=true",
    "optim.weight_decay=0.01",
    "pretrain.minutes=0",
    "pretrain.sources=tweets",
    "lexicon=false",
    "lexicon_score=false",
    "distill.steps=0",
)
BEFORE = (
    *ALL_OFF,
    "model.cell=lstm",
    "model.embedding_dim=128",
    "model.hidden_size=256",
    "model.num_layers=1",
    "model.bidirectional=true",
    "model.dropout=0.3",
    "optim.lr=0.002",
    "optim.batch_size=64",
    "optim.max_epochs=6",
    "optim.max_minutes=5.0",
    "optim.patience=2",
)
NGRAMS = "ngrams.buckets=100000"
# Plain loss with per-class logit offsets tuned on validation, instead of class weights.
OFFSETS = ("class_weighted_loss=false", "tune_offsets=true")
# 1.5 minutes of language-model pretraining (tweets + English of the translation pairs), 3.5 of fine-tuning.
PRETRAIN = ("pretrain.minutes=1.5", "pretrain.sources=tweets,english", "optim.max_minutes=3.5")
# Three small members averaged, at the batch size and learning rate that suit them (the same 5-minute cap).
ENSEMBLE_3 = (
    *ALL_OFF,
    "ensemble.cells=lstm,gru,lstm",
    "model.embedding_dim=128",
    "model.hidden_size=128",
    "model.num_layers=1",
    "model.bidirectional=true",
    "model.dropout=0.3",
    "optim.lr=0.003",
    "optim.batch_size=128",
    "optim.max_epochs=6",
    "optim.max_minutes=5.0",
    "optim.patience=2",
)


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    preset: str = "default"
    overrides: tuple[str, ...] = ()

    def config(self):
        return apply_overrides(SENTIMENT.preset(self.preset), list(self.overrides))

    def command(self) -> str:
        """The `make train` line that trains this row alone (only the overrides that change the preset)."""
        base = SENTIMENT.preset(self.preset)
        last = {o.partition("=")[0]: o for o in self.overrides}  # a later override of a key replaces an earlier one
        changed = [o for o in last.values() if apply_overrides(base, [o]) != base]
        args = " ".join(f"--set {o}" for o in changed)
        return f"make train PRESET={self.preset}" + (f' ARGS="{args}"' if args else "")


REFERENCE = "lstm (default before)"
LEXICON_OFF = ("lexicon=false", "lexicon_score=false")
VARIANTS = (
    Variant(REFERENCE, "biLSTM 256, class-weighted loss: `default` before this study", overrides=BEFORE),
    Variant("+ n-gram branch", "hashed 1-3-gram bag (100k buckets) beside the biLSTM", overrides=(*BEFORE, NGRAMS)),
    Variant(
        "ensemble 3×128", "LSTM + GRU + LSTM members of 128 units averaged; batch 128, lr 3e-3", overrides=ENSEMBLE_3
    ),
    Variant(
        "ensemble 3×128, offsets",
        "the same, plain loss + per-class logit offsets tuned on validation",
        overrides=(*ENSEMBLE_3, *OFFSETS),
    ),
    Variant(
        "ensemble 3×128, offsets, weight decay 0.1",
        "the same with AdamW weight decay 0.1",
        overrides=(*ENSEMBLE_3, *OFFSETS, "optim.weight_decay=0.1"),
    ),
    Variant(
        "ensemble 3×128, batch 64",
        "GRU + LSTM + GRU of 128 units at the old batch 64 and lr 2e-3",
        overrides=(*BEFORE, "ensemble.cells=gru,lstm,gru", "model.hidden_size=128"),
    ),
    Variant(
        "ensemble 3×128, batch 64 + n-grams",
        "the same, each member with the n-gram branch",
        overrides=(*BEFORE, "ensemble.cells=gru,lstm,gru", "model.hidden_size=128", NGRAMS),
    ),
    Variant(
        "ensemble 3×128, batch 64 + LM pretraining",
        "the same, 1.5 min pretraining then 3.5 min fine-tuning",
        overrides=(*BEFORE, "ensemble.cells=gru,lstm,gru", "model.hidden_size=128", *PRETRAIN),
    ),
    Variant(
        "3×LSTM-128 + LM pretraining, offsets",
        "three LSTM members, 1.5 min pretraining, 3.5 min fine-tuning, offsets",
        overrides=(*ENSEMBLE_3, "ensemble.cells=lstm,lstm,lstm", *PRETRAIN, *OFFSETS),
    ),
    Variant("gru", "cell: GRU", overrides=(*BEFORE, "model.cell=gru")),
    Variant("rnn", "cell: vanilla RNN (tanh)", overrides=(*BEFORE, "model.cell=rnn")),
    Variant("peephole", "cell: LSTM with peepholes", overrides=(*BEFORE, "model.cell=peephole")),
    Variant("+ word dropout 0.1", "tokens -> [UNK] with p=0.1 while training", overrides=(*BEFORE, "word_dropout=0.1")),
    Variant(
        "offsets, no class weights",
        "plain loss, per-class logit offsets tuned on validation",
        overrides=(*BEFORE, *OFFSETS),
    ),
    Variant(
        "+ LM pretraining",
        "1.5 min next/previous-token pretraining (tweets + English of the translation pairs), then 3.5 min fine-tuning",
        overrides=(*BEFORE, *PRETRAIN),
    ),
    Variant("weight decay 0.1", "AdamW weight decay 0.01 -> 0.1", overrides=(*BEFORE, "optim.weight_decay=0.1")),
    Variant(
        "ensemble gru+lstm", "two members averaged, same 5-minute cap", overrides=(*BEFORE, "ensemble.cells=gru,lstm")
    ),
    # the presets as `make run` and `PRESET=full` train them: sized in epochs and steps, the minutes only a guard
    # (the ensemble row above is `default`'s training under the study's 5-minute cap)
    Variant(
        "default",
        "`PRESET=default`: the ensemble row's training, 6 epochs, 15-minute guard; VADER's lexicon and score",
        preset="default",
    ),
    # what each source of knowledge beyond the tweets adds to `default` (docs/measured.md, "Sentiment off the tweets")
    Variant("default, no lexicon", "`default` without VADER's lexicon and score", overrides=LEXICON_OFF),
    Variant("default, lexicon only", "`default` without the score in the heads", overrides=("lexicon_score=false",)),
    Variant(
        "default + distillation",
        "`default`, each member first taught VADER's labels on the English of the translation pairs (1,500 steps)",
        overrides=("distill.steps=1500",),
    ),
    Variant(
        "full",
        "`PRESET=full`: `default`'s recipe with five members (LSTM, GRU, LSTM, GRU, LSTM), 6 epochs",
        preset="full",
    ),
)


# Config fields added after the study's runs, with the value those runs had implicitly: left out of the digest at
# that value, so adding a field does not make every finished row look unrun (and `make study` retrain them all).
ADDED_SINCE = {
    ("optim", "devices"): 1,
    ("optim", "num_nodes"): 1,
    ("optim", "strategy"): "auto",
    ("optim", "accelerator"): "auto",
    ("optim", "max_steps"): 0,
    ("pretrain", "steps"): 0,
    ("optim", "time_aware_decay"): True,
    ("", "lexicon"): False,  # "": a top-level field
    ("", "lexicon_score"): False,
    ("distill", "steps"): 0,
    ("distill", "lr"): 2e-3,
    ("distill", "batch_size"): 64,
    ("distill", "max_texts"): 60000,
}


def config_digest(cfg: Any) -> str:
    """Identifies a row's run: its config and the data pipeline's version (a run on an older split never counts)."""
    from training.config import to_dict
    from training.data.sentiment.corpus import PIPELINE_VERSION

    config = to_dict(cfg)
    for (section, key), implicit in ADDED_SINCE.items():
        holder = config.get(section, {}) if section else config
        if holder.get(key, implicit) == implicit:
            holder.pop(key, None)
        if section and section in config and not config[section]:  # a section added whole, at its defaults
            config.pop(section)
    text = json.dumps(config, indent=2, sort_keys=True)  # as config.dumps writes it
    return hashlib.sha256(f"{text}|pipeline={PIPELINE_VERSION}".encode()).hexdigest()[:16]


def finished_run(ws: Workspace, variant: Variant) -> str | None:
    """The newest finished run of this variant with exactly this config, if any."""
    from training.tracking.store import use_store

    client = use_store(ws)
    experiment = client.get_experiment_by_name("sentiment")
    if experiment is None:
        return None
    digest = config_digest(variant.config())
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{CONFIG_TAG}` = '{digest}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def run_variants(ws: Workspace, names: list[str] | None = None, retrain: bool = False) -> dict[str, str]:
    """Run id per variant, training those without a finished run (or all, with `retrain`)."""
    from training.train.loop import train

    chosen = [v for v in VARIANTS if not names or v.name in names]
    run_ids = {}
    for variant in chosen:
        existing = None if retrain else finished_run(ws, variant)
        if existing:
            print(f"{variant.name}: reusing run {existing}", flush=True)
            run_ids[variant.name] = existing
            continue
        print(f"{variant.name}: training ({variant.what})", flush=True)
        cfg = variant.config()
        tags = {STUDY_TAG: variant.name, CONFIG_TAG: config_digest(cfg)}
        run_ids[variant.name] = train(SENTIMENT, cfg, ws, progress=False, tags=tags).run_id
    return run_ids


# --- measuring -------------------------------------------------------------------------------------------------


def paired_bootstrap(pred: np.ndarray, other: np.ndarray, gold: np.ndarray, resamples: int = 2000) -> dict[str, float]:
    """Macro-F1 of `pred` minus that of `other` on the same texts, with a 95% interval from resampling the texts
    (both models see the same resample each time, so what the texts share cancels out)."""
    from training.metrics.decision import macro_f1

    classes = int(max(gold.max(), pred.max(), other.max())) + 1
    rng = np.random.default_rng(20261127)
    diffs = np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, len(gold), len(gold))
        diffs[b] = macro_f1(pred[idx], gold[idx], classes) - macro_f1(other[idx], gold[idx], classes)
    low, high = np.percentile(diffs, [2.5, 97.5])
    point = macro_f1(pred, gold, classes) - macro_f1(other, gold, classes)
    return {"delta": float(point), "low": float(low), "high": float(high)}


def classify(predictor: Any, texts: list[str]) -> object:
    """One sentiment request: what serving's /predict runs for `texts`."""
    return predictor.probabilities(texts)


def median_ms(
    predictor: Any, texts: list[str], batch: int, calls: int, request: Callable[[Any, list[str]], object] = classify
) -> float:
    times = []
    for i in range(calls):
        start = (i * batch) % max(1, len(texts) - batch)
        chunk = texts[start : start + batch]
        began = time.perf_counter()
        request(predictor, chunk)
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def latency_ratios(
    predictors: dict[str, Any],
    texts: list[str],
    rounds: int = 3,
    request: Callable[[Any, list[str]], object] = classify,
    calls: tuple[int, int] = (200, 20),
) -> dict[str, dict[str, float]]:
    """Per variant, median latency (ms) of `request` at batch 1 and 32 (over `calls` requests of each) and its ratio
    to the reference row, measured in turns (reference, variant, reference, ...) so a busy moment of the machine hits
    both."""
    ratios: dict[str, dict[str, list[float]]] = {n: {"1": [], "32": []} for n in predictors}
    millis: dict[str, dict[str, list[float]]] = {n: {"1": [], "32": []} for n in predictors}
    reference = predictors[REFERENCE]
    for _ in range(rounds):
        for name, predictor in predictors.items():
            for batch, count in zip((1, 32), calls, strict=True):
                ref = median_ms(reference, texts, batch, count, request)
                own = median_ms(predictor, texts, batch, count, request)
                ratios[name][str(batch)].append(own / ref)
                millis[name][str(batch)].append(own)
    return {
        name: {f"ms_batch_{b}": statistics.median(millis[name][b]) for b in ("1", "32")}
        | {f"ratio_batch_{b}": statistics.median(ratios[name][b]) for b in ("1", "32")}
        for name in predictors
    }


def measure(
    ws: Workspace, run_ids: dict[str, str], peer: dict[str, Any], vader: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Test metrics, calibration, probe accuracies, served latency of each run, and its served graph's test
    macro-F1 against each peer's (TF-IDF, VADER), paired on the same texts."""
    from serving.contract.bundle import load_bundle
    from serving.sentiment import SentimentPredictor
    from training.data.sentiment.corpus import LABELS, find_prepared
    from training.export.bundle import export_bundle
    from training.model_folder import read_model_folder
    from training.tracking.store import use_store

    client = use_store(ws)
    probes = probe_sets()
    rows: dict[str, dict[str, Any]] = {}
    predictors = {}
    prepared = find_prepared(SENTIMENT.preset("default").data, ws)
    if prepared is None:
        raise RuntimeError("the sentiment split is not prepared: run `make data TASK=sentiment`")
    test_texts = [t for t, _ in prepared.pairs("test")]
    gold = np.array([LABELS.index(label) for _, label in prepared.pairs("test")])
    peer_predicted = np.array(peer["test_predicted"])
    vader_predicted = np.array(vader["test_predicted"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, run_id in run_ids.items():
            run = client.get_run(run_id)
            model_dir = Path(client.download_artifacts(run_id, "model", str(Path(tmp) / run_id)))
            model = read_model_folder(model_dir, SENTIMENT.config)
            report = export_bundle(SENTIMENT, model, Path(tmp) / run_id / "bundle", run_id, run.data.metrics, ws)
            predictor = SentimentPredictor(load_bundle(report.bundle_dir, "sentiment"))
            predictors[name] = predictor
            m = run.data.metrics
            quantization = report.manifest["quantization"]
            rows[name] = {
                "run_id": run_id,
                "test_macro_f1": m["test/macro_f1"],
                **{f"test_f1_{label}": m[f"test/f1_{label}"] for label in LABELS},
                "val_macro_f1": m["selection_score"],
                "ece_before": m.get("calibration/ece_before_test"),
                "ece_after": m.get("calibration/ece_after_test"),
                "temperature": m.get("calibration/temperature"),
                "epochs": m.get("epochs_trained"),
                "train_minutes": m.get("train_seconds", 0) / 60,
                "served": quantization.get("served", "fp32"),
                # the served graph's own test score (int8 moves a few labels); None where no int8 was scored
                "served_test_macro_f1": quantization.get(f"test_macro_f1_{quantization.get('served', 'fp32')}"),
                **{
                    f"{probe}_probe_accuracy": binary_accuracy(
                        predictor.probabilities([r["text"] for r in rows_]), [r["label"] for r in rows_], LABELS
                    )
                    for probe, rows_ in probes.items()
                },
                "vs_peer": paired_bootstrap(
                    predicted := predictor.probabilities(test_texts).argmax(1), peer_predicted, gold
                ),
                "vs_vader": paired_bootstrap(predicted, vader_predicted, gold),
            }
        for name, timing in latency_ratios(predictors, test_texts).items():
            rows[name].update(timing)
    return rows


def peer_row(ws: Workspace) -> dict[str, Any]:
    """The TF-IDF peer on the same test split and probes (training/peers/tfidf.py)."""
    from training.peers.tfidf import run_tfidf_baseline

    metrics = run_tfidf_baseline(SENTIMENT.preset("default"), ws)
    return _peer(ws, metrics) | {
        "val_macro_f1": metrics["val/macro_f1"],
        "ece_before": metrics.get("calibration/ece_test"),
    }


def vader_row(ws: Workspace) -> dict[str, Any]:
    """VADER on the same test split and probes (training/peers/vader.py)."""
    from training.peers.vader import run_vader_peer

    return _peer(ws, run_vader_peer(SENTIMENT.preset("default"), ws))


def _peer(ws: Workspace, metrics: dict[str, Any]) -> dict[str, Any]:
    """A peer run's row: its per-text test predictions (logged by every peer under the same artifact path), test
    scores and probe accuracies (`review_accuracy`, `contrast_accuracy`)."""
    from training.peers.tfidf import PREDICTIONS
    from training.tracking.store import use_store

    with tempfile.TemporaryDirectory() as tmp:
        saved = json.loads(Path(use_store(ws).download_artifacts(metrics["run_id"], PREDICTIONS, tmp)).read_text())
    return {
        "run_id": metrics["run_id"],
        "test_predicted": saved["predicted"],
        "test_macro_f1": metrics["test/macro_f1"],
        **{k.replace("/", "_"): v for k, v in metrics.items() if k.startswith("test/f1_")},
        **{k.removeprefix("probe/"): v for k, v in metrics.items() if k.startswith("probe/")},
    }


# --- the report ------------------------------------------------------------------------------------------------


def _delta(d: dict[str, float] | None) -> str:
    if d is None:
        return "–"
    return f"{100 * d['delta']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def _f(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def preset_mark(variant: Variant) -> str:
    """' (= `default`)' where a row's config is exactly a preset's, so the table says which row `make run` trains."""
    digest = config_digest(variant.config())
    marks = [name for name in ("default", "full") if config_digest(SENTIMENT.preset(name)) == digest]
    return "".join(f" (= `{name}`)" for name in marks)


def served(row: dict[str, Any]) -> str:
    """The served graph, with its own test macro-F1 where it is int8."""
    if row["served"] == "int8" and row.get("served_test_macro_f1") is not None:
        return f"int8 ({row['served_test_macro_f1']:.4f})"
    return row["served"]


def write_report(
    rows: dict[str, dict[str, Any]], peer: dict[str, Any], vader: dict[str, Any], out: Path = REPORT
) -> str:
    machine = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"

    def f1s(r: dict[str, Any]) -> str:
        return f"{_f(r['test_f1_negative'], 3)} / {_f(r['test_f1_neutral'], 3)} / {_f(r['test_f1_positive'], 3)}"

    lines = [
        "| row | what | val macro-F1 | test macro-F1 | served − TF-IDF, points [95% CI] | served − VADER, points "
        "[95% CI] | F1 neg / neu / pos | ECE before → after | review probe | contrast probe | served | "
        "latency ×ref (batch 1 / 32) | epochs (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| TF-IDF + LR (peer) | word 1-2 + char 2-5 grams, C on validation | {_f(peer['val_macro_f1'])} | "
        f"{_f(peer['test_macro_f1'])} | – | – | {f1s(peer)} | {_f(peer.get('ece_before'), 3)} | "
        f"{_f(peer.get('review_accuracy'), 3)} | {_f(peer.get('contrast_accuracy'), 3)} | sklearn | – | – |",
        f"| VADER (peer) | lexicon + rules, no training; compound ±0.05 | – | {_f(vader['test_macro_f1'])} | – | – | "
        f"{f1s(vader)} | – | {_f(vader.get('review_accuracy'), 3)} | {_f(vader.get('contrast_accuracy'), 3)} | "
        "vaderSentiment | – | – |",
    ]
    what = {v.name: v.what + preset_mark(v) for v in VARIANTS}
    for name, r in rows.items():
        lines.append(
            f"| {name} | {what[name]} | {_f(r['val_macro_f1'])} | {_f(r['test_macro_f1'])} | "
            f"{_delta(r.get('vs_peer'))} | {_delta(r.get('vs_vader'))} | {f1s(r)} | "
            f"{_f(r['ece_before'], 3)} → {_f(r['ece_after'], 3)} | {_f(r.get('review_probe_accuracy'), 3)} | "
            f"{_f(r.get('contrast_probe_accuracy'), 3)} | {served(r)} | "
            f"{r['ratio_batch_1']:.2f} / {r['ratio_batch_32']:.2f} | {_f(r['epochs'], 0)} ({r['train_minutes']:.1f}) |"
        )
    table = "\n".join(lines)
    commands = "\n".join(f"- {v.name}: `{v.command()}`" for v in VARIANTS if v.name in rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "peer": peer, "vader": vader, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(
        f"# Sentiment study\n\nMachine: {machine}. Produced by `make study` (python -m training study).\n\n{table}\n\n"
        f"Each row alone:\n\n{commands}\n\nPeers (TF-IDF, VADER): `make baseline`.\n"
    )
    return table


def run_study(ws: Workspace, names: list[str] | None = None, retrain: bool = False) -> str:
    """Train the chosen variants (all by default) that lack a finished run, then measure and report every variant
    that has one, so training one more row keeps the others in the table."""
    run_variants(ws, names, retrain)
    run_variants(ws, [REFERENCE])  # every latency is relative to it
    run_ids = {v.name: run_id for v in VARIANTS if (run_id := finished_run(ws, v))}
    peer, vader = peer_row(ws), vader_row(ws)
    return write_report(measure(ws, run_ids, peer, vader), peer, vader)
