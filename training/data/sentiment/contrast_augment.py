"""Contrast augmentation: training sentences joined by "but", "however", "although", labelled by the clause that
carries the weight.

In "The opening is slow, but the film is gripping" the second clause decides; in "The film is gripping, even though
the opening is slow" the first does. Airline tweets rarely say a thing and then its opposite, so a model trained on
them reads such sentences by their louder half (docs/measured.md, "Sentiment off the tweets": the contrast probe's
misses). Joining one negative and one positive training tweet with a connective gives examples of exactly that rule,
with a label known for certain, from the training split only (validation and test stay as the humans labelled them).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

# (template, which part decides): {a} and {b} are the two clauses, in the order they are written
CONNECTIVES: tuple[tuple[str, str], ...] = (
    ("{a}, but {b}", "b"),
    ("{a}; however, {b}", "b"),
    ("{a}, yet {b}", "b"),
    ("Although {a}, {b}", "b"),
    ("Though {a}, {b}", "b"),
    ("{a}, even though {b}", "a"),
    ("{a}, although {b}", "a"),
)
POLAR = ("negative", "positive")
MAX_PART_WORDS = 20  # two parts stay well inside the tokenizer's cut (96 tokens)

_LEADING_MENTIONS = re.compile(r"^(?:[@.]\S*\s+)+")
_CLOSING = re.compile(r"[\s.!?;:,]+$")
# one clause: no link, no retweet, no second sentence ("Thanks. Never again"), no hashtag soup
_NOT_ONE_CLAUSE = re.compile(r"https?:|^RT\b|[.!?;]\s|#\w+.*#\w+")


def as_clause(text: str) -> str | None:
    """A tweet as a clause (its leading @mentions and closing punctuation removed), or None if it is not one plain
    clause of 3 to MAX_PART_WORDS words."""
    clause = _CLOSING.sub("", _LEADING_MENTIONS.sub("", text.strip()))
    if _NOT_ONE_CLAUSE.search(clause) or not 3 <= len(clause.split()) <= MAX_PART_WORDS:
        return None
    return clause


def _lower_first(clause: str) -> str:
    # "The" -> "the", but "I" and acronyms ("USAir", "I'm") keep their capital
    first = clause.split(maxsplit=1)[0] if clause else ""
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return clause[0].lower() + clause[1:]
    return clause


def contrast_examples(rows: Sequence[Mapping[str, Any]], share: float, seed: int) -> list[dict[str, str]]:
    """`share` x len(rows) synthetic examples, each a negative and a positive row of `rows` joined by a connective,
    labelled by the clause that decides. Only rows that are one plain clause take part (`as_clause`)."""
    if share <= 0:
        return []
    clauses: dict[str, list[str]] = {label: [] for label in POLAR}
    for row in rows:
        if row["label"] in clauses:
            clause = as_clause(row["text"])
            if clause is not None:
                clauses[row["label"]].append(clause)
    if not all(clauses.values()):
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(round(share * len(rows))):
        template, decides = rng.choice(CONNECTIVES)
        deciding = rng.choice(POLAR)
        other = POLAR[1 - POLAR.index(deciding)]
        parts = {decides: rng.choice(clauses[deciding]), "ab".replace(decides, ""): rng.choice(clauses[other])}
        a, b = parts["a"], _lower_first(parts["b"])
        if not template.startswith("{a}"):
            a = _lower_first(a)
        out.append({"text": template.format(a=a, b=b) + ".", "label": deciding})
    return out
