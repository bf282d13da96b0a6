"""The inference log: one JSON record per answered text, written through BentoML's monitoring API (a MonitorBase).

Each record: request_id (also the response's X-Request-Id header), index (the text's place in its request), time
(UTC), task, endpoint, model (the X-Memoria-Model label), model_version, model_digest, latency_ms (of the whole
request), prediction, confidence (sentiment: the predicted label's probability; null for translation), the derived
input features (input_tokens, words, novelty, language) and text_sha256. The raw text only with
MEMORIA_LOG_TEXT=true (off by default: production text may hold personal data); `text` is then null otherwise.

Why a subclass of BentoML's DefaultMonitor rather than the default one (keeping its record and schema machinery,
`log` per column and a schema file per worker):
- DefaultMonitor configures ONE process-wide logger (`bentoml_monitor_data`): a second monitor in the same process
  (one per task here) re-points it, so both tasks' records would land in the second one's file;
- its files are named by worker index only, so two replicas sharing a folder would append to the same file;
- it rotates daily and keeps every file forever; it reserves `request_id` for BentoML's own id, which is 0 while
  tracing is off (the default here, serving/service.py), and stamps local time without a zone.
Here each monitor has its own logger, the folder is per replica (serving/contract/production.py), files rotate
so that nothing older than MEMORIA_LOG_RETENTION_S (default 7 days) is kept, and the time is UTC. The monitor is
made by the log itself and recorded into with its start_record/log/stop_record (what `with bentoml.monitor(name)`
runs), not fetched through `bentoml.monitor`: that keeps one monitor per name for the whole process, so a second
log in a process (tests) would write into the first one's folder, and its dependency injection binds arguments on
every call (a third of the log's cost per request).
MEMORIA_INFERENCE_LOG=false turns the log off (and with it POST /feedback, which needs it).
"""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import os
import socket
import time
from pathlib import Path
from typing import Any

from bentoml._internal.context import server_context  # the worker index, as DefaultMonitor itself reads it
from bentoml._internal.monitoring.default import DefaultMonitor

from serving.contract.production import LOG_FOLDER, production_dir

DEFAULT_RETENTION_S = 7 * 24 * 3600
ROTATIONS = 24  # files kept per worker: the retention is cut into this many slices


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0"):
        raise ValueError(f"{name}={raw!r}: must be true or false")
    return raw in ("true", "1")


def log_enabled() -> bool:
    return _flag("MEMORIA_INFERENCE_LOG", True)


def log_text() -> bool:
    return _flag("MEMORIA_LOG_TEXT", False)


def retention_s() -> int:
    raw = os.environ.get("MEMORIA_LOG_RETENTION_S", "").strip() or str(DEFAULT_RETENTION_S)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"MEMORIA_LOG_RETENTION_S={raw!r}: must be a whole number of seconds, at least 1")
    return int(raw)


def replica_id() -> str:
    """One folder per `bentoml serve`: the workers' parent process is the server itself."""
    return os.environ.get("MEMORIA_REPLICA_ID") or f"{socket.gethostname()}-{os.getppid()}"


class _JsonLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record.msg, ensure_ascii=False)


class InferenceMonitor(DefaultMonitor):
    PRESERVED_COLUMNS = ()  # our request_id and time, not BentoML's (see the module docstring)

    def _init_logger(self) -> None:
        worker = server_context.worker_index or 0
        root = Path(self.log_path) / self.name
        for kind in ("data", "schema"):
            (root / kind).mkdir(parents=True, exist_ok=True)
        retention = retention_s()
        slices = min(ROTATIONS, retention)
        self.data_logger = self._logger("data", root / "data" / f"data.{worker}.log", retention // slices, slices)
        self.schema_logger = self._logger("schema", root / "schema" / f"schema.{worker}.log", retention, 1)

    def _logger(self, kind: str, path: Path, interval_s: int, keep: int) -> logging.Logger:
        logger = logging.getLogger(f"memoria.monitor.{self.name}.{kind}")
        logger.handlers.clear()
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = logging.handlers.TimedRotatingFileHandler(
            path, when="S", interval=max(1, interval_s), backupCount=keep, encoding="utf-8", utc=True
        )
        handler.setFormatter(_JsonLine())
        logger.addHandler(handler)
        return logger

    def export_data(self, datas: dict[str, collections.deque[Any]]) -> None:
        if self.data_logger is None:
            self._init_logger()
        assert self.data_logger is not None
        while True:
            try:
                record = {k: v.popleft() for k, v in datas.items()}
            except IndexError:
                break
            self.data_logger.info(record)


class InferenceLog:
    """Per worker: `write(...)` one request's records (one `bentoml.monitor` record block per request)."""

    def __init__(self) -> None:
        self.enabled = log_enabled()
        self.keep_text = log_text()
        self.folder = production_dir() / LOG_FOLDER / replica_id()
        self._monitors: dict[str, InferenceMonitor] = {}
        if self.enabled:
            _forget_old_files(production_dir() / LOG_FOLDER, retention_s())

    def write(self, head: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """`head`: the columns every text of the request shares; `rows`: each text's own (same keys per task)."""
        if not self.enabled or not rows:
            return
        task = head["task"]
        monitor = self._monitors.get(task)
        if monitor is None:
            monitor = self._monitors[task] = InferenceMonitor(f"inference-{task}", log_path=str(self.folder))
        # What `with bentoml.monitor(name) as monitor:` does around its body, on this log's own monitor (see above)
        monitor.start_record()
        try:
            self._log(monitor, head, rows)
        finally:
            monitor.stop_record()

    def _log(self, monitor: Any, head: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        for index, row in enumerate(rows):
            columns = {**head, "index": index, **row}
            if not self.keep_text:
                columns["text"] = None
            for name, value in columns.items():
                monitor.log(value, name, _ROLES.get(name, "feature"), _TYPES.get(name, "categorical"))


_ROLES = {"prediction": "prediction", "confidence": "prediction"}
_TYPES = {
    "latency_ms": "numerical",
    "confidence": "numerical",
    "input_tokens": "numerical",
    "words": "numerical",
    "novelty": "numerical",
    "index": "numerical",
}


def _forget_old_files(folder: Path, retention: int) -> None:
    """Files older than the retention, also those of replicas that are gone (their own rotation stopped with
    them). Each worker runs this at start: deleting a file twice is harmless."""
    if not folder.is_dir():
        return
    cutoff = time.time() - retention
    for path in folder.glob("*/*/*/*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # another worker got there first
