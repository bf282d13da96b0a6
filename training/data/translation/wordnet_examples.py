"""WordNet's usage examples: short plain English sentences to back-translate (the `wordnet_bt` domain).

Every WordNet synset's gloss ends with examples of the word in use, written by the lexicographers to show ordinary
English ("the church was empty", "At what time does your train leave?", "he had to close the window against the
flurries"): about 48,000 distinct lines of everyday words, 6 words long on average. The test domains are game text
and the Bible; these are the everyday nouns and verbs (beach, train, hospital, to hurt) the model meets least.

The data comes from Debian's `wordnet-base` (WordNet 3.0, Princeton's WordNet licence: use, copy and distribute
for any purpose with the copyright notice, which the data card records), fetched as a pinned .deb like the game
catalogs; only the four `data.*` files are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from training.config import Workspace
from training.data.wordnet import ENCODING, synset_lines, wordnet_data_files

MIN_WORDS, MAX_WORDS = 3, 20

_QUOTED = re.compile(r'"([^"]+)"')
_TERMINAL = (".", "?", "!")


def examples_in_data_file(lines: Iterable[str]) -> list[str]:
    """The quoted usage examples of a WordNet `data.*` file's synset lines, in file order.

    A synset line is `offset lex_filenum ss_type words... pointers... | gloss; "example"; "example"`; the licence
    header lines start with two spaces."""
    found = []
    for line in synset_lines(lines):
        found.extend(q.strip() for q in _QUOTED.findall(line.split(" | ", 1)[1]))
    return found


def as_sentence(example: str) -> str | None:
    """An example as a sentence like the other domains' targets (capital first, closing punctuation), or None when
    it is too short, too long, or not plain ASCII English ("--" joins two thoughts the lexicographers left loose)."""
    text = " ".join(example.split())
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS or "--" in text or not text.isascii():
        return None
    text = text[0].upper() + text[1:]
    return text if text.endswith(_TERMINAL) else text + "."


def wordnet_sentences(ws: Workspace) -> list[str]:
    """WordNet's usage examples as sentences, in the order of the data files (adj, adv, noun, verb)."""
    sentences = []
    for path in wordnet_data_files(ws):
        with open(path, encoding=ENCODING) as f:
            sentences.extend(s for s in map(as_sentence, examples_in_data_file(f)) if s)
    return sentences
