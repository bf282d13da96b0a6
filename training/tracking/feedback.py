"""A run's use of production feedback (training/data/feedback.py), recorded with the run: how many corrections it
trained on and held out (tags + metrics), and the held-out corrections themselves (`data/feedback_holdout.jsonl`),
which the gate scores the challenger and the champion on (training/registry/gate.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from serving.contract.names import FEEDBACK_HELD_OUT_TAG, FEEDBACK_USED_TAG
from training.data.feedback import FeedbackMerge

HOLDOUT_ARTIFACT = "data/feedback_holdout.jsonl"


def log_feedback(merge: FeedbackMerge) -> None:
    """Inside a training run."""
    mlflow.set_tags({FEEDBACK_USED_TAG: str(merge.used), FEEDBACK_HELD_OUT_TAG: str(len(merge.held_out))})
    mlflow.log_metrics({k: float(v) for k, v in merge.metrics().items()})
    mlflow.log_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in merge.held_out), HOLDOUT_ARTIFACT)


def feedback_holdout(client: MlflowClient, run_id: str) -> list[dict[str, Any]] | None:
    """The held-out corrections a run logged, or None for a run that did not train on feedback."""
    if FEEDBACK_USED_TAG not in client.get_run(run_id).data.tags:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(run_id, HOLDOUT_ARTIFACT, tmp))
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
