"""A run that reads another task's prepared data has it prepared first (a fresh clone needs no extra step)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from training.config import Workspace
from training.config.overrides import apply_overrides
from training.tasks import preset, task_named


def test_sentiment_asks_for_the_translation_data_only_when_it_reads_the_english_pairs() -> None:
    spec = task_named("sentiment")
    assert spec.other_data(preset("sentiment", "smoke")) == ()
    assert spec.other_data(preset("sentiment", "full")) == ()
    english = apply_overrides(preset("sentiment", "full"), ["pretrain.steps=10", "pretrain.sources=tweets,english"])
    assert spec.other_data(english) == ("translation",)  # pretrains on the English pairs
    assert spec.other_data(apply_overrides(preset("sentiment", "smoke"), ["distill.steps=10"])) == ("translation",)
    imdb = apply_overrides(preset("sentiment", "smoke"), ["distill.steps=10", "distill.source=imdb"])
    assert spec.other_data(imdb) == ()  # IMDb's reviews come from their own pinned package
    no_english = apply_overrides(preset("sentiment", "full"), ["pretrain.steps=10", "pretrain.sources=tweets"])
    assert spec.other_data(no_english) == ()
    assert task_named("translation").other_data(preset("translation", "smoke")) == ()


def test_train_prepares_the_other_tasks_data_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.tasks as tasks
    import training.train.loop as loop

    order: list[str] = []
    monkeypatch.setattr(tasks, "prepare_data", lambda cfg, ws, progress=True: order.append(f"prepare {cfg.task}"))
    monkeypatch.setattr(loop, "train", lambda spec, cfg, ws, progress, **kw: order.append(f"train {cfg.task}"))
    cfg = preset("sentiment", "smoke")
    tasks.train(replace(cfg, distill=replace(cfg.distill, steps=5)), Workspace.from_env(tmp_path), progress=False)
    assert order == ["prepare translation", "train sentiment"]
    order.clear()
    tasks.train(cfg, Workspace.from_env(tmp_path), progress=False)
    assert order == ["train sentiment"]
