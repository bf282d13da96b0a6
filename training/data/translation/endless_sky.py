"""Endless Sky's story text: modern plain English to back-translate (the `endless_sky_bt` domain).

Endless Sky (Debian `endless-sky-data` 0.9.8-1.2, GPL-3+) is a space-trading game whose missions are told in
conversations: a narrator in the second person ("You say goodbye to them and wish them well.") and characters
talking to the player in everyday spoken English ("Do you have a bunk ready for me?", "Sure, I'd be glad to help.").
It has no Spanish translation, so it is English to back-translate, like the tweets and WordNet's examples: about
6,000 distinct sentences of 3-20 words.

The game's data files (`usr/share/games/endless-sky/data/*.txt`) hold that text in two forms, both read here:
- backtick strings, the paragraphs of conversations, dialogs and descriptions (they may contain double quotes);
- one-line `description "..."`, `spaceport "..."`, `dialog "..."` and `tip "..."` entries.
A paragraph that quotes someone gives its quotations (the spoken lines; the narration around them, "James pulls the
parents aside and says,", is not a sentence on its own); any other paragraph gives its own sentences. Sentences
with the game's substitutions (`<planet>`, `<payment>`) or an alien's word choices in brackets ("it will [befoul,
soil, defile] its own home") are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from training.config import Workspace
from training.data.debian import PinnedDeb, extract_once
from training.data.translation.gettext_pairs import split_sentences

ENDLESS_SKY = PinnedDeb(
    name="endless-sky-data",
    version="0.9.8-1.2",
    sha256="e45835e05a11e84bb1a890a0ded390246a53b8318f21a25925aa70fa54f80c13",
    licence="GPL-3+ (the game's data text)",
    source="endless-sky",
)
DATA_FILES = "usr/share/games/endless-sky/data/*.txt"
MIN_WORDS, MAX_WORDS = 3, 20

# a backtick string (the game writes each paragraph on one line), or a one-line quoted entry
_TEXT = re.compile(r"`([^`]*)`|^\s*(?:description|spaceport|dialog|tip)\s+\"([^\"`]*)\"\s*$", re.MULTILINE)
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”")
_TERMINAL = (".", "?", "!")


def paragraphs(text: str) -> Iterator[str]:
    """The prose of one data file, paragraph by paragraph, in file order."""
    for match in _TEXT.finditer(text):
        paragraph = " ".join((match.group(1) or match.group(2) or "").split())
        if paragraph:
            yield paragraph


def sentences_of(paragraph: str) -> list[str]:
    """The plain sentences of one paragraph: its quotations when it quotes someone, else its own sentences."""
    quotes = [a or b for a, b in _QUOTED.findall(paragraph)]
    out = []
    for piece in quotes or [paragraph]:
        for sentence in split_sentences(piece.strip()):
            if plain := as_sentence(sentence):
                out.append(plain)
    return out


def as_sentence(text: str) -> str | None:
    """`text` as a target sentence (capital first, closing punctuation), or None when it is too short or long, not
    plain ASCII, or holds a substitution or bracketed alternatives."""
    text = " ".join(text.split()).strip(' "“”')
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS or not text.isascii() or any(c in text for c in "<>[]{}"):
        return None
    if not text[0].isupper() or not text.endswith(_TERMINAL):
        return None  # the tail of a quotation broken by narration ("...," she says, "...") is not a sentence
    return text


def endless_sky_dir(ws: Workspace) -> Path:
    return ws.data_dir / "translation" / "endless_sky" / ENDLESS_SKY.sha256[:12]


def endless_sky_sentences(ws: Workspace) -> list[str]:
    """The game's sentences, in the order of its data files (sorted by name) and of the text in each."""
    out = extract_once([ENDLESS_SKY], DATA_FILES, endless_sky_dir(ws), ws.artifact_cache)
    found = []
    for path in sorted(out.rglob("*.txt")):
        for paragraph in paragraphs(path.read_text(encoding="utf-8")):
            found.extend(sentences_of(paragraph))
    return found
