"""What the service keeps of production, where it lies, and how either side reads it back.

    <MEMORIA_PRODUCTION_DIR>/                  default <BENTOML_HOME or ~/bentoml>/memoria/production
        inference-log/<replica>/<monitor>/data/data.<worker>.log[.<rotated>]   one JSON record per answered text
        feedback.db                                                           corrections (SQLite, WAL)

Serving writes both (serving/inference_log.py, serving/feedback.py); `make drift` and `make retrain FEEDBACK=1`
read them (training/production/). Every worker of every replica writes its own log file (a replica is one
`bentoml serve`: MEMORIA_REPLICA_ID, default <host>-<serve pid>), so no two processes ever append to one file
and no record is lost or interleaved; readers take the union of the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_FOLDER = "inference-log"
FEEDBACK_DB = "feedback.db"


def production_dir() -> Path:
    if os.environ.get("MEMORIA_PRODUCTION_DIR"):
        return Path(os.environ["MEMORIA_PRODUCTION_DIR"])
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")  # as serving/resolve.py bundle_cache
    return home / "memoria" / "production"


def log_files(root: Path | None = None) -> list[Path]:
    """Every inference-log file (live and rotated) of every replica and worker, oldest change first."""
    folder = (root or production_dir()) / LOG_FOLDER
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*/*/data/data.*") if p.is_file()]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def read_log(root: Path | None = None, task: str | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the inference log (optionally of one task). A line cut short by a crash is skipped."""
    for path in log_files(root):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if task is None or record.get("task") == task:
                    yield record


def find_request(request_id: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The records of one request (one per text, in text order), newest log files first; [] if none. Reads whole
    files, which the log's retention keeps bounded; feedback is rare next to predictions."""
    needle = f'"request_id": "{request_id}"'.encode()
    for path in reversed(log_files(root)):
        with open(path, "rb") as f:
            found = [json.loads(line) for line in f if needle in line]
        if found:
            return sorted(found, key=lambda r: r["index"])
    return []


@dataclass(frozen=True)
class Feedback:
    request_id: str
    index: int
    task: str
    model_version: str | None
    model_digest: str
    predicted: str
    correct: str  # the right label (sentiment) or translation
    text: str | None  # the input, when the log kept it or the client sent it (needed to train on)
    agreed: bool  # the correction equals what was predicted


def open_feedback(root: Path | None = None) -> sqlite3.Connection:
    """The feedback store, created on first use. WAL: writers in several workers and a reader (retrain) at once."""
    path = (root or production_dir()) / FEEDBACK_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS feedback (request_id TEXT NOT NULL, item INTEGER NOT NULL, time TEXT NOT NULL,"
        " task TEXT NOT NULL, model_version TEXT, model_digest TEXT NOT NULL, predicted TEXT NOT NULL,"
        " correct TEXT NOT NULL, text TEXT, agreed INTEGER NOT NULL, PRIMARY KEY (request_id, item))"
    )
    return db


def store_feedback(db: sqlite3.Connection, feedback: Feedback, time: str) -> None:
    """One correction per answered text: a later one for the same text replaces it."""
    db.execute(
        "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            feedback.request_id,
            feedback.index,
            time,
            feedback.task,
            feedback.model_version,
            feedback.model_digest,
            feedback.predicted,
            feedback.correct,
            feedback.text,
            int(feedback.agreed),
        ),
    )


def read_feedback(task: str, root: Path | None = None) -> list[Feedback]:
    """Every correction of `task`, oldest first."""
    path = (root or production_dir()) / FEEDBACK_DB
    if not path.exists():
        return []
    db = open_feedback(root)
    try:
        rows = db.execute(
            "SELECT request_id, item, task, model_version, model_digest, predicted, correct, text, agreed"
            " FROM feedback WHERE task = ? ORDER BY time, request_id, item",
            (task,),
        ).fetchall()
    finally:
        db.close()
    return [Feedback(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8])) for r in rows]
