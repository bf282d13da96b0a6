"""`python -m training sweep`: a grid over config keys, each point a normal training run nested under one parent run.

    python -m training sweep --task sentiment --preset smoke --axes "model.cell=rnn,lstm,gru model.init=xavier,kaiming"

Each axis is a config key with its values separated by commas (by `;` where a value is itself a list, e.g.
`ensemble.cells=lstm;gru,lstm`), parsed like `--set`; `--set` overrides apply to every point. The points are trained
one after the other by `train()`, each an MLflow run of the task's experiment with the tag `mlflow.parentRunId`:
`make export` can pick one later, but the sweep itself registers and promotes nothing. The parent run (tag
`memoria.sweep`, the axes as params, no `selection_score`, so it is never exported) gets the comparison: a table
(sweep/comparison.csv and .md, sweep/summary.json), the scores by point (plots/scores_by_point.png), the points'
gradient-flow curves side by side (plots/gradient_flow_by_point.png) and their per-step gradient norms before and
after clipping (plots/grad_norm_by_point.png).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from serving.contract.names import PRESET_TAG, TASK_TAG
from training.config import TaskConfig, Workspace, apply_overrides
from training.task_spec import TaskSpec

log = logging.getLogger(__name__)

SWEEP_TAG = "memoria.sweep"  # the axes, on the parent and on every point
ROLE_TAG = "memoria.sweep.role"  # "parent" or "point"
POINT_TAG = "memoria.sweep.point"  # the point's own values, e.g. "model.cell=rnn model.init=xavier"
FAILED_POINTS_TAG = "memoria.sweep.failed_points"  # on the parent: how many points failed
# The test metrics shown in the table and the bar chart (summary.json keeps every test metric).
GRAD_NORMS = ("train/grad_norm", "train/grad_norm_clipped")


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    """One cell of the grid: its values per axis and the config they give."""

    values: dict[str, str]
    cfg: TaskConfig

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.values.items()]

    def name(self) -> str:
        return " ".join(self.overrides())


@dataclass
class PointResult:
    point: Point
    label: str
    run_id: str = ""
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    selection_metric: str = ""
    grad_norms: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    gradient_flow: dict[str, Any] | None = None


@dataclass(frozen=True)
class SweepResult:
    parent_run_id: str
    run_ids: list[str]
    failed: list[str]


def parse_axes(text: str) -> list[Axis]:
    """ "model.cell=rnn,lstm model.init=xavier,orthogonal" -> axes (whitespace between axes)."""
    axes: list[Axis] = []
    for item in text.split():
        key, sep, raw = item.partition("=")
        separator = ";" if ";" in raw else ","
        values = tuple(v.strip() for v in raw.split(separator) if v.strip())
        if not sep or not key or not values:
            raise ValueError(f"axis {item!r} is not of the form key=value1,value2")
        if any(a.key == key for a in axes):
            raise ValueError(f"axis {key!r} is given twice")
        if len(set(values)) != len(values):
            raise ValueError(f"axis {key!r} repeats a value: {raw}")
        axes.append(Axis(key, values))
    if not axes:
        raise ValueError("a sweep needs --axes, e.g. --axes 'model.cell=rnn,lstm model.init=xavier,orthogonal'")
    return axes


def grid(task: TaskSpec, preset_name: str, axes: list[Axis], overrides: list[str]) -> list[Point]:
    """Every combination of the axes' values, each config built and checked before anything trains."""
    base = apply_overrides(task.preset(preset_name), overrides)
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        values = {a.key: v for a, v in zip(axes, combo, strict=True)}
        points.append(Point(values, apply_overrides(base, [f"{k}={v}" for k, v in values.items()])))
    _check_points(base, axes, points)
    return points


def _check_points(base: TaskConfig, axes: list[Axis], points: list[Point]) -> None:
    # A multi-process (DDP) fit re-runs the whole command once per extra process: each would start its own sweep.
    if any(getattr(p.cfg.optim, "devices", 1) > 1 or getattr(p.cfg.optim, "num_nodes", 1) > 1 for p in points):
        raise ValueError(
            "a sweep trains its points one after the other in one process: keep optim.devices=1 and optim.num_nodes=1"
        )
    # An ensemble with its own cells (sentiment) ignores model.cell: every point would train the same members.
    ensemble_cells = getattr(getattr(base, "ensemble", None), "cells", ())
    if ensemble_cells and any(a.key == "model.cell" for a in axes):
        raise ValueError(
            f"preset {base.preset!r} trains an ensemble of cells {base.ensemble.cells}, which ignores model.cell: "
            "add --set ensemble.cells= (one member of model.cell) or sweep ensemble.cells instead"
        )


