"""Bundle signatures (serving/contract/signing.py, training/export/signing.py): a bundle is served only if its
manifest was signed by a key serving trusts; switching that off is explicit and logged at every load."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from serving.contract.bundle import MANIFEST, BundleError, load_bundle, write_manifest
from serving.contract.signing import (
    KEY_DIR_ENV,
    PRIVATE_KEY_ENV,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_ENV,
    PUBLIC_KEY_FILE,
    SIGNATURE,
    VERIFY_ENV,
    SignaturePolicy,
    key_id,
    public_key_pem,
    signature_document,
)
from training.export.signing import sign_bundle, signer, signing_key

SETTINGS = (KEY_DIR_ENV, PRIVATE_KEY_ENV, PUBLIC_KEY_ENV, VERIFY_ENV)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No signing setting from outside; MEMORIA_HOME is this test's folder (the default key pair lives there)."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMORIA_HOME", str(tmp_path))
    return tmp_path


def tiny_bundle(folder: Path, key: Ed25519PrivateKey | None = None) -> Path:
    """A sentiment bundle's shape (files are placeholders: signatures and hashes do not run the graph)."""
    folder.mkdir(parents=True)
    (folder / "classifier.onnx").write_bytes(b"not really a graph")
    (folder / "tokenizer.json").write_text("{}")
    manifest = {
        "task": "sentiment",
        "graphs": {"classifier": "classifier.onnx"},
        "tokenizers": {"text": "tokenizer.json"},
        "labels": ["negative", "neutral", "positive"],
    }
    sign = (lambda raw: signature_document(raw, key)) if key is not None else None
    write_manifest(folder, manifest, sign=sign)
    return folder


