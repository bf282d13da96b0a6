"""Bundles trained on different splits compared on the test pairs every split held out
(`python -m training.experiments.shared_test_pairs`), on the tiny random-weight translation bundle of
tests/fixtures/bundles/b4b918d (unsigned: verification off here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.contract.signing import VERIFY_ENV
from tests.conftest import FIXTURES
from training.experiments.shared_test_pairs import main, shared_test_rows

BUNDLES = FIXTURES / "bundles" / "b4b918d"


def row(source: str, domain: str) -> dict[str, object]:
    return {"id": source, "domain": domain, "source": source, "target": f"<{source}>", "references": []}


def prepared(folder: Path, train: list[str], test: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(row(s, "bible")) + "\n" for s in train))
    (folder / "test.jsonl").write_text("".join(json.dumps(row(s, d)) + "\n" for s, d in test))
    return folder


@pytest.fixture
def two_splits(tmp_path: Path) -> list[Path]:
    # the old split tests a, b, c; the new one tests a, b, d, and trains on c (regrouped into training)
    old = prepared(tmp_path / "old", ["x", "d"], [("Hola.", "cataclysm"), ("Y lloró.", "bible"), ("c", "wesnoth")])
    new = prepared(tmp_path / "new", ["x", "c"], [("Y lloró.", "bible"), ("Hola.", "cataclysm"), ("d", "wesnoth")])
    return [old, new]


def test_only_pairs_every_split_holds_out_are_shared(two_splits: list[Path]) -> None:
    rows = shared_test_rows(two_splits)
    assert [r["source"] for r in rows] == ["Hola.", "Y lloró."]  # the first folder's order; c and d were trained on


def test_the_command_scores_each_bundle_per_domain_on_the_shared_pairs(
    two_splits: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")
    args = ["--data", str(two_splits[0]), "--data", str(two_splits[1]), str(BUNDLES / "translation")]
    assert main([*args, "--beam", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 test pairs held out of every split: {'bible': 1, 'cataclysm': 1}" in out
    assert " bible " in out and " cataclysm " in out and " all " in out and "wesnoth" not in out


def test_a_bundle_of_another_task_is_refused(
    two_splits: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")
    assert main(["--data", str(two_splits[0]), str(BUNDLES / "sentiment")]) == 2
    assert "expected 'translation'" in capsys.readouterr().err


def test_a_folder_that_is_not_prepared_data_is_refused_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path / "nowhere"), str(BUNDLES / "translation")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "no such file" in err
