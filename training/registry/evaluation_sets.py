"""What the gate reads back of a run: the validation split it was selected on, its training texts' keys, and the
fingerprint of its data (training/tracking/evaluation_set.py writes them with every training run).

Runs from before evaluation sets were logged are read from the prepared data on this machine when its fingerprint
matches the run's data card.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from serving.contract.names import DATA_FINGERPRINT_TAG
from training.config import Workspace, from_dict
from training.data.prepared import load_split
from training.task_spec import TaskSpec
from training.tracking.evaluation_set import CARD_ARTIFACT, TRAIN_KEYS_ARTIFACT, VALIDATION_ARTIFACT, text_key


@dataclass(frozen=True)
class EvaluationSet:
    """A run's validation rows, the keys of its training texts, and where they were read from."""

    fingerprint: str
    rows: list[dict[str, Any]]
    train_keys: frozenset[str]
    origin: str


def data_fingerprint(client: MlflowClient, run_id: str) -> str:
    """The fingerprint of the prepared data a run trained on (its data card's), or "" if it logged none."""
    run = client.get_run(run_id)
    if run.data.tags.get(DATA_FINGERPRINT_TAG, "unknown") != "unknown":
        return run.data.tags[DATA_FINGERPRINT_TAG]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return str(
                json.loads(Path(client.download_artifacts(run_id, CARD_ARTIFACT, tmp)).read_text())["fingerprint"]
            )
    except (MlflowException, OSError, KeyError, ValueError):
        return ""


def data_change(client: MlflowClient, before_run: str, after_run: str) -> str:
    """One line for `make retrain`: whether the data a new run read is the data its champion read, and if not, which
    part of the data card moved (pipeline version, pinned input, preparation config)."""
    cards = []
    for run_id in (before_run, after_run):
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cards.append(json.loads(Path(client.download_artifacts(run_id, CARD_ARTIFACT, tmp)).read_text()))
        except (MlflowException, OSError, ValueError):
            return "the champion's data card is not logged: cannot tell whether the data changed"
    before, after = cards
    if before.get("fingerprint") == after.get("fingerprint"):
        return f"same prepared data as the champion (fingerprint {str(after.get('fingerprint'))[:12]})"
    moved = [key for key in ("pipeline_version", "input", "config") if before.get(key) != after.get(key)]
    return (
        f"the data changed since the champion: fingerprint {str(before.get('fingerprint'))[:12]} -> "
        f"{str(after.get('fingerprint'))[:12]} ({', '.join(moved) or 'card'} differ; see data/card.json of both runs)"
    )


def evaluation_set(client: MlflowClient, run_id: str, task: TaskSpec, ws: Workspace | None) -> EvaluationSet | None:
    fingerprint = data_fingerprint(client, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            validation = Path(client.download_artifacts(run_id, VALIDATION_ARTIFACT, tmp))
            keys = Path(client.download_artifacts(run_id, TRAIN_KEYS_ARTIFACT, tmp))
        except (MlflowException, OSError):
            pass
        else:
            rows = [json.loads(line) for line in gzip.decompress(validation.read_bytes()).decode().splitlines() if line]
            train_keys = frozenset(gzip.decompress(keys.read_bytes()).decode().split())
            return EvaluationSet(fingerprint, rows, train_keys, "logged with the run")
    return _from_prepared_data(client, run_id, task, fingerprint, ws)


def _from_prepared_data(
    client: MlflowClient, run_id: str, task: TaskSpec, fingerprint: str, ws: Workspace | None
) -> EvaluationSet | None:
    """A run from before evaluation sets were logged: the prepared data on this machine, if it is the run's."""
    if ws is None or not fingerprint:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            logged = json.loads(Path(client.download_artifacts(run_id, "config.json", tmp)).read_text())
        cfg = from_dict(task.config, logged)
    except (MlflowException, OSError, ValueError, TypeError, KeyError):
        return None
    prepared = task.find_prepared(cfg.data, ws)
    if prepared is None or prepared.card.get("fingerprint") != fingerprint:
        return None
    rows = load_split(prepared.dir, "validation")
    keys = frozenset(text_key(row[task.input_field]) for row in load_split(prepared.dir, "train"))
    return EvaluationSet(fingerprint, rows, keys, "prepared data with the run's fingerprint")
