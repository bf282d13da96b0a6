"""The task table: every task memoria trains, and each one's parts, in one place.

An entry (training/task_spec.py `TaskSpec`) names the task's config class and presets, its data preparation and
prepared-split lookup, its training recipe, its exporter, its gate metric and tolerance, and its peer. This package
sits above train/, export/, registry/ and peers/, which receive an entry and use its parts: nothing outside this
package compares a task's name. A new task is one more entry here plus its own modules.

It also offers the few operations the CLI and the experiments start from (train, publish, prepare), each
looking up its task here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.contract.names import TASK_TAG, TASKS
from training.config import PRESETS, TaskConfig, Workspace
from training.task_spec import TaskSpec
from training.tasks.sentiment import SENTIMENT
from training.tasks.translation import TRANSLATION

TABLE: dict[str, TaskSpec] = {spec.name: spec for spec in (SENTIMENT, TRANSLATION)}
assert tuple(TABLE) == TASKS, "the task table and serving/contract/names.py TASKS must list the same tasks"


def task_named(name: str) -> TaskSpec:
    if name not in TABLE:
        raise ValueError(f"unknown task {name!r}; choose from {tuple(TABLE)}")
    return TABLE[name]


def task_of(cfg: TaskConfig) -> TaskSpec:
    return task_named(cfg.task)


def preset(task: str, name: str) -> TaskConfig:
    """The named preset of a task."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")
    return task_named(task).preset(name)


def prepare_data(cfg: TaskConfig, ws: Workspace, progress: bool = True) -> Any:
    """Fetch the pinned data of the config's task and prepare its splits (reused when already prepared)."""
    return task_of(cfg).prepare_data(cfg.data, ws, progress)


def fetch_data(cfg: TaskConfig, ws: Workspace) -> list[Path]:
    """Download the pinned artifacts the config's data preparation and training read, without preparing anything."""
    from training.data.fetch import fetch_pinned

    return fetch_pinned(task_of(cfg).pinned_artifacts(cfg), ws.artifact_cache)


def train(cfg: TaskConfig, ws: Workspace, progress: bool = True, **kwargs: Any) -> Any:
    """`training.train.loop.train` for the config's task (`tags`, `parent_run_id` pass through)."""
    from training.train.loop import train as train_task

    for other in task_of(cfg).other_data(cfg):
        prepare_data(preset(other, "default"), ws, progress)  # reused when already prepared
    return train_task(task_of(cfg), cfg, ws, progress, **kwargs)


def publish_run(ws: Workspace, run_id: str) -> Any:
    """Export, verify, register and gate a finished training run, whichever task its tag names."""
    from training.registry.publish import publish_run as publish
    from training.tracking.store import use_store

    name = use_store(ws).get_run(run_id).data.tags.get(TASK_TAG)
    if name is None:
        raise ValueError(f"run {run_id} is not a memoria training run (no {TASK_TAG} tag)")
    return publish(ws, run_id, task_named(name))


def export_model_folder(
    model_dir: Any, out_dir: Any, run_id: str, metrics: dict[str, float], ws: Workspace | None = None
) -> Any:
    """Export a run's model folder of any task (its spec.json names the task) to a verified bundle in `out_dir`."""
    import json
    from pathlib import Path

    from training.export.bundle import export_bundle
    from training.model_folder import SPEC, read_model_folder

    task = task_named(json.loads((Path(model_dir) / SPEC).read_text())["task"])
    return export_bundle(task, read_model_folder(Path(model_dir), task.config), Path(out_dir), run_id, metrics, ws)


__all__ = [
    "TABLE",
    "TaskSpec",
    "export_model_folder",
    "prepare_data",
    "preset",
    "publish_run",
    "task_named",
    "task_of",
    "train",
]
