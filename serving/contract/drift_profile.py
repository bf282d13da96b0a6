"""The bundle's drift profile (`drift_profile.json`): the training vocabulary and each drift signal's reference
distribution, written at export (training/export/drift_profile.py) and read by serving (serving/drift.py).

    {"format": "memoria-drift-profile/1",
     "vocabulary": ["a", "about", ...],                      # every word of the training split
     "signals": {"novelty": {"split": "validation", "bins": ["le 0", ...], "counts": [..]}, ...},
     "unavailable": {"confidence": "why not"}}

The file is listed in the manifest (`drift_profile`) and covered by its checksums and signature like every other
file. Bundles exported before it existed have none: serving then exports no drift distance for them and the model
card says the signals are unavailable (serving/contract/drift_signals.py defines the signals).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serving.contract.bundle import Bundle
from serving.contract.drift_signals import (
    CONFIDENCE_BOUNDS,
    NOVELTY_BOUNDS,
    PROFILE_FORMAT,
    TOKEN_BOUNDS,
    bin_index,
    bin_names,
    counts,
)

# Signals whose bins are numeric bounds; the others (label_mix, language) are categories named in the profile.
BOUNDS: dict[str, tuple[float, ...]] = {
    "novelty": NOVELTY_BOUNDS,
    "confidence": CONFIDENCE_BOUNDS,
    "input_tokens": TOKEN_BOUNDS,
}
# Where each signal's live value is in an inference-log record (serving/inference_log.py): the service's windows
# and `make drift` read the same columns.
LOG_COLUMN = {
    "novelty": "novelty",
    "confidence": "confidence",
    "label_mix": "prediction",
    "input_tokens": "input_tokens",
    "language": "language",
}


def signal_values(record: dict[str, Any]) -> dict[str, Any]:
    return {signal: record.get(column) for signal, column in LOG_COLUMN.items()}


@dataclass(frozen=True)
class Reference:
    split: str
    bins: list[str]
    counts: list[int]

    def bin_of(self, signal: str, value: float | str) -> int | None:
        """The bin a live value falls in; None for a category the reference does not know (never counted)."""
        if signal in BOUNDS:
            return bin_index(float(value), BOUNDS[signal])
        return self.bins.index(str(value)) if value in self.bins else None


@dataclass(frozen=True)
class DriftProfile:
    vocabulary: frozenset[str]
    signals: dict[str, Reference]
    unavailable: dict[str, str]


def reference(signal: str, split: str, values: Sequence[Any], categories: Sequence[str] = ()) -> dict[str, Any]:
    """One signal's reference entry, counted from a split's values exactly as serving bins live ones."""
    if signal in BOUNDS:
        bounds = BOUNDS[signal]
        return {
            "split": split,
            "bins": bin_names(bounds),
            "counts": counts((bin_index(v, bounds) for v in values), len(bounds) + 1),
        }
    index = {c: i for i, c in enumerate(categories)}
    return {
        "split": split,
        "bins": list(categories),
        "counts": counts((index[v] for v in values if v in index), len(categories)),
    }


def profile_document(
    vocabulary: Sequence[str], signals: dict[str, dict[str, Any]], unavailable: dict[str, str]
) -> bytes:
    document = {
        "format": PROFILE_FORMAT,
        "vocabulary": sorted(set(vocabulary)),
        "signals": signals,
        "unavailable": unavailable,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def load_profile(bundle: Bundle) -> DriftProfile | None:
    """The bundle's drift profile, or None for a bundle exported before profiles existed."""
    name = bundle.manifest.get("drift_profile")
    if not name:
        return None
    if name not in bundle.manifest.get("files", {}):  # load_bundle hashed every listed file; this one must be one
        raise ValueError(f"drift_profile = {name!r} is not a checksummed file of the bundle")
    document = json.loads((bundle.path / name).read_text(encoding="utf-8"))
    if document.get("format") != PROFILE_FORMAT:
        raise ValueError(f"{name}: unknown drift profile format {document.get('format')!r}")
    signals = {
        signal: Reference(entry["split"], list(entry["bins"]), [int(c) for c in entry["counts"]])
        for signal, entry in document["signals"].items()
        if sum(entry["counts"]) > 0  # a split with nothing to count gives no reference
    }
    return DriftProfile(frozenset(document["vocabulary"]), signals, dict(document.get("unavailable", {})))
