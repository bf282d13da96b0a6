"""The bundle format (serving/contract/bundle.py): what a manifest may name. Every file name stays inside the
bundle folder, on writing and on loading, so a crafted manifest cannot make serving hash or open another file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from serving.contract.bundle import MANIFEST, BundleError, load_bundle, write_manifest
from serving.contract.signing import SignaturePolicy, signature_document
from tests.serving.contract.test_signing import tiny_bundle

KEY = Ed25519PrivateKey.generate()
TRUSTED = SignaturePolicy.trusting(KEY.public_key())


def reseal(folder: Path, change) -> None:
    """Rewrite the manifest with `change` applied and sign it again: only the file names are wrong, not the
    signature, so the refusal below is the name check's."""
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (folder / MANIFEST).write_bytes(raw)
    (folder / "manifest.sig").write_bytes(signature_document(raw, KEY))


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/hostname", "sub/../../outside.onnx", "..", "a\\..\\b"])
def test_a_manifest_naming_a_file_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    folder = tiny_bundle(tmp_path / "b", KEY)
    (tmp_path / "outside.onnx").write_bytes(b"planted")

    def point_outside(manifest: dict) -> None:
        manifest["files"][name] = manifest["files"].pop("classifier.onnx")
        manifest["graphs"]["classifier"] = name

    reseal(folder, point_outside)
    with pytest.raises(BundleError, match=rf"manifest field files\.{re.escape(name)} is not a file name"):
        load_bundle(folder, "sentiment", TRUSTED)


def test_a_link_out_of_the_folder_is_refused_on_loading_and_on_writing(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "b", KEY)
    (tmp_path / "outside.onnx").write_bytes(b"planted")
    (folder / "classifier.onnx").unlink()
    (folder / "classifier.onnx").symlink_to(tmp_path / "outside.onnx")
    with pytest.raises(BundleError, match=r"files\.classifier\.onnx resolves outside the bundle folder"):
        load_bundle(folder, "sentiment", TRUSTED)
    manifest = json.loads((folder / MANIFEST).read_text())
    with pytest.raises(BundleError, match=r"files\.classifier\.onnx is a link to a file outside the bundle folder"):
        write_manifest(folder, {k: v for k, v in manifest.items() if k not in ("format", "files")})


def test_a_link_inside_the_folder_and_subfolders_are_fine(tmp_path: Path) -> None:
    folder = tiny_bundle(tmp_path / "b", KEY)
    (folder / "extra").mkdir()
    (folder / "extra" / "notes.txt").write_text("kept")
    (folder / "alias.json").symlink_to(folder / "tokenizer.json")
    manifest = json.loads((folder / MANIFEST).read_text())
    sign = lambda raw: signature_document(raw, KEY)  # noqa: E731
    written = write_manifest(folder, {k: v for k, v in manifest.items() if k not in ("format", "files")}, sign=sign)
    assert {"extra/notes.txt", "alias.json"} <= set(written["files"])
    assert load_bundle(folder, "sentiment", TRUSTED).task == "sentiment"
