"""What each training run logs for the promotion gate: its validation split and hashed keys of its training texts.

With them the gate (training/registry/gate.py) can score any later bundle on the split this run was selected on,
leaving out texts either model trained on, even after the prepared data is re-made (~0.2 MB per run).
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import Path

import mlflow

from training.data.prepared import load_split

VALIDATION_ARTIFACT = "data/validation.jsonl.gz"
TRAIN_KEYS_ARTIFACT = "data/train_keys.txt.gz"
CARD_ARTIFACT = "data/card.json"


def text_key(text: str) -> str:
    """The identity of a text for "did this model train on it": case- and spacing-insensitive, hashed short."""
    return hashlib.blake2b(" ".join(text.casefold().split()).encode(), digest_size=8).hexdigest()


def log_evaluation_set(input_field: str, prepared_dir: Path) -> None:
    """Inside a training run: log the validation split the run is selected on and the keys of its training texts,
    so the gate can score any later bundle on them even after the prepared data is re-made (~0.2 MB per run)."""
    with tempfile.TemporaryDirectory() as tmp:
        validation = Path(tmp) / Path(VALIDATION_ARTIFACT).name
        validation.write_bytes(gzip.compress((Path(prepared_dir) / "validation.jsonl").read_bytes(), mtime=0))
        keys = sorted({text_key(row[input_field]) for row in load_split(Path(prepared_dir), "train")})
        train_keys = Path(tmp) / Path(TRAIN_KEYS_ARTIFACT).name
        train_keys.write_bytes(gzip.compress("\n".join(keys).encode(), mtime=0))
        for path in (validation, train_keys):
            mlflow.log_artifact(str(path), "data")
