"""One bundle decoded with other search settings (`python -m training.experiments.decoding_settings`), on the tiny
random-weight translation bundle of tests/fixtures/bundles/b4b918d (unsigned: verification off here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from serving.contract.signing import VERIFY_ENV
from tests.conftest import FIXTURES
from training.experiments.decoding_settings import SearchSetting, main, parse_setting

BUNDLE = FIXTURES / "bundles" / "b4b918d" / "translation"


@pytest.fixture
def validation(tmp_path: Path) -> Path:
    rows = [("Hola.", "cataclysm"), ("Y lloró.", "bible"), ("¿Dónde está?", "wesnoth")]
    folder = tmp_path / "mix"
    folder.mkdir()
    lines = [json.dumps({"id": s, "domain": d, "source": s, "target": "Hello.", "references": []}) for s, d in rows]
    (folder / "validation.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_a_setting_names_only_the_three_search_knobs() -> None:
    assert parse_setting("beam=8,no_repeat_ngram=3") == SearchSetting(beam=8, no_repeat_ngram=3)
    assert parse_setting("length_penalty=0.8") == SearchSetting(length_penalty=0.8)
    with pytest.raises(argparse.ArgumentTypeError, match="temperature"):
        parse_setting("temperature=2")


def test_the_command_scores_each_setting_per_domain_and_counts_changed_outputs(
    validation: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")
    assert main(["--data", str(validation), str(BUNDLE), "beam=1", "beam=2,no_repeat_ngram=1,length_penalty=0.5"]) == 0
    out = capsys.readouterr().out
    assert "3 validation pairs and 200 probe sentences" in out
    assert "beam 1, length penalty 1, no repeat n-gram 0: bible " in out  # the bundle's own where a setting is silent
    assert "beam 2, length penalty 0.5, no repeat n-gram 1: bible " in out and " all " in out
    assert out.count("    probe ") == 2 and "outputs differ" in out.splitlines()[-1]


def test_a_beam_the_bundle_refuses_and_a_missing_split_are_errors(
    validation: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")
    assert main(["--data", str(validation), str(BUNDLE), "beam=99"]) == 2
    assert "beam_size" in capsys.readouterr().err
    assert main(["--data", str(validation), "--split", "test", str(BUNDLE), "beam=1"]) == 2
    assert "test.jsonl: no such file" in capsys.readouterr().err
