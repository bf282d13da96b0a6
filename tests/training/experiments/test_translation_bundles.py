"""Translation bundles side by side (training/experiments/translation_bundles.py), on the tiny random-weight
translation bundle of tests/fixtures/bundles/b4b918d (unsigned: verification off here)."""

from __future__ import annotations

import pytest

from serving.contract.signing import VERIFY_ENV
from tests.conftest import FIXTURES
from training.experiments import translation_bundles

BUNDLES = FIXTURES / "bundles" / "b4b918d"


@pytest.fixture
def unsigned_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VERIFY_ENV, "false")


def test_two_bundles_are_compared_on_the_probe_size_and_latency(
    unsigned_ok: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(translation_bundles, "CALLS", (3, 1))  # a few requests: the layout, not the timing
    bundle = str(BUNDLES / "translation")
    assert translation_bundles.main([bundle, bundle, "--beam", "1"]) == 0

    out = capsys.readouterr().out
    assert out.count("served graphs") == 2 and out.count("everyday probe BLEU ") == 2
    assert out.count("latency x the first bundle: batch 1 ") == 2 and "batch 32 " in out


def test_a_bundle_of_another_task_is_refused_with_its_name(
    unsigned_ok: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert translation_bundles.main([str(BUNDLES / "sentiment")]) == 2
    assert "expected 'translation'" in capsys.readouterr().err


def test_a_beam_the_bundle_does_not_allow_is_refused_with_the_limit(
    unsigned_ok: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert translation_bundles.main([str(BUNDLES / "translation"), "--beam", "99"]) == 2
    assert "--beam: beam_size must be between 1 and" in capsys.readouterr().err
