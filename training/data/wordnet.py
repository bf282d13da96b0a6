"""WordNet 3.0's database files from Debian's `wordnet-base`: one pinned download that both tasks read.

Translation reads the lexicographers' usage examples (training/data/translation/wordnet_examples.py, the `wordnet_bt`
domain); sentiment reads the adjectives' antonym pointers (training/data/sentiment/negation_augment.py). The .deb is
fetched and extracted once, into the folder the translation data has always used, so machines that prepared
translation data already hold it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from training.config import Workspace
from training.data.debian import PinnedDeb, extract_once

WORDNET = PinnedDeb(
    name="wordnet-base",
    version="1:3.0-37",
    sha256="61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
    licence="WordNet 3.0 licence (Princeton; permissive, keep the notice: WordNet 3.0 Copyright 2006 by Princeton "
    "University. All rights reserved.)",
    source="wordnet",
)
DATA_FILES = "usr/share/wordnet/data.*"
ENCODING = "latin-1"  # WordNet 3.0's files are Latin-1 (a few accented loanwords)

_SYNTACTIC_MARKER = re.compile(r"\([a-z]+\)$")  # "galore(ip)": an adjective's position marker, not part of it


def wordnet_dir(ws: Workspace) -> Path:
    return ws.data_dir / "translation" / "wordnet" / WORDNET.sha256[:12]


def wordnet_data_files(ws: Workspace) -> list[Path]:
    """The four `data.*` files (adj, adv, noun, verb), fetched and extracted the first time only."""
    return sorted(extract_once([WORDNET], DATA_FILES, wordnet_dir(ws), ws.artifact_cache).rglob("data.*"))


def synset_lines(lines: Iterable[str]) -> Iterable[str]:
    """A `data.*` file's synset lines (the licence header's lines start with two spaces)."""
    return (line for line in lines if not line.startswith("  ") and " | " in line)


def antonyms(lines: Iterable[str]) -> dict[str, set[str]]:
    """Word -> its direct antonyms, from one `data.*` file's `!` pointers ("good" -> {"bad", "evil"}).

    A synset line is `offset lex_filenum ss_type w_cnt word lex_id ... p_cnt (symbol offset pos source/target)...`,
    counts in hex except p_cnt; a lexical pointer's source/target holds the two words' numbers (hex, 2 + 2 digits)."""
    words_of: dict[str, list[str]] = {}
    pointers: list[tuple[str, str, str]] = []
    for line in synset_lines(lines):
        fields = line.split(" | ", 1)[0].split()
        count = int(fields[3], 16)
        words = [_SYNTACTIC_MARKER.sub("", fields[4 + 2 * i]).lower() for i in range(count)]
        words_of[fields[0]] = words
        at = 4 + 2 * count
        for k in range(int(fields[at])):
            symbol, offset, _pos, source_target = fields[at + 1 + 4 * k : at + 5 + 4 * k]
            if symbol == "!":
                source = words[int(source_target[:2], 16) - 1]
                pointers.append((source, offset, source_target[2:]))
    found: dict[str, set[str]] = {}
    for source, offset, target in pointers:
        if offset in words_of:
            found.setdefault(source, set()).add(words_of[offset][int(target, 16) - 1])
    return found
