"""MLflow plumbing shared by every run: store location, experiment, run start with the whole config logged."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from serving.contract.store_location import relocate_if_moved
from training.config import Workspace, flatten, to_dict
from training.tracking.provenance import environment

# The score a run is ranked by, whatever its task: export picks the run with the highest one and promotion
# compares it with the champion's. Each task logs which metric it copied into it (param `selection_metric`).
SELECTION_SCORE = "selection_score"
# MLflow 3's UI opens an experiment without this tag in its GenAI view ("Traces: 0"); tagged as model training,
# it opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def runs_page_links(client: MlflowClient, base_url: str) -> list[str]:
    """A link to each memoria experiment's runs table. MLflow 3.17.2's UI ignores `mlflow.experimentKind` when it
    routes (its GenAI / Model training switch decides, GenAI until a browser has chosen otherwise), so a plain link
    lands on an empty traces view; `workflowType=machine_learning` in the link opens the runs."""
    experiments = client.search_experiments(filter_string=f"tags.`{EXPERIMENT_KIND_TAG}` = '{MODEL_TRAINING}'")
    return [
        f"{exp.name}: {base_url}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"
        for exp in sorted(experiments, key=lambda e: e.name)
    ]


def use_store(ws: Workspace) -> MlflowClient:
    """Point MLflow at the workspace's store (SQLite in mlruns/ by default) and return a client for it."""
    if ws.tracking_uri.startswith("sqlite:///"):
        Path(ws.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    relocate_if_moved(ws.tracking_uri)  # a copied or moved store keeps its artifacts reachable
    share_sqlite(ws.tracking_uri)
    mlflow.set_tracking_uri(ws.tracking_uri)
    return MlflowClient(tracking_uri=ws.tracking_uri)


def share_sqlite(tracking_uri: str) -> None:
    """Put a local SQLite store in WAL mode, which the file keeps for every later connection: training writes,
    while serving polls the champion alias and `make ui` browses, and in the default rollback-journal mode a writer
    committing locks readers out (a service's poll then fails with "database is locked"); in WAL mode readers
    never wait for a writer and a writer never waits for readers. Writers still queue: two trainings at once wait
    for each other up to the driver's busy timeout, which Python's sqlite3 sets to 5 s for every connection
    MLflow's engine opens (`PRAGMA busy_timeout` reads 5000). Training does this, not serving: serving only reads."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            db.execute("PRAGMA journal_mode=WAL")


def experiment_id(client: MlflowClient, ws: Workspace, name: str) -> str:
    """Get or create the experiment; artifacts go under <root>/mlruns/artifacts/<name>, or where a tracking
    server puts them."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:  # a store from before the tag: mark it once
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        return exp.experiment_id
    location = None
    if not ws.tracking_uri.startswith(("http://", "https://")):
        location = (ws.mlruns / "artifacts" / name).resolve().as_uri()
    # A tracking server chooses (with --serve-artifacts: `mlflow-artifacts:/...`, stored behind the server): a
    # file location would leave the artifacts on the machine that logged them, where no other client finds them.
    return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})


@contextlib.contextmanager
def start_run(
    ws: Workspace,
    experiment: str,
    run_name: str,
    cfg: Any | None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start a run with the whole config logged (flattened as params and as config.json; none for `cfg=None`, e.g.
    a sweep's parent) and what reproducing it needs: git commit (+ uncommitted patch), package versions
    (environment.json and memoria.env.* tags). `parent_run_id` nests the run under another (a sweep's points)."""
    client = use_store(ws)
    exp_id = experiment_id(client, ws, experiment)
    env, env_tags, patch = environment()
    all_tags = {**env_tags, **(tags or {})}
    nested = parent_run_id is not None
    with mlflow.start_run(
        experiment_id=exp_id, run_name=run_name, tags=all_tags, parent_run_id=parent_run_id, nested=nested
    ) as run:
        mlflow.log_dict(env, "environment.json")
        if patch:
            mlflow.log_text(patch, "environment/uncommitted.patch")
        if cfg is not None:
            config = to_dict(cfg)
            mlflow.log_params({k: str(v)[:500] for k, v in flatten(config).items()})
            mlflow.log_dict(config, "config.json")
        yield run
