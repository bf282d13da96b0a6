"""The key training signs bundles with, and signing a bundle that already exists.

Which key (serving/contract/signing.py defines the settings and the signature format):
- MEMORIA_SIGNING_KEY names a team's key (CI holds it; PEM, Ed25519): used as it is, and an error if missing, so a
  CI job that forgot to mount its key never signs with a key made up on the spot;
- otherwise the local pair in MEMORIA_SIGNING_DIR (default <MEMORIA_HOME or the current directory>/.memoria/signing),
  made on first use: `make run` on a fresh clone trains, signs and serves with no extra step. The folder is 0700
  and the private key 0600; the public key beside it is what serving trusts by default.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from serving.contract.bundle import MANIFEST, Bundle, load_bundle
from serving.contract.files import atomic_write_bytes
from serving.contract.signing import (
    PRIVATE_KEY_ENV,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNATURE,
    SignaturePolicy,
    key_dir,
    key_id,
    public_key_pem,
    signature_document,
)

log = logging.getLogger(__name__)


def signing_key() -> Ed25519PrivateKey:
    """The private key bundles are signed with: $MEMORIA_SIGNING_KEY, else the local pair (made if missing)."""
    explicit = os.environ.get(PRIVATE_KEY_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ValueError(f"{PRIVATE_KEY_ENV}={explicit}: no such file (the team's bundle-signing key)")
        return _read_private_key(path, PRIVATE_KEY_ENV)
    return local_key_pair(key_dir())


def signer() -> Callable[[bytes], bytes]:
    """manifest bytes -> manifest.sig content, with the signing key read once (write_manifest's `sign`)."""
    key = signing_key()
    return lambda manifest_raw: signature_document(manifest_raw, key)


def local_key_pair(folder: Path) -> Ed25519PrivateKey:
    """The pair in `folder`, made on first use. Safe when two trainings start at once: the private key is created
    with O_EXCL semantics (a hard link of a finished temp file), so one key wins and the other process reads it."""
    _private_folder(folder)
    private = folder / PRIVATE_KEY_FILE
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".key-")  # mkstemp: 0600 from the start
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, private)  # fails if another process made the key first: keep theirs
                log.warning("made a bundle-signing key pair in %s (key %s)", folder, key_id(key.public_key()))
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    key = _read_private_key(private, f"{private}")
    public = folder / PUBLIC_KEY_FILE
    pem = public_key_pem(key.public_key())
    if not public.is_file() or public.read_bytes() != pem:  # missing, or left from an older key: serving trusts this
        atomic_write_bytes(public, pem)
    return key


def sign_bundle(path: Path) -> Bundle:
    """Sign an existing bundle (one exported before signatures, or built elsewhere) with the signing key, after
    checking every file against its manifest. The manifest is not changed, so the bundle's digest is the same.
    Signing vouches for the bundle: only sign one whose origin you know."""
    # files intact; who made it is what we now vouch for (so no 'not checked' warning here)
    load_bundle(path, signatures=SignaturePolicy(verify=False, warn_unverified=False))
    raw = (path / MANIFEST).read_bytes()
    atomic_write_bytes(path / SIGNATURE, signer()(raw))
    return load_bundle(path)  # as serving will: with the trusted public key


def _private_folder(folder: Path) -> None:
    """0700 and ours: the private key must not be readable, or replaceable, by another local user."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise PermissionError(f"signing key folder {folder} is not a folder of this user: refusing to use it")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)


def _read_private_key(path: Path, setting: str) -> Ed25519PrivateKey:
    if path.stat().st_mode & 0o077:
        log.warning("bundle-signing key %s is readable by other users: chmod 600 it", setting)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{setting}: not a readable unencrypted PEM private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{setting}: a {type(key).__name__}, bundles are signed with Ed25519 keys")
    return key
