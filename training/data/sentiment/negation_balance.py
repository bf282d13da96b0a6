"""Negation balance: the training split's neutral and positive tweets that hold a negator, repeated until every
class holds negators as often as the negative class does.

In the airline tweets' training split 37% of negative tweets hold a negator ("never", "no", "didn't") against 15% of
neutral and 18% of positive ones (`holds_negator` below), so a model learns "a negator means a complaint". In reviews
that is wrong as often as it is right ("I have no complaints", "You can't go wrong with this one": docs/measured.md,
"Sentiment off the tweets", the contrast probe's negation misses). Repeating the human-labelled tweets that break the
rule takes the label information out of the negator alone, so what decides must be what the negator scopes over. The
labels are the people's own; only the training split is touched.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_WORDS = re.compile(r"[a-z']+")
# VADER rates "no" as a negative word (and handles it apart from its NEGATE list), but in "no complaints" it is a
# negator like any other, and the tweets tie it to complaints as they tie "never"
_ALSO_NEGATORS = frozenset({"no", "nobody"})
SCOPE = 3  # words before a rated word in which a negator flips it, as VADER counts


def holds_negator(text: str, negators: Iterable[str]) -> bool:
    """VADER's test (`negated`: a word of its NEGATE list, or any word ending in n't, "couldn't"), plus "no" and
    "nobody"."""
    negators = _ALSO_NEGATORS.union(negators)
    return any(is_negator(word, negators) for word in _words(text))


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower().replace("\u2019", "'"))


def is_negator(word: str, negators: frozenset[str]) -> bool:
    """A lower-cased word of `negators`, or any word ending in n't, as VADER counts them."""
    return word.endswith("n't") or word in negators


def negated_at(words: Sequence[str], i: int, negators: frozenset[str]) -> bool:
    """Whether a negator stands one to SCOPE words before words[i] (lower-cased), where VADER's rules flip it."""
    return any(is_negator(w, negators) for w in words[max(0, i - SCOPE) : i])


def negation_balance_examples(
    rows: Sequence[Mapping[str, Any]], negators: Iterable[str], seed: int
) -> list[dict[str, str]]:
    """Extra copies of the rows that hold a negator, per class, so that each class's share of rows with a negator
    reaches the highest class's share (whole copies first, then a seeded sample for the fraction)."""
    negators = frozenset(negators)
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["label"]] = totals.get(row["label"], 0) + 1
        if holds_negator(row["text"], negators):
            by_label.setdefault(row["label"], []).append(row)
    if not by_label:
        return []
    target_share = max(len(by_label.get(label, [])) / total for label, total in totals.items())
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for label in sorted(by_label):
        held = by_label[label]
        # n copies added to `held` make the share (h + n) / (total + n) equal the target
        wanted = round((target_share * totals[label] - len(held)) / (1 - target_share)) if target_share < 1 else 0
        whole, rest = divmod(max(0, wanted), len(held))
        chosen = [*held * whole, *rng.sample(held, rest)]
        out += [{"text": row["text"], "label": label} for row in chosen]
    return out


def negates_a_negative_word(text: str, negators: Iterable[str], valence: Mapping[str, float]) -> bool:
    """A word VADER rates -1 or lower with a negator (as `holds_negator` counts them) one to three words before it:
    "no worries", "never steered me wrong", "didn't need to worry"."""
    negators = _ALSO_NEGATORS.union(negators)
    words = _words(text)
    return any(valence.get(word, 0.0) <= -1.0 and negated_at(words, i, negators) for i, word in enumerate(words))


def negated_negative_examples(
    rows: Sequence[Mapping[str, Any]], negators: Iterable[str], valence: Mapping[str, float], seed: int
) -> list[dict[str, str]]:
    """Extra copies of the positive rows that negate a negative word, until they are as many as the negative rows
    that do (whole copies first, then a seeded sample).

    In the airline tweets' training split a negated negative word stands in 455 negative, 155 neutral and 137
    positive tweets: the people's labels themselves say that "no problem"-like text is a complaint three times in
    four, while in reviews it is mostly praise ("I have no complaints"). Only the rows that break that pattern are
    repeated, not every row with a negator (`negation_balance_examples`)."""
    negators = frozenset(negators)
    matching: dict[str, list[Mapping[str, Any]]] = {"positive": [], "negative": []}
    for row in rows:
        if row["label"] in matching and negates_a_negative_word(row["text"], negators, valence):
            matching[row["label"]].append(row)
    positive, negative = matching["positive"], matching["negative"]
    if not positive or len(positive) >= len(negative):
        return []
    whole, rest = divmod(len(negative) - len(positive), len(positive))
    chosen = [*positive * whole, *random.Random(seed).sample(positive, rest)]
    return [{"text": row["text"], "label": "positive"} for row in chosen]
