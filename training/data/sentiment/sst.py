"""The `sst` source: the Stanford Sentiment Treebank in PTB tree format (`trainDevTestTrees_PTB.zip`), with its
official train/dev/test split. Root label 0-1 -> negative, 2 -> neutral, 3-4 -> positive."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from serving.contract.files import sha256_file
from training.config import SentimentDataConfig, Workspace
from training.data.files import files_digest
from training.data.sentiment.records import Example, RawCorpus
from training.data.sentiment.repair import fix_text

log = logging.getLogger(__name__)

SST_URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
SST_ARCHIVE = "trainDevTestTrees_PTB.zip"
SST_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}
SST_LABELS = {0: "negative", 1: "negative", 2: "neutral", 3: "positive", 4: "positive"}

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


def sst_file_in_folder(folder: Path, name: str) -> Path:
    """`name` (train.txt, dev.txt, test.txt) in an SST folder, at its top or under trees/."""
    for path in (folder / name, folder / "trees" / name):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{folder} has neither {name} nor trees/{name}")


def sst_folder_digest(folder: Path) -> str:
    """One sha256 over the three tree files of an SST folder."""
    return files_digest([sst_file_in_folder(folder, name) for name in SST_FILES.values()])


def _sst_lines(location: Path, name: str) -> list[str]:
    if location.is_dir():
        data = sst_file_in_folder(location, name).read_bytes()
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
            examples.append(Example(fix_text(sst_sentence(leaves)), SST_LABELS[root]))
        splits[split] = examples
    provenance = {
        "kind": "zip" if location.is_file() else "folder",
        "path": str(location.resolve()),
        "sha256": sha256_file(location) if location.is_file() else sst_folder_digest(location),
        "url": SST_URL,
        "labels": "root label 0-1 negative, 2 neutral, 3-4 positive",
    }
    return RawCorpus([ex for split in splits.values() for ex in split], provenance, splits=splits)
