"""Corrections from production (POST /feedback, serving/contract/production.py) as training examples.

`merge_feedback` adds them to the TRAINING split only, after the project's dedupe (training/data/sentiment/dedupe.py
`dedupe_key`: the text as the model sees it):
- a correction whose text is, to the model, a validation or test text is dropped: it would leak into the scores;
- corrections of the same text are one example, the latest one's label;
- a correction of a text already in the training split relabels that row (the user said its answer was wrong);
- the rest are new rows.
A held-out slice (by the hash of the key, so a text stays on its side from one retrain to the next) is kept apart
as an extra evaluation set that the gate reports (training/registry/gate.py); it is never trained on.
Corrections without their text (the service's log did not keep it and the client did not send it) cannot be used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.contract.production import Feedback

Row = dict[str, Any]


@dataclass(frozen=True)
class FeedbackMerge:
    train: list[Row]  # the training split with the corrections in
    held_out: list[Row]  # corrections kept apart for evaluation
    added: int  # new training rows
    relabelled: int  # training rows whose label a correction changed
    dropped: dict[str, int] = field(default_factory=dict)  # why the other corrections were not used

    @property
    def used(self) -> int:
        return self.added + self.relabelled

    def metrics(self) -> dict[str, int]:
        out = {"feedback/used": self.used, "feedback/added": self.added, "feedback/relabelled": self.relabelled}
        out["feedback/held_out"] = len(self.held_out)
        out.update({f"feedback/dropped_{reason}": n for reason, n in self.dropped.items()})
        return out


def held_out(key: str, share: float) -> bool:
    """Whether a text (by its dedupe key) belongs to the held-out slice: stable across runs and machines."""
    bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
    return bucket < share


def merge_feedback(
    splits: dict[str, list[Row]],
    corrections: Sequence[Feedback],
    key: Callable[[str], str],
    holdout_share: float,
    input_field: str = "text",
    target_field: str = "label",
) -> FeedbackMerge:
    """The training split with `corrections` merged in (see the module docstring); `splits` is left unchanged."""
    dropped = {"no_text": 0, "in_validation_or_test": 0, "duplicate": 0}
    evaluated = {key(row[input_field]) for name in ("validation", "test") for row in splits.get(name, [])}
    latest: dict[str, Feedback] = {}
    for c in corrections:  # oldest first: a later correction of the same text replaces an earlier one
        if not c.text:
            dropped["no_text"] += 1
            continue
        k = key(c.text)
        if k in evaluated:
            dropped["in_validation_or_test"] += 1
            continue
        if k in latest:
            dropped["duplicate"] += 1
        latest[k] = c
    train = [dict(row) for row in splits["train"]]
    positions = {key(row[input_field]): i for i, row in enumerate(train)}
    held, added, relabelled = [], 0, 0
    for k, c in latest.items():
        row = {input_field: c.text, target_field: c.correct}
        if held_out(k, holdout_share):
            held.append(row)
        elif k in positions:
            train[positions[k]] = {**train[positions[k]], target_field: c.correct}
            relabelled += 1
        else:
            train.append(row)
            added += 1
    return FeedbackMerge(train, held, added, relabelled, dropped)
