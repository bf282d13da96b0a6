"""The model card of a served bundle (GET /models): what it is, what it learned from, how good it is, why it serves.

From the bundle's manifest: digest, creation time, source run, architecture, the training data summary (written at
export, training/export/data_summary.py), the test metrics and the export's parity report. From the MLflow store,
when the
bundle is a registry champion: the peer's test metrics (the newest baseline run on the same prepared data: TF-IDF +
logistic regression for sentiment, Apertium for translation; `make baseline TASK=...`) and when and why the alias
reached this version (the alias history that training/registry/alias_history.py records). What cannot be known, e.g. the
reason a bundle given by path is served, says "unknown" and why, instead of being left out.

A card is built once per served bundle (`ModelCards` keys them by the `X-Memoria-Model` label, which names the
version and digest), on the first request that asks, off the event loop: a few MLflow queries, never per request.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from serving.contract.names import (
    ALIAS_HISTORY_EXPERIMENT,
    DATA_FINGERPRINT_TAG,
    FROM_VERSION_TAG,
    GATE_REASON_TAG,
    KIND_TAG,
    PEER_KIND,
    REASON_TAG,
    TASK_TAG,
    TO_VERSION_TAG,
)
from serving.contract.registry import ServedBundle

log = logging.getLogger("bentoml.memoria")

UNKNOWN = "unknown"
TEST_PREFIX = "test/"
LIMITS = ("max_input_tokens", "max_output_tokens", "default_beam_size", "max_beam_size")
KEPT_CARDS = 4  # a swap adds a card; the old one may still answer a request or two, older ones are dropped


def model_card(served: ServedBundle, uri: str | None) -> dict[str, Any]:
    """The card of `served`; `uri` is the MLflow store to read history and peers from (None: none to ask)."""
    manifest = served.bundle.manifest
    metrics = manifest.get("metrics", {})
    data = manifest.get("data") or {"available": False, "reason": "the bundle was exported before data summaries"}
    card: dict[str, Any] = {
        "task": served.bundle.task,
        "model": served.label,
        "origin": served.origin,
        "registry_version": served.registry_version or UNKNOWN,
        "bundle_digest": served.bundle.digest,
        "bundle_created_at": manifest.get("created_at", UNKNOWN),
        "source_run_id": manifest.get("source_run_id", UNKNOWN),
        "architecture": _architecture(manifest),
        "limits": {k: manifest[k] for k in LIMITS if k in manifest},
        "data": data,
        "drift_profile": _drift_profile(manifest),
        "evaluation": {"split": "test", "model": _test_metrics(metrics), "peer": _unknown("no MLflow store to ask")},
        "parity": manifest.get("parity", UNKNOWN),
        "champion": {"since": UNKNOWN, "reason": UNKNOWN, "note": f"served from {served.origin}: not a registry alias"},
    }
    if served.origin == "registry" and uri:
        _from_store(card, served, uri, data.get("fingerprint"))
    return _without_local_paths(card)


def _without_local_paths(value: Any) -> Any:
    """The card is open to anyone who can reach the service: a string that is an absolute file path (a hyperparameter
    naming a local file, say) is replaced by its last part, which still says what it was."""
    if isinstance(value, dict):
        return {k: _without_local_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_local_paths(v) for v in value]
    if isinstance(value, str) and PurePosixPath(value).is_absolute() and value.count("/") > 1:
        return f".../{PurePosixPath(value).name}"
    return value


def _architecture(manifest: dict[str, Any]) -> dict[str, Any]:
    """The model's hyperparameters (config.model, scalars only), its layout and, for sentiment, which graph serves."""
    model = manifest.get("config", {}).get("model", {})
    out: dict[str, Any] = {k: v for k, v in model.items() if isinstance(v, str | int | float | bool)}
    if "cells" in manifest:
        out["cells"] = manifest["cells"]
    if "architecture" in manifest:
        out["layout"] = manifest["architecture"]
    quantization = manifest.get("quantization", {})
    if quantization:  # its decision, not its latency tables
        out["served_graph"] = {k: quantization[k] for k in ("served", "reason") if k in quantization}
    return out


def _test_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in sorted(metrics.items()) if k.startswith(TEST_PREFIX)}


def _drift_profile(manifest: dict[str, Any]) -> dict[str, Any]:
    """Whether the service can measure drift for this bundle (serving/drift.py), and if not, why."""
    if manifest.get("drift_profile"):
        return {"available": True, "file": manifest["drift_profile"]}
    reason = manifest.get("drift_profile_missing", "the bundle was exported before drift profiles existed")
    return {"available": False, "reason": reason}