def test_a_signed_bundle_verifies_with_its_public_key_and_keeps_its_digest(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = load_bundle(tiny_bundle(tmp_path / "b", key), "sentiment", SignaturePolicy.trusting(key.public_key()))
    assert SIGNATURE not in bundle.manifest["files"]  # the signature signs the manifest, it is not listed in it
    unsigned = load_bundle(tiny_bundle(tmp_path / "u"), "sentiment", SignaturePolicy(verify=False))
    assert bundle.digest == unsigned.digest  # signing does not change the bundle's identity (the registry's tag)
    assert json.loads((bundle.path / SIGNATURE).read_text())["key_id"] == key_id(key.public_key())


def test_one_changed_byte_of_the_manifest_is_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    folder = tiny_bundle(tmp_path / "b", key)
    raw = (folder / MANIFEST).read_bytes()
    (folder / MANIFEST).write_bytes(raw.replace(b'"negative"', b'"negativE"', 1))  # still valid JSON
    with pytest.raises(BundleError, match=r"does not match manifest\.json: altered after it was signed"):
        load_bundle(folder, "sentiment", SignaturePolicy.trusting(key.public_key()))


def test_a_bundle_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    team, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    folder = tiny_bundle(tmp_path / "b", stranger)
    with pytest.raises(BundleError, match=f"signed by key {key_id(stranger.public_key())}, which is not trusted"):
        load_bundle(folder, "sentiment", SignaturePolicy.trusting(team.public_key()))
    # a signature file that claims a trusted key's id but was made by another key: refused too
    document = json.loads((folder / SIGNATURE).read_text())
    (folder / SIGNATURE).write_text(json.dumps({**document, "key_id": key_id(team.public_key())}))
    with pytest.raises(BundleError, match=r"does not match manifest\.json"):
        load_bundle(folder, "sentiment", SignaturePolicy.trusting(team.public_key()))


def test_an_unsigned_or_malformed_signature_is_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    trusted = SignaturePolicy.trusting(key.public_key())
    with pytest.raises(BundleError, match=rf"unsigned bundle \({SIGNATURE} is missing\).*{VERIFY_ENV}=false"):
        load_bundle(tiny_bundle(tmp_path / "u"), "sentiment", trusted)
    folder = tiny_bundle(tmp_path / "b", key)
    (folder / SIGNATURE).write_text('{"format": "memoria-signature/1", "algorithm": "ed25519", "signature": "%%"}')
    with pytest.raises(BundleError, match=f"{SIGNATURE} is malformed"):
        load_bundle(folder, "sentiment", trusted)


def test_rewriting_a_manifest_unsigned_drops_the_stale_signature(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    folder = tiny_bundle(tmp_path / "b", key)
    manifest = json.loads((folder / MANIFEST).read_text())
    write_manifest(folder, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    assert not (folder / SIGNATURE).exists()  # "unsigned", not a signature that no longer matches


def test_turning_verification_off_is_explicit_and_logged_at_every_load(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tiny_bundle(clean_env / "u")
    with pytest.raises(BundleError, match="unsigned bundle"):
        load_bundle(folder, "sentiment")  # the default: verify
    monkeypatch.setenv(VERIFY_ENV, "flase")
    with pytest.raises(BundleError, match=f"{VERIFY_ENV}='flase': expected true or false"):
        load_bundle(folder, "sentiment")  # a typo never turns verification off
    monkeypatch.setenv(VERIFY_ENV, "false")
    with caplog.at_level(logging.WARNING, logger="bentoml.memoria"):
        load_bundle(folder, "sentiment")
        load_bundle(folder, "sentiment")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and VERIFY_ENV in r.getMessage()]
    assert len(warnings) == 2 and "NOT checked" in warnings[0].getMessage()


def test_a_fresh_checkout_makes_a_private_key_pair_that_training_and_serving_share(clean_env: Path) -> None:
    # given no key anywhere: the first export makes one, in <MEMORIA_HOME>/.memoria/signing
    folder = clean_env / "b"
    folder.mkdir()
    (folder / "classifier.onnx").write_bytes(b"g")
    (folder / "tokenizer.json").write_text("{}")
    manifest = {"task": "sentiment", "graphs": {"classifier": "classifier.onnx"}}
    write_manifest(folder, {**manifest, "tokenizers": {"text": "tokenizer.json"}, "labels": ["x"]}, sign=signer())
    keys = clean_env / ".memoria" / "signing"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(keys / PRIVATE_KEY_FILE).st_mode) == 0o600
    # then serving, with no setting, finds the public key and verifies; the key stays the same on later use
    assert load_bundle(folder, "sentiment").manifest["labels"] == ["x"]
    assert (keys / PUBLIC_KEY_FILE).read_bytes() == public_key_pem(signing_key().public_key())


def test_a_team_key_is_used_as_given_and_a_missing_one_is_an_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRIVATE_KEY_ENV, str(clean_env / "ci" / "absent.key"))
    with pytest.raises(ValueError, match=f"{PRIVATE_KEY_ENV}=.*no such file"):
        signing_key()  # never a key made up on the spot for a CI job that forgot to mount its own
    assert not (clean_env / ".memoria").exists()
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(clean_env / "absent.pub"))
    with pytest.raises(BundleError, match=f"no public key to check bundle signatures.*{PUBLIC_KEY_ENV} names a file"):
        load_bundle(tiny_bundle(clean_env / "b", Ed25519PrivateKey.generate()), "sentiment")


def test_a_public_key_file_may_trust_several_keys_for_rotation(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = clean_env / "team.pub"
    keys.write_bytes(public_key_pem(old.public_key()) + public_key_pem(new.public_key()))
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(keys))
    assert load_bundle(tiny_bundle(clean_env / "old", old), "sentiment").task == "sentiment"
    assert load_bundle(tiny_bundle(clean_env / "new", new), "sentiment").task == "sentiment"
    keys.write_text("not a key")
    with pytest.raises(BundleError, match="no PEM public key"):
        load_bundle(clean_env / "new", "sentiment")


def test_sign_bundle_signs_an_existing_bundle_without_changing_it(clean_env: Path) -> None:
    from training.cli import main

    folder = tiny_bundle(clean_env / "b")
    before = (folder / MANIFEST).read_bytes()
    assert main(["sign-bundle", str(folder)]) == 0
    assert (folder / MANIFEST).read_bytes() == before
    assert load_bundle(folder, "sentiment").digest == load_bundle(folder, signatures=SignaturePolicy(False)).digest
    # a bundle whose files do not match its manifest is not signed: signing vouches for what is there
    (folder / "classifier.onnx").write_bytes(b"swapped")
    with pytest.raises(BundleError, match=r"classifier\.onnx has sha256"):
        sign_bundle(folder)
