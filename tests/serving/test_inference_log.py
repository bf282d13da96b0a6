"""The inference log's writer in one process (serving/inference_log.py): the records as written, raw text only when
asked, two tasks never mixed, and the retention limit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from serving.contract.production import log_files, read_log
from serving.inference_log import InferenceLog

HEAD = {"request_id": "a" * 32, "time": "t", "task": "sentiment", "model_digest": "d" * 64, "latency_ms": 1.0}
ROW = {"prediction": "positive", "confidence": 0.9, "novelty": 0.0, "text_sha256": "s" * 64, "text": "hello"}


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEMORIA_PRODUCTION_DIR", str(tmp_path))
    monkeypatch.setenv("MEMORIA_REPLICA_ID", f"test-{os.getpid()}-{time.monotonic_ns()}")  # fresh monitors per test
    for name in ("MEMORIA_LOG_TEXT", "MEMORIA_INFERENCE_LOG", "MEMORIA_LOG_RETENTION_S"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_records_are_written_one_per_text_without_raw_text_by_default(production: Path) -> None:
    log = InferenceLog()
    log.write(HEAD, [ROW, {**ROW, "prediction": "negative"}])
    log.write({**HEAD, "request_id": "b" * 32, "task": "translation"}, [{**ROW, "prediction": None}])
    records = sorted(read_log(production), key=lambda r: (r["task"], r["index"]))  # one file per task
    assert [(r["request_id"][0], r["task"], r["index"], r["prediction"]) for r in records] == [
        ("a", "sentiment", 0, "positive"),
        ("a", "sentiment", 1, "negative"),
        ("b", "translation", 0, None),
    ]
    assert all(r["text"] is None for r in records)
    # each task has its own monitor and file: BentoML's default monitor shares one logger between them
    assert {p.parts[-3] for p in log_files(production)} == {"inference-sentiment", "inference-translation"}


def test_raw_text_only_when_the_operator_turns_it_on(production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_LOG_TEXT", "true")
    InferenceLog().write(HEAD, [ROW])
    (record,) = read_log(production)
    assert record["text"] == "hello"
    monkeypatch.setenv("MEMORIA_LOG_TEXT", "maybe")
    with pytest.raises(ValueError, match="MEMORIA_LOG_TEXT='maybe'"):
        InferenceLog()


def test_nothing_older_than_the_retention_is_kept(production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_LOG_RETENTION_S", "2")  # two slices of one second: at most two rotated files
    log = InferenceLog()
    started = time.time()
    while time.time() - started < 4.5:
        log.write(HEAD, [ROW])
        time.sleep(0.05)
    files = log_files(production)
    assert 2 <= len(files) <= 3, files  # the live file and at most two rotated ones
    assert all(time.time() - p.stat().st_mtime < 3.5 for p in files)
    # a gone replica's old files are removed by the next worker that starts
    stale = production / "inference-log" / "gone-replica" / "inference-sentiment" / "data" / "data.0.log"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"request_id": "c" * 32}) + "\n")
    os.utime(stale, (started - 10, started - 10))
    InferenceLog()
    assert not stale.exists()


def test_the_log_can_be_turned_off(production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_INFERENCE_LOG", "false")
    InferenceLog().write(HEAD, [ROW])
    assert log_files(production) == []