def _unknown(reason: str) -> dict[str, str]:
    return {"status": UNKNOWN, "reason": reason}


def _from_store(card: dict[str, Any], served: ServedBundle, uri: str, fingerprint: str | None) -> None:
    """Champion history and peer metrics; a store that fails leaves "unknown" and a note, never a failed card."""
    from mlflow import MlflowClient  # imported here: a path-only deployment never needs MLflow

    task, version = served.bundle.task, served.registry_version
    # An error's words (a store URI with user@host, a file path) go to the server log; the open card says only what
    # could not be read.
    try:
        client = MlflowClient(tracking_uri=uri)
    except Exception as e:
        log.warning("model card of %s: MLflow store unreadable: %s: %s", served.label, type(e).__name__, e)
        card["champion"]["note"] = "alias history unreadable (see the server log)"
        card["evaluation"]["peer"] = _unknown("peer runs unreadable (see the server log)")
        return
    try:
        card["champion"] = _champion_since(client, task, str(version))
    except Exception as e:
        log.warning("model card of %s: alias history unreadable: %s: %s", served.label, type(e).__name__, e)
        note = "alias history unreadable (see the server log)"
        card["champion"] = {"since": UNKNOWN, "reason": UNKNOWN, "note": note}
    try:
        if not fingerprint and card["source_run_id"] != UNKNOWN:
            fingerprint = client.get_run(card["source_run_id"]).data.tags.get(DATA_FINGERPRINT_TAG)
        card["evaluation"]["peer"] = _peer(client, task, fingerprint, card["evaluation"]["model"])
    except Exception as e:
        log.warning("model card of %s: peer runs unreadable: %s: %s", served.label, type(e).__name__, e)
        card["evaluation"]["peer"] = _unknown("peer runs unreadable (see the server log)")


def _champion_since(client: Any, task: str, version: str) -> dict[str, Any]:
    """The newest alias move onto `version`: when, why (promoted, forced, rolled back) and the gate's words."""
    exp = client.get_experiment_by_name(ALIAS_HISTORY_EXPERIMENT)
    runs = []
    if exp is not None:
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{TASK_TAG}` = '{task}' and tags.`{TO_VERSION_TAG}` = '{version}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    if not runs:
        return {"since": UNKNOWN, "reason": UNKNOWN, "note": f"no alias move to v{version} in the alias history"}
    run = runs[0]
    tags = run.data.tags
    return {
        "since": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(timespec="seconds"),
        "reason": tags.get(REASON_TAG, UNKNOWN),
        "from_version": tags.get(FROM_VERSION_TAG) or None,
        "gate": tags.get(GATE_REASON_TAG, ""),
        # Who moved it (user@host) stays in the alias history run, for those who can read the registry: not here.
        "history_run_id": run.info.run_id,
    }


def _peer(client: Any, task: str, fingerprint: str | None, model: dict[str, float]) -> dict[str, Any]:
    """The newest finished baseline run of the task on the same prepared data, and the test metrics both have."""
    if not fingerprint:
        return _unknown("the served model's training data fingerprint is unknown")
    exp = client.get_experiment_by_name(task)
    runs = []
    if exp is not None:
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=(
                f"tags.`{KIND_TAG}` = '{PEER_KIND}' and tags.`{DATA_FINGERPRINT_TAG}` = '{fingerprint}' "
                "and attributes.status = 'FINISHED'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    if not runs:
        return _unknown(f"no peer run on the same data: make baseline TASK={task}")
    run = runs[0]
    peer = _test_metrics(run.data.metrics)
    return {
        "status": "known",
        "name": run.data.params.get("model", run.info.run_name),
        "run_id": run.info.run_id,
        "metrics": peer,
        "model_minus_peer": {k: model[k] - peer[k] for k in model if k in peer},
    }


class ModelCards:
    """Cards by served label, built on first ask. Thread-safe: requests ask from worker threads."""

    def __init__(self) -> None:
        self._cards: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def card(self, served: ServedBundle, uri: str | None) -> dict[str, Any]:
        with self._lock:
            cached = self._cards.get(served.label)
            if cached is None:
                cached = model_card(served, uri)
                self._cards[served.label] = cached
                while len(self._cards) > KEPT_CARDS:
                    self._cards.pop(next(iter(self._cards)))
                log.info("model card built for %s", served.label)
            return cached
