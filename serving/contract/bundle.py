"""The model bundle: the one contract between training/ and serving/.

A bundle is a folder:

    manifest.json         format, task, graphs, tokenizers, labels, config, metrics, source run, versions,
                          and the sha256 of every other file
    *.onnx                the graph(s): `classifier` (sentiment) or `encoder` + `decoder_step` (translation)
    *tokenizer*.json      Hugging Face `tokenizers` files, loaded unchanged by serving (no train/serve skew)

Training writes it with `write_manifest`; serving opens it with `load_bundle`, which refuses a bundle whose
files are missing, altered or of an unknown format. This module imports only the standard library, so both
sides can use it and serving stays free of torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.contract.files import atomic_write_bytes, sha256_file

FORMAT = "memoria-bundle/1"
MANIFEST = "manifest.json"

# What each task's manifest must name, and the graph inputs/outputs serving relies on.
REQUIRED_GRAPHS = {"sentiment": ("classifier",), "translation": ("encoder", "decoder_step")}
REQUIRED_TOKENIZERS = {"sentiment": ("text",), "translation": ("source", "target")}
REQUIRED_FIELDS = {"sentiment": ("labels",), "translation": ()}  # non-empty top-level fields


class BundleError(RuntimeError):
    """The bundle cannot be served: the message says which file or field is wrong."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: dict[str, Any]
    digest: str  # sha256 of manifest.json, which covers every file's sha256: the bundle's identity

    @property
    def task(self) -> str:
        return self.manifest["task"]

    def graph(self, name: str) -> Path:
        return self.path / self.manifest["graphs"][name]

    def tokenizer(self, name: str) -> Path:
        return self.path / self.manifest["tokenizers"][name]

    @property
    def short_digest(self) -> str:
        return self.digest[:12]


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the format tag and every file's sha256 to `manifest` and write it as the bundle's manifest.json.

    Written last and atomically: a folder without a manifest is not a bundle, so a crash mid-export never
    leaves something that looks servable.
    """
    files = {
        p.relative_to(bundle_dir).as_posix(): sha256_file(p)
        for p in sorted(bundle_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    full = {**manifest, "format": FORMAT, "files": files}
    _check_manifest(full, bundle_dir)
    atomic_write_bytes(bundle_dir / MANIFEST, json.dumps(full, indent=2, sort_keys=True).encode())
    return full


def load_bundle(path: str | os.PathLike[str], task: str | None = None) -> Bundle:
    """Open and verify a bundle. Raises BundleError naming the first problem found."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a model bundle: {MANIFEST} is missing")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BundleError(f"{manifest_path} is not valid JSON: {e}") from e
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: format {manifest.get('format')!r}, this server reads {FORMAT!r}")
    if task is not None and manifest.get("task") != task:
        raise BundleError(f"{root} holds a {manifest.get('task')!r} model, expected {task!r}")
    _check_manifest(manifest, root)
    for name, expected in manifest["files"].items():
        file = root / name
        if not file.is_file():
            raise BundleError(f"{root}: file {name} listed in the manifest is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleError(f"{root}: {name} has sha256 {actual[:12]}..., manifest says {expected[:12]}...")
    return Bundle(path=root, manifest=manifest, digest=hashlib.sha256(raw).hexdigest())


def _check_manifest(manifest: dict[str, Any], root: Path) -> None:
    task = manifest.get("task")
    if task not in REQUIRED_GRAPHS:
        raise BundleError(f"{root}: unknown task {task!r}")
    for key, required in (("graphs", REQUIRED_GRAPHS[task]), ("tokenizers", REQUIRED_TOKENIZERS[task])):
        entries = manifest.get(key) or {}
        for name in required:
            if name not in entries:
                raise BundleError(f"{root}: manifest has no {key}.{name}")
            if entries[name] not in manifest.get("files", {}):
                raise BundleError(f"{root}: {key}.{name} = {entries[name]!r} is not a checksummed file")
    for name in REQUIRED_FIELDS[task]:
        if not manifest.get(name):
            raise BundleError(f"{root}: a {task} manifest must list its {name}")
