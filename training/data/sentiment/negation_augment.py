"""Negation augmentation: training tweets whose rated adjective becomes its WordNet antonym under a negator, label
kept ("you guys are the best" -> "you guys aren't the worst", positive; "the service was bad" -> "the service was
not good", negative).

The airline tweets teach that a negator means a complaint: a negator before a negative word stands in 455 negative
and 137 positive training tweets (docs/measured.md, "Sentiment off the tweets"), so `default` answers "negative" for
nearly every negated negative statement of the contrast probe ("We have never had a bad meal"), while VADER's rules,
which the model reads per token (`rule_valence`), say positive. Repeating the 137 (`negated_negative_balance`) moved
that by one sentence. These examples show the rule itself, many times and over many words: a negated word counts as its
opposite, with a label known from the human-labelled tweet around it. Both polarities are rewritten, as many of
each, so a negator alone says nothing about the label and what it scopes over must (or the positive tweets alone,
against the tweets' skew).

Measured (docs/measured.md, "Negated antonyms"): the model learned the pairs it was shown ("not bad", "never unhelpful"
read positive) and not the rule ("not boring", "no complaints" still read negative), and no variant read more probe
sentences than `default`, so no preset uses it.

The antonyms are WordNet 3.0's direct adjective antonyms (`!` pointers of data.adj: good/bad, helpful/unhelpful,
comfortable/uncomfortable, best/worst), kept where the lexicon rates the two words with opposite signs, at least 1
each. Only the training split is touched, after the tokenizer is fitted (the rewrites are made of lexicon words).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from training.data.sentiment.negation_balance import negated_at

# Words whose use in the tweets is mostly not the adjective WordNet rates against its antonym: "right now", "well,",
# "sure!", "lost my bag" (a verb), "won" / "saved" (verbs), "hot"/"cold" (weather, food), "dead" (a phone battery),
# "loose", "ill", "true" ("so true": agreement, not a quality)
NOT_THE_ADJECTIVE = frozenset({"right", "well", "sure", "lost", "won", "saved", "hot", "cold", "dead", "loose", "ill"})
NOT_THE_ADJECTIVE |= {"true", "false"}
MIN_VALENCE = 1.0  # both words of a pair rated at least this strongly, with opposite signs
# "not" goes before these rather than between them and the adjective: "not the worst", "not very bad"
_LEADING = frozenset({"the", "a", "an", "so", "very", "really", "too", "pretty", "quite", "most", "more", "such"})
_LEADING |= {"much", "even", "absolutely", "extremely"}
# after a copula the negator is "not", its contraction or "never" ("is not bad", "isn't bad", "was never bad");
# elsewhere "not" alone ("a not bad flight" reads oddly, "a never bad flight" worse)
_CONTRACTED = {"is": "isn't", "was": "wasn't", "are": "aren't", "were": "weren't"}
_COPULAS = frozenset(_CONTRACTED) | {"be", "been", "am", "i'm", "it's", "you're", "they're", "we're"}
# a whole word: not part of "10A", "Perfect4_Him", a #hashtag or an @mention
_WORD = re.compile(r"(?<![\w@#'])[A-Za-z']+(?![\w])")


def polar_antonyms(antonyms: Mapping[str, Iterable[str]], valence: Mapping[str, float]) -> dict[str, tuple[str, ...]]:
    """Word -> its antonyms rated with the opposite sign (both at least MIN_VALENCE). Left out: NOT_THE_ADJECTIVE,
    and participles ("loved", "loving", "pleased"), which in tweets are mostly the verb ("just loved the drive")."""
    out = {}
    for word, others in antonyms.items():
        v = valence.get(word, 0.0)
        if abs(v) < MIN_VALENCE or word in NOT_THE_ADJECTIVE or word.endswith(("ed", "ing")):
            continue
        opposite = sorted(o for o in others if valence.get(o, 0.0) * v < 0 and abs(valence[o]) >= MIN_VALENCE)
        if opposite:
            out[word] = tuple(opposite)
    return out


def any_opposite_word(pairs: Mapping[str, Sequence[str]], valence: Mapping[str, float]) -> dict[str, tuple[str, ...]]:
    """The same words to rewrite as `pairs`, each to be replaced by any alphabetic word the lexicon rates with the
    opposite sign (at least MIN_VALENCE), not its antonym alone: "not the best" -> "not the boring", "not the
    overpriced". Ungrammatical often, but the words change from one example to the next, so what repeats is the
    rule (a negated rated word counts as its opposite, which the per-token features and `rule_valence` carry), not
    a pair of words to remember ("not bad": positive, "not boring": still negative)."""
    rated = {w: v for w, v in valence.items() if w.isalpha() and abs(v) >= MIN_VALENCE}
    positive = tuple(sorted(w for w, v in rated.items() if v > 0))
    negative = tuple(sorted(w for w, v in rated.items() if v < 0))
    return {word: negative if valence[word] > 0 else positive for word in pairs}


def negated_antonym(
    text: str, antonyms: Mapping[str, Sequence[str]], negators: frozenset[str], rng: random.Random
) -> str | None:
    """`text` with its first un-negated word of `antonyms` replaced by a negator and an antonym, or None if it has
    none (the tokenizer lowercases, so case is left as it falls). The negator goes before a determiner or booster
    that precedes the word; after a copula it is "not", "never" or the copula's contraction, a third each."""
    matches = list(_WORD.finditer(text))
    lowered = [m.group().lower().replace("\u2019", "'") for m in matches]
    for i, word in enumerate(lowered):
        if word not in antonyms or negated_at(lowered, i, negators):
            continue
        antonym = rng.choice(antonyms[word])
        if matches[i].group()[0].isupper():
            antonym = antonym[0].upper() + antonym[1:]
        start = i
        while start > 0 and lowered[start - 1] in _LEADING:
            start -= 1
        head = text[: matches[start].start()]
        between = text[matches[start].start() : matches[i].start()]
        tail = text[matches[i].end() :]
        before = lowered[start - 1] if start > 0 else ""
        form = rng.choice(("not", "contracted", "never")) if before in _COPULAS else "not"
        if form == "contracted" and before in _CONTRACTED:
            verb = matches[start - 1]
            head = text[: verb.start()] + _CONTRACTED[before] + text[verb.end() : matches[start].start()]
            return head + between + antonym + tail
        return f"{head}{'never' if form == 'never' else 'not'} {between}{antonym}{tail}"
    return None


