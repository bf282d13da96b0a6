"""The `csv` source: a local UTF-8 CSV with columns `text,label`, labels among LABELS (users' own data)."""

from __future__ import annotations

import csv
from pathlib import Path

from serving.contract.files import sha256_file
from training.config import SentimentDataConfig
from training.data.sentiment.records import LABELS, Example, RawCorpus
from training.data.sentiment.repair import fix_text


def required_csv(cfg: SentimentDataConfig) -> Path:
    """The file `data.path` names; a ValueError that says what to pass when it is not set."""
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
            examples.append(Example(fix_text(row["text"] or ""), label))
    return RawCorpus(examples, {"kind": "file", "path": str(path.resolve()), "sha256": sha256_file(path)})
