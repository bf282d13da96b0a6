"""`make drift TASK=...`: the inference log's window against the champion bundle's training profile, logged to
MLflow as a run of its own (experiment `memoria-drift`).

The same distances as the service's gauges (serving/drift.py: the same bins, the same Jensen-Shannon distance),
over the last `window` logged texts the champion answered (all replicas and workers together, where each gauge
sees one worker), with a figure per signal, the most novel words (only from records that kept their text:
MEMORIA_LOG_TEXT), and the feedback disagreement rate for that model.

Why not Evidently: evidently 0.7.23 requires pandas, scipy, statsmodels, scikit-learn, plotly, nltk, litestar,
uvicorn and a telemetry client among 26 direct dependencies (far past the training side's budget for a report),
and computes its own tests on raw columns; the alert fires on the service's distances, so the report must compute
exactly those, which the shared contract module already does in a few lines.
"""

from __future__ import annotations

import collections
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serving.contract.drift_profile import DriftProfile, load_profile, signal_values
from serving.contract.drift_signals import js_distance, novel_words
from serving.contract.names import DRIFT_EXPERIMENT, TASK_TAG
from serving.contract.production import production_dir, read_feedback, read_log
from serving.contract.registry import ServedBundle, champion_bundle
from training.config import Workspace

DEFAULT_WINDOW = 5000
TOP_WORDS = 20


@dataclass
class DriftReport:
    task: str
    model: str
    model_version: str | None
    texts: int  # logged texts of this model in the window
    distances: dict[str, float]
    shares: dict[str, dict[str, Any]]  # signal -> bins, reference and window shares, reference split
    novel_words: list[tuple[str, int]]
    texts_kept: int  # of `texts`, how many kept their raw text (novel words come only from those)
    feedback: int
    disagreement_rate: float | None
    unavailable: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{self.task}: {self.model}: {self.texts} logged texts in the window"]
        for signal, distance in sorted(self.distances.items()):
            out.append(f"  {signal:<13} JS distance {distance:.3f}" + ("  (over 0.3: alert)" if distance > 0.3 else ""))
        for signal, reason in sorted(self.unavailable.items()):
            out.append(f"  {signal:<13} unavailable: {reason}")
        rate = "none yet" if self.disagreement_rate is None else f"{self.disagreement_rate:.1%}"
        out.append(f"  feedback: {self.feedback} correction(s), disagreement {rate}")
        if self.novel_words:
            out.append("  most novel words: " + ", ".join(f"{w} ({n})" for w, n in self.novel_words))
        else:
            out.append(f"  most novel words: none ({self.texts_kept} of the texts kept their text: MEMORIA_LOG_TEXT)")
        return out


def drift_report(served: ServedBundle, root: Path | None = None, window: int = DEFAULT_WINDOW) -> DriftReport:
    bundle = served.bundle
    profile = load_profile(bundle)
    if profile is None:
        raise ValueError(f"{served.label} has no drift profile (exported before profiles existed): retrain it first")
    records = [r for r in read_log(root, bundle.task) if r.get("model_digest") == bundle.digest]
    records = sorted(records, key=lambda r: r["time"])[-window:]
    distances, shares, unavailable = _compare(profile, records)
    counter: collections.Counter[str] = collections.Counter()
    kept = [r["text"] for r in records if r.get("text")]
    for text in kept:
        counter.update(novel_words(text, profile.vocabulary))
    feedback = [f for f in read_feedback(bundle.task, root) if f.model_digest == bundle.digest]
    return DriftReport(
        task=bundle.task,
        model=served.label,
        model_version=served.registry_version,
        texts=len(records),
        distances=distances,
        shares=shares,
        novel_words=counter.most_common(TOP_WORDS),
        texts_kept=len(kept),
        feedback=len(feedback),
        disagreement_rate=sum(not f.agreed for f in feedback) / len(feedback) if feedback else None,
        unavailable={**profile.unavailable, **unavailable},
    )


def _compare(
    profile: DriftProfile, records: list[dict[str, Any]]
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, str]]:
    distances, shares, unavailable = {}, {}, {}
    values = [signal_values(r) for r in records]
    for signal, ref in profile.signals.items():
        counts = [0] * len(ref.bins)
        for v in values:
            index = None if v.get(signal) is None else ref.bin_of(signal, v[signal])
            if index is not None:
                counts[index] += 1
        if not sum(counts):
            unavailable[signal] = "no logged text of this model carries it"
            continue
        distances[signal] = round(js_distance(counts, ref.counts), 6)
        shares[signal] = {
            "split": ref.split,
            "bins": ref.bins,
            "reference": [c / sum(ref.counts) for c in ref.counts],
            "window": [c / sum(counts) for c in counts],
        }
    return distances, shares, unavailable


def run_drift_report(ws: Workspace, task: str, window: int = DEFAULT_WINDOW) -> DriftReport:
    """The champion's report, logged as a run of the `memoria-drift` experiment (metrics, figures, report.json)."""
    import mlflow

    from training.plots import drift_signal_figure
    from training.tracking.store import use_store

    client = use_store(ws)
    with tempfile.TemporaryDirectory() as cache:
        served = champion_bundle(task, ws.tracking_uri, Path(cache))
        report = drift_report(served, production_dir(), window)
    mlflow.set_experiment(DRIFT_EXPERIMENT)
    with mlflow.start_run(run_name=f"drift-{task}-v{report.model_version}") as run:
        mlflow.set_tags({TASK_TAG: task, "memoria.model": report.model, "memoria.model_version": report.model_version})
        mlflow.log_params({"window": window, "log_dir": str(production_dir())})
        mlflow.log_metrics({f"drift/{s}": d for s, d in report.distances.items()})
        mlflow.log_metrics({"drift/texts": report.texts, "feedback/count": report.feedback})
        if report.disagreement_rate is not None:
            mlflow.log_metric("feedback/disagreement_rate", report.disagreement_rate)
        for signal, s in report.shares.items():
            figure = drift_signal_figure(
                signal, s["bins"], s["reference"], s["window"], report.distances[signal], s["split"]
            )
            mlflow.log_figure(figure, f"drift/{signal}.png")
        mlflow.log_text(json.dumps(asdict(report), indent=2), "drift/report.json")
        mlflow.log_text("\n".join(report.lines()) + "\n", "drift/report.txt")
    client.get_run(run.info.run_id)  # written: a store that refused would have raised
    return report
