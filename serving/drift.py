"""Drift, live: each answered text's signals, over a sliding window per task and served model, compared with the
reference distributions of the model's own bundle (serving/contract/drift_profile.py) as one Jensen-Shannon
distance per signal, exported as the gauge `memoria_drift_distance{task, model, signal}`.

The window is per worker process (MEMORIA_DRIFT_WINDOW texts, default 1000): workers take requests in turn, so
each sees a sample of the same traffic; the gauge is the largest of the live workers' values (Prometheus
multiprocess mode `livemax`), the one that would cross an alert's threshold first. A distance is exported once
the window holds MEMORIA_DRIFT_MIN_TEXTS texts (default 100): fewer make a noisy number. A bundle exported before
drift profiles existed has no reference: its texts are still logged, but it gets no distance.
"""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from serving.contract.bundle import Bundle
from serving.contract.drift_profile import DriftProfile, Reference, load_profile
from serving.contract.drift_signals import js_distance, language, novelty, words

log = logging.getLogger("bentoml.memoria")


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: must be a whole number of at least 1")
    return int(raw)


def window_size() -> int:
    return _setting("MEMORIA_DRIFT_WINDOW", 1000)


def min_texts() -> int:
    return _setting("MEMORIA_DRIFT_MIN_TEXTS", 100)


def text_features(text: str, tokens: int, profile: DriftProfile | None) -> dict[str, Any]:
    """The input features logged and windowed for one text (novelty: null without a profile to compare with)."""
    found = words(text)
    return {
        "input_tokens": tokens,
        "words": len(found),
        "novelty": round(novelty(text, profile.vocabulary), 4) if profile is not None else None,
        "language": language(text),
    }


@dataclass
class _SignalWindow:
    reference: Reference
    bins: collections.deque[int]
    counts: list[int] = field(default_factory=list)

    def add(self, index: int) -> None:
        if len(self.bins) == self.bins.maxlen:
            self.counts[self.bins[0]] -= 1  # the deque drops it on append
        self.bins.append(index)
        self.counts[index] += 1


class DriftWindow:
    """One served model's window: one bin sequence per signal its profile has a reference for."""

    def __init__(self, profile: DriftProfile, size: int) -> None:
        self.windows = {
            signal: _SignalWindow(ref, collections.deque(maxlen=size), [0] * len(ref.bins))
            for signal, ref in profile.signals.items()
        }

    def add(self, values: dict[str, Any]) -> None:
        for signal, window in self.windows.items():
            value = values.get(signal)
            if value is None:
                continue
            index = window.reference.bin_of(signal, value)
            if index is not None:
                window.add(index)

    def distances(self, at_least: int) -> dict[str, float]:
        return {
            signal: js_distance(w.counts, w.reference.counts)
            for signal, w in self.windows.items()
            if len(w.bins) >= at_least
        }


class DriftMonitor:
    """Per worker: the profile and window of each served model (by its label), and the gauge they set."""

    def __init__(self, gauge: Any) -> None:
        self.gauge = gauge
        self.size, self.at_least = window_size(), min_texts()
        self._profiles: dict[str, DriftProfile | None] = {}
        self._windows: dict[str, DriftWindow] = {}

    def profile(self, label: str, bundle: Bundle) -> DriftProfile | None:
        """The bundle's profile, read once per served model, on its first answer (tens of milliseconds for a large
        vocabulary, once per swap); None: a bundle without one, or one that cannot be read (logged)."""
        if label not in self._profiles:
            if len(self._profiles) > 4:  # models swapped out long ago: forget them
                self._profiles.clear()
                self._windows.clear()
            try:
                profile = load_profile(bundle)
            except (OSError, ValueError, KeyError) as e:  # answers matter more than drift: serve, say why, no window
                log.error("%s: drift profile unreadable, no drift distances for it: %s: %s", label, type(e).__name__, e)
                profile = None
            self._profiles[label] = profile
            if profile is not None:
                self._windows[label] = DriftWindow(profile, self.size)
        return self._profiles[label]

    def observe(self, task: str, label: str, values: list[dict[str, Any]]) -> dict[str, float]:
        """Add each text's signal values to the model's window; set and return the distances now exported."""
        window = self._windows.get(label)
        if window is None:
            return {}
        for v in values:
            window.add(v)
        distances = window.distances(self.at_least)
        for signal, distance in distances.items():
            self.gauge.labels(task, label, signal).set(round(distance, 6))
        return distances
