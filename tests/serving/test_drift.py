"""Drift windows in one process (serving/drift.py): a window slides, a distance appears once enough texts are in,
and it is the Jensen-Shannon distance of the window from the bundle's reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from serving.contract.bundle import Bundle
from serving.contract.drift_profile import load_profile, profile_document, reference
from serving.contract.drift_signals import LANGUAGES, PROFILE_FILE, js_distance
from serving.drift import DriftMonitor, DriftWindow, text_features


def bundle_with_profile(tmp_path: Path, document: bytes | None) -> Bundle:
    manifest: dict = {"task": "sentiment", "files": {}}
    if document is not None:
        (tmp_path / PROFILE_FILE).write_bytes(document)
        manifest.update(drift_profile=PROFILE_FILE, files={PROFILE_FILE: "checked by load_bundle"})
    return Bundle(tmp_path, manifest, digest="0" * 64)


def profile_bytes() -> bytes:
    signals = {
        "novelty": reference("novelty", "validation", [0.0] * 8 + [0.5] * 2),
        "language": reference("language", "train", ["en"] * 10, LANGUAGES),
    }
    return profile_document(["the", "flight", "was", "late"], signals, {"confidence": "why not"})


def gauge() -> Gauge:
    return Gauge("drift", "test", ["task", "model", "signal"], registry=CollectorRegistry())


def test_the_window_slides_and_its_distance_is_js_from_the_reference(tmp_path: Path) -> None:
    profile = load_profile(bundle_with_profile(tmp_path, profile_bytes()))
    assert profile is not None and profile.unavailable == {"confidence": "why not"}
    window = DriftWindow(profile, size=4)
    for value in (0.5, 0.5, 0.0, 1.0, 1.0):  # the first 0.5 slides out
        window.add({"novelty": value, "language": "es"})
    novelty = window.windows["novelty"]
    assert list(novelty.bins) == [5, 0, 7, 7]  # 0.5, 0.0, 1.0, 1.0 by Prometheus' le rule over NOVELTY_BOUNDS
    assert sum(novelty.counts) == 4 and (novelty.counts[0], novelty.counts[5], novelty.counts[7]) == (1, 1, 2)
    distances = window.distances(at_least=4)
    assert distances["novelty"] == pytest.approx(js_distance(novelty.counts, profile.signals["novelty"].counts))
    assert distances["language"] == pytest.approx(1.0)  # all Spanish against an all-English reference
    assert window.distances(at_least=5) == {}


def test_the_monitor_exports_a_distance_only_with_enough_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_DRIFT_MIN_TEXTS", "3")
    monitor = DriftMonitor(gauge())
    bundle = bundle_with_profile(tmp_path, profile_bytes())
    profile = monitor.profile("m", bundle)
    features = text_features("el vuelo fue tarde", 5, profile)
    assert features == {"input_tokens": 5, "words": 4, "novelty": 1.0, "language": "es"}
    assert monitor.observe("sentiment", "m", [features] * 2) == {}
    distances = monitor.observe("sentiment", "m", [features])
    assert set(distances) == {"novelty", "language"}
    assert monitor.gauge.labels("sentiment", "m", "language")._value.get() == pytest.approx(1.0)


def test_a_bundle_without_or_with_an_unreadable_profile_gets_no_window(tmp_path: Path, caplog) -> None:
    monitor = DriftMonitor(gauge())
    old = tmp_path / "old"
    old.mkdir()
    assert monitor.profile("old", bundle_with_profile(old, None)) is None
    broken = tmp_path / "broken"
    broken.mkdir()
    assert monitor.profile("broken", bundle_with_profile(broken, json.dumps({"format": "other"}).encode())) is None
    assert "drift profile unreadable" in caplog.text
    assert monitor.observe("sentiment", "old", [{"novelty": 1.0}]) == {}
