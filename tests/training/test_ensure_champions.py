"""`make run`'s `ensure-champion --task all`: the second task's data is prepared in a background process while the
first task trains, and training waits for it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import training.cli as cli
from tests.conftest import tiny_sentiment
from tests.serving_harness import TRANSLATION_ARGS
from training.config import Workspace, apply_overrides
from training.tasks import prepare_data, preset

OVERRIDES = TRANSLATION_ARGS[1::2]  # "--set", "k=v", ... -> "k=v", ...: the translation fixture


def test_background_preparation_is_the_data_command_in_a_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    monkeypatch.chdir(tmp_path)
    ws = Workspace.from_env()
    args = argparse.Namespace(preset="smoke", overrides=OVERRIDES)
    process, log = cli._prepare_in_background("translation", args, ws)
    assert process.wait(timeout=300) == 0, log.read_text()
    assert "translation: prepared in" in log.read_text()
    prepared = prepare_data(apply_overrides(preset("translation", "smoke"), OVERRIDES), ws, progress=False)
    assert prepared.dir.is_relative_to(tmp_path) and prepared.pairs("train")  # the child's splits, reused here


def run_ensure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child_code: str) -> list[tuple[str, bool]]:
    """ensure-champion --task all on a fresh store; the background child is `child_code` (it touches `flag`)."""
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    flag = tmp_path / "child-done"
    trained: list[tuple[str, bool]] = []
    configs = {"sentiment": tiny_sentiment(), "translation": apply_overrides(preset("translation", "smoke"), OVERRIDES)}
    monkeypatch.setattr(cli, "preset", lambda task, name: configs[task])  # each task on its own fixture
    monkeypatch.setattr(
        cli,
        "_prepare_in_background",
        lambda task, args, ws: (subprocess.Popen([sys.executable, "-c", child_code, str(flag)]), tmp_path / "log"),
    )
    monkeypatch.setattr(
        cli,
        "_train_and_publish",
        lambda cfg, ws, progress: trained.append((cfg.task if cfg else "translation", flag.exists())),
    )
    assert cli.main(["ensure-champion", "--task", "all", "--no-progress"]) == 0
    return trained


def test_the_second_task_trains_after_its_background_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_child = "import pathlib, sys, time; time.sleep(2); pathlib.Path(sys.argv[1]).touch()"
    trained = run_ensure(tmp_path, monkeypatch, slow_child)
    # sentiment trained while the child still ran (overlap); translation only once the child had finished
    assert trained == [("sentiment", False), ("translation", True)]


def test_a_failed_background_preparation_is_said_and_redone(tmp_path, monkeypatch, capsys) -> None:
    trained = run_ensure(tmp_path, monkeypatch, "import sys; sys.exit(3)")
    assert [task for task, _ in trained] == ["sentiment", "translation"]
    assert "translation: preparing the data in the background failed" in capsys.readouterr().out
