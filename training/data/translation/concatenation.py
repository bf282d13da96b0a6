"""Training pairs made of two short pairs said one after the other ("Buenos días." + "¿Qué tal?").

Everyday Spanish often puts two short clauses in one line: a greeting and a question, a statement and its reason.
The training split has the clauses (game dialogue, back-translated tweets) but rarely two of them together, and a
model that only ever saw one clause per line drops or garbles one of them. Concatenating random pairs of
training sentences, both sides alike, is the augmentation of Nguyen et al. (2021, "Data augmentation by
concatenation for low-resource translation"): it adds no new words, only lines longer than their parts. Where both
first sentences end in a full stop, a coin's toss joins them with a comma, the way people write them ("Buenos días,
¿qué tal?" / "Good morning, what's up?"); every other join keeps both sentences as they are ("Buenos días. ¿Qué tal?").

Training only: the tokenizers are fitted, and validation, test and the probe scored, as without it. A pair with a
back-translated half is itself back-translated (`concatenated_bt`): it holds Apertium's Spanish, so the back-translation
tag marks it and a finish on people's translations leaves it out, as they do its half."""

from __future__ import annotations

import random
from collections.abc import Sequence

from training.data.translation import back_translation
from training.data.translation.pairs import TranslationPair

DOMAIN = "concatenated"


def concatenated_pairs(candidates: Sequence[TranslationPair], count: int, seed: int) -> list[TranslationPair]:
    """`count` pairs, each two distinct `candidates` drawn at random (seeded) and joined, Spanish and English alike."""
    if count <= 0:
        return []
    if len(candidates) < 2:
        raise ValueError(f"concatenating needs at least 2 short training sentences, the split has {len(candidates)}")
    rng = random.Random(f"concatenate:{seed}")
    made = []
    for n in range(count):
        first, second = rng.sample(range(len(candidates)), 2)
        a, b = candidates[first], candidates[second]
        # the comma only where both languages' first sentence ends in a full stop: the two sides join alike
        comma = rng.random() < 0.5 and ends_in_full_stop(a.source) and ends_in_full_stop(a.target)
        made.append(
            TranslationPair(
                id=f"{DOMAIN}:{n}:{a.id}+{b.id}",
                source=join_sentences(a.source, b.source, comma),
                target=join_sentences(a.target, b.target, comma, keep_first_word="I"),
                domain=concatenated_domain(a.domain, b.domain),
            )
        )
    return made


def concatenated_domain(first: str, second: str) -> str:
    """`concatenated`, or `concatenated_bt` when either half's domain is back-translated."""
    synthetic = back_translation.is_back_translated(first) or back_translation.is_back_translated(second)
    return DOMAIN + back_translation.SUFFIX if synthetic else DOMAIN


def ends_in_full_stop(text: str) -> bool:
    """One full stop at the end (not "...", not "?" or "!")."""
    text = text.rstrip()
    return text.endswith(".") and not text.endswith("..")


def join_sentences(first: str, second: str, comma: bool, keep_first_word: str = "") -> str:
    """`first` then `second`. With `comma` (`first` must end in one full stop), the stop becomes a comma and
    `second`'s first letter (after an opening "¿" or "¡") is lower-cased, unless its first word is
    `keep_first_word` (English "I", "I'm": a capital that is not the sentence's)."""
    first, second = first.strip(), second.strip()
    if not comma:
        return f"{first} {second}"
    if not ends_in_full_stop(first):
        raise ValueError(f"a comma join needs a first sentence that ends in a full stop, got {first!r}")
    opening = len(second) - len(second.lstrip("¿¡\"'“‘"))
    word = second[opening:].split(" ", 1)[0]
    if keep_first_word and (word == keep_first_word or word.startswith((keep_first_word + "'", keep_first_word + "’"))):
        tail = second
    else:
        tail = second[:opening] + second[opening : opening + 1].lower() + second[opening + 1 :]
    return f"{first[:-1]}, {tail}"
