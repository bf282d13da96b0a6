"""The everyday probe scored on a bundle standalone (`python -m training.experiments.everyday_probe BUNDLE_DIR`), on
the tiny random-weight translation bundle of tests/fixtures/bundles/b4b918d (unsigned: verification off here; the
run-logged numbers matching this scorer is checked in tests/training/train/test_train_translation.py)."""

from __future__ import annotations

import pytest

from serving.contract.signing import VERIFY_ENV
from tests.conftest import FIXTURES
from training.data.translation.everyday_probe import probe_rows
from training.experiments.everyday_probe import main, score_bundle

BUNDLES = FIXTURES / "bundles" / "b4b918d"


@pytest.fixture
def unsigned_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")


def test_a_bundle_is_scored_on_every_probe_sentence_with_the_beam_asked_for(unsigned_ok: None) -> None:
    report = score_bundle(BUNDLES / "translation", beam_size=1)

    assert report.beam_size == 1 and len(report.outputs) == len(probe_rows())
    assert 0.0 <= report.bleu <= 100.0 and 0.0 <= report.chrf <= 100.0
    assert set(report.bleu_by_topic) == {row["topic"] for row in probe_rows()}
    assert score_bundle(BUNDLES / "translation").beam_size == 3  # the bundle's own default beam


def test_the_command_prints_scores_per_topic_and_with_show_every_output(
    unsigned_ok: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(BUNDLES / "translation"), "--beam", "1", "--show"]) == 0

    out = capsys.readouterr().out
    assert "(beam 1): BLEU " in out and " chrF " in out
    assert all(f"  {topic:<10} " in out for topic in {row["topic"] for row in probe_rows()})
    assert out.count("      -> ") == len(probe_rows())


def test_a_bundle_of_another_task_is_refused_with_the_reason(
    unsigned_ok: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(BUNDLES / "sentiment")]) == 2
    assert "expected 'translation'" in capsys.readouterr().err