def negation_examples(
    rows: Sequence[Mapping[str, Any]],
    antonyms: Mapping[str, Iterable[str]],
    valence: Mapping[str, float],
    negators: Iterable[str],
    seed: int,
    polarities: Sequence[str] = ("positive", "negative"),
    any_word: bool = False,
) -> list[dict[str, str]]:
    """One rewrite (`negated_antonym`) per row of `polarities` that has one; with both polarities the larger side is
    sampled down to the smaller, so both hold as many negated antonyms. A row's rewritten word has its
    label's sign ("best" in a positive tweet, "worst" in a negative one): the label then holds for the rewrite, where
    a word against the label ("good" in "not a good day") may not be what decided it."""
    pairs = polar_antonyms(antonyms, valence)
    if any_word:
        pairs = any_opposite_word(pairs, valence)
    by_sign = {
        "positive": {w: a for w, a in pairs.items() if valence[w] > 0},
        "negative": {w: a for w, a in pairs.items() if valence[w] < 0},
    }
    negator_set = frozenset(negators)
    rng = random.Random(seed)
    rewritten: dict[str, list[str]] = {label: [] for label in polarities}
    for row in rows:
        if row["label"] in rewritten:
            text = negated_antonym(row["text"], by_sign[row["label"]], negator_set, rng)
            if text is not None:
                rewritten[row["label"]].append(text)
    size = min(len(texts) for texts in rewritten.values())
    return [
        {"text": text, "label": label}
        for label, texts in rewritten.items()
        for text in (texts if len(texts) == size else rng.sample(texts, size))
    ]
