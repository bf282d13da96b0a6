"""`make sweep` / `python -m training sweep`: a grid of real training runs nested under one parent run that compares
them (table, scores, gradient flow by point, gradient norms before and after clipping)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import FIXTURES, REPO
from training.cli import main
from training.config import Workspace
from training.experiments.sweep import Axis, grid, labels_for, parse_axes
from training.models.classifier import member_cells
from training.registry.publish import best_run_id
from training.tasks import task_named

CSV = ["--set", "data.source=csv", "--set", f"data.path={FIXTURES / 'sentiment' / 'reviews.csv'}"]
TINY = [*CSV, "--set", "data.max_examples=0", "--set", "optim.max_epochs=1", "--set", "optim.batch_size=4"]
# one logged gradient norm per step: the tiny run has fewer steps than the default logging window
TINY += ["--set", "optim.log_every_n_steps=1"]
PARENT_ARTIFACTS = {
    "sweep/summary.json",
    "sweep/comparison.csv",
    "sweep/comparison.md",
    "plots/scores_by_point.png",
    "plots/gradient_flow_by_point.png",
    "plots/grad_norm_by_point.png",
}


def test_axes_parse_like_overrides() -> None:
    axes = parse_axes("model.cell=rnn,lstm  model.init=xavier,orthogonal ensemble.cells=lstm;gru,lstm")
    assert axes == [
        Axis("model.cell", ("rnn", "lstm")),
        Axis("model.init", ("xavier", "orthogonal")),
        Axis("ensemble.cells", ("lstm", "gru,lstm")),  # `;` separates points whose value is itself a list
    ]
    for bad in ("", "model.cell", "model.cell=", "model.cell=rnn model.cell=gru", "model.cell=rnn,rnn"):
        with pytest.raises(ValueError):
            parse_axes(bad)


def test_the_grid_is_every_combination_checked_before_training() -> None:
    axes = parse_axes("model.cell=rnn,gru optim.gradient_clip_norm=0,1")
    points = grid(task_named("sentiment"), "smoke", axes, ["optim.max_epochs=1"])
    assert [p.values for p in points] == [
        {"model.cell": "rnn", "optim.gradient_clip_norm": "0"},
        {"model.cell": "rnn", "optim.gradient_clip_norm": "1"},
        {"model.cell": "gru", "optim.gradient_clip_norm": "0"},
        {"model.cell": "gru", "optim.gradient_clip_norm": "1"},
    ]
    assert [(p.cfg.model.cell, p.cfg.optim.gradient_clip_norm, p.cfg.optim.max_epochs) for p in points] == [
        ("rnn", 0.0, 1),
        ("rnn", 1.0, 1),
        ("gru", 0.0, 1),
        ("gru", 1.0, 1),
    ]
    assert labels_for(points)[1] == "cell=rnn gradient_clip_norm=1"
    with pytest.raises(ValueError, match=r"cell must be one of"):
        grid(task_named("sentiment"), "smoke", parse_axes("model.cell=rnn,transformer"), [])
    # `default` trains an ensemble with its own cells: a model.cell axis would train the same model at every point
    with pytest.raises(ValueError, match=r"ensemble\.cells"):
        grid(task_named("sentiment"), "default", parse_axes("model.cell=rnn,lstm"), [])
    single = grid(task_named("sentiment"), "default", parse_axes("model.cell=rnn,lstm"), ["ensemble.cells="])
    assert [member_cells(p.cfg) for p in single] == [("rnn",), ("lstm",)]
    # a multi-process or multi-node fit re-runs the command per process: each would start its own sweep
    for launch in ("optim.devices=2", "optim.num_nodes=2"):
        with pytest.raises(ValueError, match=r"keep optim\.devices=1 and optim\.num_nodes=1"):
            grid(task_named("sentiment"), "smoke", axes, [launch])


def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    return MlflowClient(Workspace.from_env().tracking_uri)


def _text(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def _paths(client: MlflowClient, run_id: str, folder: str = "") -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, folder or None):
        found |= _paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_a_sweep_nests_its_points_under_a_parent_that_compares_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # given a 2 x 2 grid over the cell and clipping (0 = off; 0.01 is far below any raw norm, so it always clips)
    client = _store(tmp_path, monkeypatch)
    axes = "model.cell=rnn,gru optim.gradient_clip_norm=0,0.01"
    # when the sweep runs through the CLI
    code = main(["sweep", "--task", "sentiment", "--preset", "smoke", "--axes", axes, *TINY, "--no-progress"])
    # then it reports each point, and the store holds one parent run and four children nested under it
    out = capsys.readouterr().out
    assert code == 0
    assert all(f"sweep point {i}/4 (" in out for i in range(1, 5))
    experiment = client.get_experiment_by_name("sentiment").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`memoria.sweep.role` = 'parent'")
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert parent.data.tags["memoria.sweep"] == axes and parent.info.status == "FINISHED"
    assert parent.data.params["sweep.axis.model.cell"] == "rnn,gru" and parent.data.params["sweep.points"] == "4"
    assert "selection_score" not in parent.data.metrics  # export never picks the parent, which has no model
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert {(c.data.params["model.cell"], c.data.params["optim.gradient_clip_norm"]) for c in children} == {
        ("rnn", "0.0"),
        ("rnn", "0.01"),
        ("gru", "0.0"),
        ("gru", "0.01"),
    }
    assert best_run_id(client, "sentiment") in {c.info.run_id for c in children}
    assert client.search_model_versions("name = 'sentiment'") == []  # a sweep registers nothing
    # each point is a normal run with its own gradient-flow plot and numbers
    for child in children:
        assert child.data.tags["memoria.sweep.role"] == "point"
        assert {"plots/gradient_flow.png", "gradient_flow/gradient_flow.json"} <= _paths(client, child.info.run_id)
        assert child.data.metrics["gradient_flow/ratio_first_last"] > 0

    # the parent holds the comparison: table, summary and the three plots
    assert _paths(client, parent.info.run_id) >= PARENT_ARTIFACTS
    summary = json.loads(_text(client, parent.info.run_id, "sweep/summary.json", tmp_path))
    points = {(p["model.cell"], p["optim.gradient_clip_norm"]): p for p in summary["points"]}
    assert {p["run_id"] for p in points.values()} == {c.info.run_id for c in children}
    for (_, clip), p in points.items():
        assert p["status"] == "finished" and p["selection_metric"] == "val/macro_f1" and p["epochs"] == 1
        assert 0.0 <= p["test/macro_f1"] <= 1.0 and p["gradient_flow_steps"] >= 2
        assert p["gradient_flow_decay_per_step"] > 0.0 and p["gradient_flow_ratio_first_last"] > 0.0
        if clip == "0.01":  # measured on the clipped gradients: at the threshold, while the raw norm is far above
            assert p["grad_norm_clipped_max"] <= 0.01 * (1 + 1e-4) < p["grad_norm_max"]
        else:  # no clipping: what the optimiser used is the raw gradient, spikes included
            assert p["grad_norm_clipped_max"] == pytest.approx(p["grad_norm_max"], rel=1e-5)
    assert "| gradient_flow_ratio_first_last |" in _text(client, parent.info.run_id, "sweep/comparison.md", tmp_path)
    rows = list(csv.DictReader(io.StringIO(_text(client, parent.info.run_id, "sweep/comparison.csv", tmp_path))))
    assert [r["point"] for r in rows] == [
        "cell=rnn gradient_clip_norm=0",
        "cell=rnn gradient_clip_norm=0.01",
        "cell=gru gradient_clip_norm=0",
        "cell=gru gradient_clip_norm=0.01",
    ]


def test_a_failed_point_is_recorded_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    client = _store(tmp_path, monkeypatch)
    fixture = FIXTURES / "sentiment" / "reviews.csv"
    axes = f"data.path={tmp_path / 'missing.csv'},{fixture}"
    code = main(["sweep", "--task", "sentiment", "--preset", "smoke", "--axes", axes, *TINY, "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of 2 sweep point(s) failed" in captured.err
    experiment = client.get_experiment_by_name("sentiment").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`memoria.sweep.role` = 'parent'")
    assert parent.data.tags["memoria.sweep.failed_points"] == "1"
    summary = json.loads(_text(client, parent.info.run_id, "sweep/summary.json", tmp_path))
    failed, finished = summary["points"]
    assert failed["status"] == "failed" and "missing.csv" in failed["error"]
    assert finished["status"] == "finished" and finished["run_id"]
    assert "missing.csv" in _text(client, parent.info.run_id, "sweep/comparison.md", tmp_path)


def test_make_sweep_passes_task_preset_axes_and_overrides() -> None:
    def make(*args: str) -> str:
        out = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    plan = make("-n", "sweep", "TASK=translation", "PRESET=smoke", "AXES=model.encoder.cell=rnn,gru", "ARGS=--set a=b")
    assert '-m training sweep --task translation --preset smoke --axes "model.encoder.cell=rnn,gru" --set a=b' in plan
    listed = {line.split()[0] for line in re.sub(r"\x1b\[[0-9;]*m", "", make("help")).splitlines() if line.strip()}
    assert "sweep" in listed
