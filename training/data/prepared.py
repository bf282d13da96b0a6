"""A prepared data set on disk, the same for every task: `train.jsonl`, `validation.jsonl`, `test.jsonl` (one JSON
object per line) and `card.json`, in `ws.prepared(task, source)`.

The card is written last and carries the fingerprint of what the preparation depended on (config, input identity,
pipeline version), so a folder is reused only when its card is there, its fingerprint matches and every file it
lists is unchanged. Each task's corpus module supplies the fingerprint and how a row reads as a typed record
(`decode`); finding, reusing, writing and loading are here, once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from serving.contract.files import sha256_file
from training.data.files import reusable_card, write_json_atomic, write_jsonl_atomic

SPLITS = ("train", "validation", "test")
CARD_NAME = "card.json"

T = TypeVar("T")
Row = dict[str, Any]


def _as_row(row: Row) -> Any:
    return row


@dataclass(frozen=True)
class Prepared(Generic[T]):
    """Where a prepared data set lives, its card, whether this call reused it, and how its rows read as records
    (`decode`: `(text, label)` examples for sentiment, `TranslationPair`s for translation)."""

    dir: Path
    card: dict[str, Any]
    reused: bool = False
    decode: Callable[[Row], T] = field(default=_as_row, repr=False, compare=False)

    def path(self, split: str) -> Path:
        """The file of `split` (ValueError for a name outside SPLITS)."""
        return split_path(self.dir, split)

    def rows(self, split: str) -> list[Row]:
        """The split as plain dicts, as written."""
        return load_split(self.dir, split)

    def pairs(self, split: str) -> list[T]:
        """The split as the task's records."""
        return [self.decode(row) for row in self.rows(split)]


def split_path(dir: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    return Path(dir) / f"{split}.jsonl"


def load_split(dir: Path, split: str) -> list[Row]:
    """Rows of a prepared split file, as dicts."""
    with open(split_path(dir, split), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def reuse(out_dir: Path, fingerprint: str, decode: Callable[[Row], T]) -> Prepared[T] | None:
    """The data set in `out_dir` if its card matches `fingerprint` and its files are unchanged, else None."""
    card = reusable_card(out_dir, CARD_NAME, fingerprint)
    return None if card is None else Prepared(out_dir, card, reused=True, decode=decode)


def find_prepared(out_dir: Path, fingerprint: Callable[[], str], decode: Callable[[Row], T]) -> Prepared[T] | None:
    """`reuse`, for callers that must never prepare: None also when the fingerprint cannot be computed here (e.g.
    the run's local input file is not on this machine). A run is only fairly scored on its own splits, and another
    preparation of the same source (say a smaller `max_examples`) would mix its training rows into them."""
    try:
        expected = fingerprint()
    except (OSError, ValueError):
        return None
    return reuse(out_dir, expected, decode)


def write_prepared(
    out_dir: Path,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    build_card: Callable[[dict[str, str]], dict[str, Any]],
    decode: Callable[[Row], T],
) -> Prepared[T]:
    """Write each split as `<name>.jsonl`, then the card `build_card(files)` makes from their sha256s.

    The old card goes first (next to half-rewritten splits it would vouch for them) and the new one last, so a card
    marks a complete preparation."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CARD_NAME).unlink(missing_ok=True)
    files = {}
    for name, rows in splits.items():
        path = split_path(out_dir, name)
        write_jsonl_atomic(path, rows)
        files[path.name] = sha256_file(path)
    card = build_card(files)
    write_json_atomic(out_dir / CARD_NAME, card)
    return Prepared(out_dir, card, reused=False, decode=decode)