def labels_for(points: list[Point]) -> list[str]:
    """Short point names for plots and the table: each key's last part, unless two axes share it."""
    keys = list(points[0].values) if points else []
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    return [" ".join(f"{n}={p.values[k]}" for n, k in zip(names, keys, strict=True)) for p in points]


def run_sweep(
    task: TaskSpec,
    preset_name: str,
    axes_text: str,
    overrides: list[str],
    ws: Workspace,
    progress: bool = False,
) -> SweepResult:
    """Train every point of the grid as a run nested under one parent run, then log the comparison on the parent.

    A point that fails is recorded as failed (table and tag) and the sweep goes on; the sweep raises RuntimeError at
    the end if any failed."""
    from training.tracking.store import start_run, use_store
    from training.train.loop import train

    axes = parse_axes(axes_text)
    points = grid(task, preset_name, axes, overrides)
    labels = labels_for(points)
    sweep_name = " ".join(f"{a.key}={','.join(a.values)}" for a in axes)
    tags = {SWEEP_TAG: sweep_name, TASK_TAG: task.name, PRESET_TAG: preset_name}
    results: list[PointResult] = []
    client = use_store(ws)
    name = f"sweep-{task.name}-{preset_name}"
    with start_run(ws, task.name, name, None, {**tags, ROLE_TAG: "parent"}) as parent:
        parent_id = parent.info.run_id
        mlflow.log_params(
            {
                "sweep.task": task.name,
                "sweep.preset": preset_name,
                "sweep.overrides": " ".join(overrides)[:500] or "-",
                "sweep.points": len(points),
                **{f"sweep.axis.{a.key}": ",".join(a.values)[:500] for a in axes},
            }
        )
        mlflow.log_dict([{"values": p.values} for p in points], "sweep/points.json")
        print(
            f"sweep {sweep_name}: {len(points)} point(s) of {task.name}/{preset_name}, parent run {parent_id}",
            flush=True,
        )
        for i, (point, label) in enumerate(zip(points, labels, strict=True), start=1):
            started = time.monotonic()
            print(f"sweep point {i}/{len(points)} ({point.name()}): training", flush=True)
            result = PointResult(point, label)
            try:
                trained = train(
                    task, point.cfg, ws, progress, {**tags, ROLE_TAG: "point", POINT_TAG: point.name()}, parent_id
                )
            except Exception as e:  # one bad point (a diverging config, a typo'd value) must not lose the others
                log.exception("sweep point %s failed", point.name())
                result.error = f"{type(e).__name__}: {e}"
                print(f"sweep point {i}/{len(points)} ({point.name()}): FAILED: {result.error}", flush=True)
            else:
                _collect(client, result, trained.run_id, trained.metrics)
                print(
                    f"sweep point {i}/{len(points)} ({point.name()}): {_progress_line(task, result, started)}",
                    flush=True,
                )
            results.append(result)
        failed = [r.point.name() for r in results if r.error]
        mlflow.set_tag(FAILED_POINTS_TAG, str(len(failed)))
        mlflow.log_metrics({"sweep/points_finished": len(results) - len(failed), "sweep/points_failed": len(failed)})
        log_comparison(task, results, sweep_name)
    print(f"sweep {sweep_name}: comparison logged on parent run {parent_id}", flush=True)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(points)} sweep point(s) failed: {'; '.join(failed)}")
    return SweepResult(parent_id, [r.run_id for r in results], failed)


def _progress_line(task: TaskSpec, result: PointResult, started: float) -> str:
    m = result.metrics
    tests = [f"{k}={m[k]:.4f}" for k in task.headline_metrics if k in m]
    ratio = m.get("gradient_flow/ratio_first_last", math.nan)
    decay = m.get("gradient_flow/decay_per_step", math.nan)
    return (
        f"run {result.run_id} {result.selection_metric}={m.get('selection_score', math.nan):.4f} {' '.join(tests)} "
        f"gradient through time: first/last {ratio:.2g}, {decay:.3f} per step; {time.monotonic() - started:.0f}s"
    )


def _collect(client: MlflowClient, result: PointResult, run_id: str, metrics: dict[str, float]) -> None:
    """What the comparison needs from a finished point, read back from its run as anyone would."""
    result.run_id = run_id
    result.metrics = dict(metrics)
    run = client.get_run(run_id)
    result.selection_metric = run.data.params.get("selection_metric", "selection_score")
    for key in GRAD_NORMS:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        result.grad_norms[key] = ([m.step for m in history], [m.value for m in history])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "gradient_flow/gradient_flow.json", tmp)
        except Exception:  # an older recipe without the measurement: the point still gets its row
            log.warning("run %s has no gradient_flow/gradient_flow.json", run_id)
        else:
            result.gradient_flow = json.loads(Path(path).read_text())


