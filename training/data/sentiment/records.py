"""The records every sentiment step passes on: labels, examples, a source's raw corpus, de-duplication figures."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

LABELS = ("negative", "neutral", "positive")
# Bump when repair, cleaning or splitting changes: the fingerprint then differs and prepared data is rebuilt.
PIPELINE_VERSION = 2  # 2: key from the tokenizer's view, retweet and truncation rules, near-duplicate groups


class Example(NamedTuple):
    text: str
    label: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Example:
        """The example of a prepared split's `{"text", "label"}` row."""
        return cls(row["text"], row["label"])


@dataclass
class RawCorpus:
    """Examples as read from a source (text repaired, not yet cleaned), where they came from, and notes for the
    card. `splits` is set only by sources that come with an official split (sst)."""

    examples: list[Example]
    provenance: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[Example]] | None = None


@dataclass
class DedupStats:
    duplicate_rows: int = 0  # rows dropped because an equal text was kept (whatever their label)
    conflict_groups: int = 0  # texts seen with more than one label
    resolved_by_majority: int = 0
    tie_groups: int = 0
    tie_rows: int = 0  # rows of tied texts, all dropped
    minority_rows: int = 0  # rows whose label lost a majority vote (included in duplicate_rows)

    def add(self, other: DedupStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
