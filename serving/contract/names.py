"""Names both sides must spell the same way, each defined once: the tasks, the registry's alias and version tags,
the MLflow run tags memoria writes, the experiments it keeps, and where the local store is by default."""

from __future__ import annotations

import os
from pathlib import Path

# The tasks a bundle can serve; training's task table (training/tasks/) has one entry per name.
TASKS = ("sentiment", "translation")

# --- registry: the alias serving follows and what each registered version carries --------------------------------
CHAMPION = "champion"
DIGEST_TAG = "memoria.bundle_sha256"  # on a version: the sha256 of its bundle's manifest, checked before serving
PREVIOUS_TAG = "memoria.previous_champion"  # on a version: the version that was champion before it
ROLLED_BACK_TAG = "memoria.rolled_back"  # on a version the alias was rolled back from: never auto-promoted again
# The promotion lock (training/registry/promotion_lock.py): a registered model "<task>.promotion-lock" whose versions
# are tickets; a ticket says whose it is and carries a heartbeat counter that its holder bumps while it lives.
PROMOTION_LOCK_SUFFIX = ".promotion-lock"
LOCK_OWNER_TAG = "memoria.lock.owner"
LOCK_HEARTBEAT_TAG = "memoria.lock.heartbeat"

# --- run tags ----------------------------------------------------------------------------------------------------
TASK_TAG = "memoria.task"
PRESET_TAG = "memoria.preset"
CUT_SHORT_TAG = "memoria.cut_short"  # "true": the wall-clock guard stopped the run before its preset's work was done
KIND_TAG = "memoria.kind"
PEER_KIND = "baseline"  # KIND_TAG of a peer run (TF-IDF, Apertium): never registered, the model card shows it
DATA_FINGERPRINT_TAG = "memoria.data_fingerprint"  # the prepared data's fingerprint (its data card's)
DATA_SHA256_TAG = "memoria.data_sha256"
GIT_COMMIT_TAG = "memoria.git_commit"
GIT_DIRTY_TAG = "memoria.git_dirty"
GIT_PATCH_TAG = "memoria.git_patch_sha256"
ENV_TAG_PREFIX = "memoria.env."  # + package name: its version
SERVED_PRECISION_TAG = "memoria.served_precision"  # on a sentiment run: "int8" or "fp32", the graph its bundle serves
QUANTIZATION_REASON_TAG = "memoria.quantization_reason"
GATE_VERDICT_TAG = "memoria.gate.verdict"
GATE_REASON_TAG = "memoria.gate.reason"
GATE_METHOD_TAG = "memoria.gate.method"
GATE_CHALLENGER_FINGERPRINT_TAG = "memoria.gate.challenger_fingerprint"
GATE_CHAMPION_FINGERPRINT_TAG = "memoria.gate.champion_fingerprint"
GATE_CONCURRENCY_TAG = "memoria.gate.concurrency"  # who the gate waited behind for the lock, whom it re-gated against

# --- the alias history: one small run per move of the champion alias ----------------------------------------------
ALIAS_HISTORY_EXPERIMENT = "memoria-alias-history"
ALIAS_TAG = "memoria.alias"
FROM_VERSION_TAG = "memoria.from_version"
TO_VERSION_TAG = "memoria.to_version"
REASON_TAG = "memoria.reason"
USER_TAG = "memoria.user"
HOST_TAG = "memoria.host"

# --- production: `make drift` runs (training/production/drift_report.py) -----------------------------------------
DRIFT_EXPERIMENT = "memoria-drift"
FEEDBACK_USED_TAG = "memoria.feedback.used"  # on a retrain run and its alias move: corrections added to training
FEEDBACK_HELD_OUT_TAG = "memoria.feedback.held_out"  # corrections kept apart as an extra evaluation set

# --- where the local store is ------------------------------------------------------------------------------------


def default_tracking_uri(root: str | os.PathLike[str] | None = None) -> str:
    """SQLite in <root>/mlruns (root: $MEMORIA_HOME or the current directory); MLflow 3.17 refuses its file store."""
    home = Path(root or os.environ.get("MEMORIA_HOME") or Path.cwd())
    return f"sqlite:///{(home / 'mlruns' / 'mlflow.db').resolve()}"


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the local default."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