def summary_rows(task: TaskSpec, results: list[PointResult]) -> list[dict[str, Any]]:
    """One dict per point: axes values, run, status, selection and test metrics, epochs, seconds, gradient norms
    (max, median, last of the logged window maxima) and the gradient-flow summary."""
    rows = []
    for r in results:
        m = r.metrics
        row: dict[str, Any] = {"point": r.label, **r.point.values, "run_id": r.run_id}
        row["status"] = "failed" if r.error else "finished"
        row["selection_metric"] = r.selection_metric
        row["selection_score"] = m.get("selection_score")
        for key in task.headline_metrics:
            row[key] = m.get(key)
        row["epochs"] = m.get("epochs_trained")
        row["seconds"] = m.get("train_seconds")
        for key in GRAD_NORMS:
            values = r.grad_norms.get(key, ((), ()))[1]
            name = key.removeprefix("train/")
            row[f"{name}_max"] = max(values) if values else None
            row[f"{name}_median"] = statistics.median(values) if values else None
            row[f"{name}_last"] = values[-1] if values else None
        row["gradient_flow_ratio_first_last"] = m.get("gradient_flow/ratio_first_last")
        row["gradient_flow_ratio_first_last_all_paths"] = m.get("gradient_flow/ratio_first_last_all_paths")
        row["gradient_flow_decay_per_step"] = m.get("gradient_flow/decay_per_step")
        row["gradient_flow_steps"] = m.get("gradient_flow/steps")
        row["error"] = r.error
        rows.append(row)
    return rows


def log_comparison(task: TaskSpec, results: list[PointResult], sweep_name: str) -> None:
    """The parent run's table, summary and plots (to the active run)."""
    from training.plots import close, grad_norm_history_figure, gradient_flow_figure, scores_by_point_figure

    rows = summary_rows(task, results)
    full = [
        {**row, "test_metrics": {k: v for k, v in r.metrics.items() if k.startswith("test/")}}
        for row, r in zip(rows, results, strict=True)
    ]
    mlflow.log_dict({"sweep": sweep_name, "task": task.name, "points": full}, "sweep/summary.json")
    mlflow.log_text(_csv(rows), "sweep/comparison.csv")
    mlflow.log_text(_markdown(rows), "sweep/comparison.md")

    finished = [r for r in results if not r.error]
    selection = finished[0].selection_metric if finished else "selection_score"
    scores = {f"{selection} (validation, best epoch)": [r.metrics.get("selection_score", math.nan) for r in results]}
    scores |= {k: [r.metrics.get(k, math.nan) for r in results] for k in task.headline_metrics[:1]}
    figures = {"plots/scores_by_point.png": scores_by_point_figure([r.label for r in results], scores, sweep_name)}
    flows = {r.label: _first_flow(r.gradient_flow) for r in finished if r.gradient_flow}
    if flows:
        some = next(r.gradient_flow for r in finished if r.gradient_flow)
        title = f"Gradient flow by point: {some['rows']} {some['what']}, {some['steps']} steps"
        figures["plots/gradient_flow_by_point.png"] = gradient_flow_figure(flows, title)
    histories = {r.label: r.grad_norms for r in finished}
    title = f"Gradient norm per training step by point ({sweep_name})"
    figures["plots/grad_norm_by_point.png"] = grad_norm_history_figure(histories, title)
    for name, fig in figures.items():
        mlflow.log_figure(fig, name)
        close(fig)


def _first_flow(data: dict[str, Any]) -> tuple[list[float], list[float]]:
    flow = data["flows"][0]  # an ensemble's first member; its own run's plot shows every member
    return flow["through_time"], flow["all_paths"]


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["point"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    # The csv keeps every column; the markdown table drops the medians and last values to stay readable.
    hidden = ("selection_metric", "error", "run_id")
    summaries = tuple(f"{k.removeprefix('train/')}_{stat}" for k in GRAD_NORMS for stat in ("median", "last"))
    shown = [c for c in rows[0] if c not in (*hidden, *summaries)] + ["run_id"]
    columns = [c for c in shown if any(r.get(c) not in (None, "") for r in rows)]
    lines = [
        f"Selection metric: {rows[0]['selection_metric'] or 'selection_score'} (validation, best epoch)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_format(r.get(c)) for c in columns) + " |" for r in rows]
    errors = [f"- {r['point']}: {r['error']}" for r in rows if r["error"]]
    return "\n".join(lines + (["", *errors] if errors else [])) + "\n"
