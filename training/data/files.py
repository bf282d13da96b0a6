"""Prepared data on disk: JSON(L) files written atomically (the contract's one writer), fingerprints, reuse."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from serving.contract.files import atomic_write, sha256_file


def write_jsonl_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    def write(f: IO[str]) -> None:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    atomic_write(path, write)


def write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"))


def fingerprint(cfg: Any, identity: Mapping[str, Any], pipeline_version: int | str) -> str:
    """sha256 of what a preparation depends on: its config, its input's identity, and the pipeline's version."""
    payload = {"config": dataclasses.asdict(cfg), "input": dict(identity), "pipeline_version": pipeline_version}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def reusable_card(out_dir: Path, card_name: str, expected_fingerprint: str) -> dict[str, Any] | None:
    """The existing card if it matches the fingerprint and every file it lists is there unchanged, else None."""
    try:
        card = json.loads((out_dir / card_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if card.get("fingerprint") != expected_fingerprint:
        return None
    for name, digest in card.get("files", {}).items():
        path = out_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return card


def files_digest(paths: Iterable[Path]) -> str:
    """One sha256 over the names and contents of `paths` (a local source made of several files)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()
