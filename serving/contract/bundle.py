"""The model bundle: the one contract between training/ and serving/.

A bundle is a folder:

    manifest.json         format, task, graphs, tokenizers, labels, config, metrics, source run, versions,
                          and the sha256 of every other file
    manifest.sig          the manifest's signature by the team's key (serving/contract/signing.py)
    *.onnx                the graph(s): `classifier` (sentiment) or `encoder` + `decoder_step` (translation)
    *tokenizer*.json      Hugging Face `tokenizers` files, loaded unchanged by serving (no train/serve skew)

Training writes it with `write_manifest` (signed); serving opens it with `load_bundle`, which refuses a bundle
that is unsigned or signed by a key it does not trust (unless MEMORIA_VERIFY_SIGNATURES=false, said loudly),
whose files are missing, altered, of an unknown format, or named outside the bundle folder. This module imports
only the standard library and `cryptography`, so both sides can use it and serving stays free of torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from serving.contract.files import atomic_write_bytes, sha256_file
from serving.contract.signing import SIGNATURE, SignatureError, SignaturePolicy

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


def listed_sha256(bundle: Bundle, path: Path) -> str | None:
    """The sha256 the bundle's manifest lists for `path`, or None for a file it does not list (the views training
    builds around a graph it is still exporting; a bundle from `load_bundle` lists every file it names)."""
    try:
        name = path.relative_to(bundle.path).as_posix()
    except ValueError:
        return None
    return bundle.manifest.get("files", {}).get(name)


def verified_bytes(path: Path, sha256: str) -> bytes:
    """The file's bytes, hashed as they are read: what is used is exactly what was checked, however long after
    `load_bundle` the file is opened (a file swapped on disk meanwhile is refused, not run)."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise BundleError(
            f"{path.name} changed since the bundle was verified: sha256 {actual[:12]}..., "
            f"manifest says {sha256[:12]}..."
        )
    return data


def read_verified(bundle: Bundle, path: Path) -> bytes:
    """A bundle file's bytes, checked against the manifest's sha256 as they are read where the manifest lists it."""
    sha256 = listed_sha256(bundle, path)
    return verified_bytes(path, sha256) if sha256 else path.read_bytes()


def write_manifest(
    bundle_dir: Path, manifest: dict[str, Any], sign: Callable[[bytes], bytes] | None = None
) -> dict[str, Any]:
    """Add the format tag and every file's sha256 to `manifest` and write it as the bundle's manifest.json;
    with `sign` (manifest bytes -> manifest.sig content: training/export/signing.py), sign it too.

    The signature is written first and the manifest last, both atomically: a folder without a manifest is not a
    bundle, so a crash mid-export never leaves something that looks servable. Without `sign`, a signature left
    from an earlier manifest is removed (it no longer matches): the bundle is then plainly unsigned.
    """
    files = {
        _relative_name(p, bundle_dir): sha256_file(p)
        for p in sorted(bundle_dir.rglob("*"))
        if p.is_file() and p.relative_to(bundle_dir).as_posix() not in (MANIFEST, SIGNATURE)
    }
    full = {**manifest, "format": FORMAT, "files": files}
    _check_manifest(full, bundle_dir)
    raw = json.dumps(full, indent=2, sort_keys=True).encode()
    if sign is not None:
        atomic_write_bytes(bundle_dir / SIGNATURE, sign(raw))
    else:
        (bundle_dir / SIGNATURE).unlink(missing_ok=True)
    atomic_write_bytes(bundle_dir / MANIFEST, raw)
    return full


def _relative_name(file: Path, bundle_dir: Path) -> str:
    """A file's manifest name; refused if it is a link that leads out of the bundle (its content would not travel
    with the bundle, and serving would read whatever it points at)."""
    name = file.relative_to(bundle_dir).as_posix()
    if not file.resolve().is_relative_to(bundle_dir.resolve()):
        raise BundleError(f"{bundle_dir}: files.{name} is a link to a file outside the bundle folder")
    return name


def load_bundle(
    path: str | os.PathLike[str], task: str | None = None, signatures: SignaturePolicy | None = None
) -> Bundle:
    """Open and verify a bundle: its format, task and file names, its signature (by `signatures`, default: the
    settings, see signing.py), every file's sha256. Raises BundleError naming the first problem found."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a model bundle: {MANIFEST} is missing")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BundleError(f"{manifest_path} is not valid JSON: {e}") from e
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path} is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: format {manifest.get('format')!r}, this server reads {FORMAT!r}")
    if task is not None and manifest.get("task") != task:
        raise BundleError(f"{root} holds a {manifest.get('task')!r} model, expected {task!r}")
    _check_manifest(manifest, root)  # is it a bundle at all (a broken one says what is missing), then who made it
    signature_path = root / SIGNATURE
    try:
        policy = signatures or SignaturePolicy.from_env()
        policy.check(raw, signature_path.read_bytes() if signature_path.is_file() else None, str(root))
    except SignatureError as e:
        raise BundleError(f"{root}: {e}") from e
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
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{root}: manifest field files must map file names to sha256")
    for name in files:
        _check_name(name, root)


def _check_name(name: object, root: Path) -> None:
    """A manifest file name must stay inside the bundle folder: relative, no `..`, and not a link that resolves
    outside it (serving hashes and opens what the manifest names; `../../etc/x` or `/etc/x` must not be either)."""
    if not isinstance(name, str) or not name:
        raise BundleError(f"{root}: manifest field files has a name that is not a non-empty string: {name!r}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or "\\" in name or ".." in pure.parts or name in (MANIFEST, SIGNATURE):
        raise BundleError(f"{root}: manifest field files.{name} is not a file name inside the bundle folder")
    if not (root / name).resolve().is_relative_to(root.resolve()):
        raise BundleError(f"{root}: manifest field files.{name} resolves outside the bundle folder (a link?)")
