"""`make retrain`: the champion's own logged config is trained again and goes through the same gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serving_harness import SENTIMENT_ARGS
from training.cli import main
from training.registry.promotion import champion
from training.tracking.store import use_store


def test_retrain_uses_the_champions_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    # a config no preset has: the retrain must take it from the champion, not from its own defaults
    assert main(["train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS, "--set", "model.cell=gru"]) == 0
    from training.config import Workspace

    client = use_store(Workspace.from_env())
    first = champion(client, "sentiment")
    assert main(["retrain", "--task", "sentiment", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"retraining with the config of champion v{first.version}" in out and "registered version 2" in out
    assert "same prepared data as the champion" in out
    assert "sentiment: gate: " in out, "the gate's decision is printed"
    (second,) = [v for v in client.search_model_versions("name = 'sentiment'") if str(v.version) == "2"]

    def config(run_id: str) -> dict:
        return json.loads(Path(client.download_artifacts(run_id, "config.json", str(tmp_path / run_id))).read_text())

    assert config(second.run_id) == config(first.run_id)
    assert config(second.run_id)["model"]["cell"] == "gru"


def test_retrain_without_a_champion_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert main(["retrain", "--task", "sentiment", "--no-progress"]) == 2
    assert "no champion to retrain: make train TASK=sentiment first" in capsys.readouterr().err
