"""`make drift`: the inference log's window against the champion's training profile, through the CLI, logged to
MLflow as its own run. The log is written here in the service's format (serving/inference_log.py) so that the
window is known exactly: first the profile itself (distance 0), then a shifted one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from serving.contract.drift_profile import BOUNDS, load_profile
from serving.contract.names import DRIFT_EXPERIMENT
from serving.contract.production import Feedback, open_feedback, store_feedback
from serving.contract.registry import champion_bundle
from tests.serving_harness import cli, copy_store

COLUMN = {"novelty": "novelty", "confidence": "confidence", "input_tokens": "input_tokens", "language": "language"}


def _value(signal: str, bins: list[str], index: int) -> float | str:
    """A value that lands in bin `index` of `signal` (its bound; past the last bound for +Inf)."""
    if signal not in BOUNDS:
        return bins[index]
    bounds = BOUNDS[signal]
    return bounds[index] if index < len(bounds) else bounds[-1] * 2


def _records_like_the_profile(profile, digest: str) -> list[dict]:
    """One record per reference observation of the longest signal, every signal's values in its own proportions."""
    columns = {}
    for signal, ref in profile.signals.items():
        columns[signal] = [_value(signal, ref.bins, i) for i, c in enumerate(ref.counts) for _ in range(c)]
    n = max(len(v) for v in columns.values())
    records = []
    for k in range(n):
        record = {
            "request_id": f"{k:032x}",
            "index": 0,
            "time": f"2026-12-04T10:00:{k % 60:02d}.{k:06d}+00:00",
            "task": "sentiment",
            "model_digest": digest,
            "text": None,
        }
        for signal, values in columns.items():
            record[COLUMN.get(signal, "prediction")] = values[k] if k < len(values) else None
        records.append(record)
    return records


def _write_log(production: Path, replica: str, records: list[dict]) -> None:
    folder = production / "inference-log" / replica / "inference-sentiment" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.1.log", "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def test_drift_report_measures_the_window_against_the_profile_and_logs_a_run(
    store: dict[str, str], tmp_path: Path
) -> None:
    store = copy_store(store, tmp_path / "store")  # the drift runs go into a copy, not the session's registry
    uri = store["MLFLOW_TRACKING_URI"]
    served = champion_bundle("sentiment", uri, Path(tempfile.mkdtemp(dir=tmp_path)))
    profile = load_profile(served.bundle)
    assert profile is not None and {"novelty", "confidence", "label_mix", "input_tokens"} <= set(profile.signals)
    production = tmp_path / "production"
    env = {**store, "MEMORIA_PRODUCTION_DIR": str(production)}

    # Given a window distributed exactly like the profile (and another model's records, which must not count)
    digest = served.bundle.digest
    _write_log(production, "a", _records_like_the_profile(profile, digest))
    shifted_other_model = [
        {
            "request_id": "f" * 32,
            "index": 0,
            "time": "2026-12-04T09:00:00+00:00",
            "task": "sentiment",
            "model_digest": "0" * 64,
            "novelty": 1.0,
            "text": "zzz",
        }
    ] * 50
    _write_log(production, "b", shifted_other_model)
    out = cli(env, "drift", "--task", "sentiment")
    assert "novelty       JS distance 0.000" in out and "alert" not in out, out

    # When many texts full of words the training split never had arrive (with their text kept), and feedback says
    # one of two answers was wrong
    novel = [
        {
            "request_id": f"{k:032x}",
            "index": 0,
            "time": f"2026-12-04T11:00:{k % 60:02d}+00:00",
            "task": "sentiment",
            "model_digest": digest,
            "novelty": 1.0,
            "confidence": 0.99,
            "prediction": "neutral",
            "input_tokens": 200,
            "language": "es",
            "text": "zorglub vuelo zorglub",
        }
        for k in range(3000)
    ]
    _write_log(production, "b", novel)
    db = open_feedback(production)
    for i, agreed in enumerate((True, False)):
        store_feedback(
            db,
            Feedback(
                f"{i:032x}", 0, "sentiment", "1", digest, "neutral", "neutral" if agreed else "negative", None, agreed
            ),
            "2026-12-04T11:00:00+00:00",
        )
    db.close()
    out = cli(env, "drift", "--task", "sentiment")

    # Then the distances cross the alert threshold, the novel words and the disagreement rate are reported
    assert "novelty       JS distance" in out and "(over 0.3: alert)" in out, out
    assert "most novel words: zorglub (6000), vuelo (3000)" in out, out
    assert "feedback: 2 correction(s), disagreement 50.0%" in out, out
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(DRIFT_EXPERIMENT).experiment_id], order_by=["attributes.start_time DESC"]
    )
    assert len(runs) >= 2
    latest = runs[0]
    assert latest.data.metrics["drift/novelty"] > 0.3 and latest.data.metrics["feedback/disagreement_rate"] == 0.5
    assert runs[1].data.metrics["drift/novelty"] == 0.0
    artifacts = {a.path for a in client.list_artifacts(latest.info.run_id, "drift")}
    assert {"drift/novelty.png", "drift/report.json", "drift/report.txt"} <= artifacts
