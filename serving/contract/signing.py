"""Bundle signatures: who made a bundle, not only whether its files are intact.

A bundle's manifest.json already carries every file's sha256, so signing the manifest signs the whole bundle. The
signature is a detached file beside it, `manifest.sig` (not listed in the manifest: it signs the manifest):

    {"format": "memoria-signature/1", "algorithm": "ed25519", "key_id": "<16 hex>", "signature": "<base64>"}

over the bytes `memoria-bundle-signature/1\\n` + manifest.json (the prefix keeps a signature made for a bundle from
being valid for anything else the same key signs). The bundle's digest (the sha256 of manifest.json, the registry's
`memoria.bundle_sha256` tag) does not change when a bundle is signed.

Why Ed25519 through `cryptography` and not the OpenSSF `model-signing` library (PyPI 1.1.1, evaluated here): it
installs offline and signs with a local key without Sigstore, but on the serving side it adds 17 packages (sigstore,
tuf, securesystemslib, rfc3161-client, in-toto-attestation, ...), about 445 modules, 0.3-0.7 s of import and
~18 MiB per worker, for a feature that uses none of Sigstore's network machinery; its `key` method takes only
ECDSA keys; and 1.1.1 imports pyOpenSSL without declaring it, so a clean install fails at import. `cryptography`
is already installed (mlflow needs it), imports in 10 ms and Ed25519 is one call. The manifest is already the
per-file hash list `model-signing` would build.

Settings (environment):
- MEMORIA_SIGNING_PUBLIC_KEY: the PEM file of the public key(s) serving trusts (several concatenated PEM blocks are
  all trusted: key rotation). Default: `bundle-signing.pub` in the local key folder.
- MEMORIA_SIGNING_KEY: training's private key (a team's CI key, PEM, Ed25519). Default: `bundle-signing.key` in the
  local key folder, created on first use (training/export/signing.py).
- MEMORIA_SIGNING_DIR: the local key folder, default `<MEMORIA_HOME or the current directory>/.memoria/signing`
  (0700, out of git): what `make run` uses on a fresh clone, with no extra step.
- MEMORIA_VERIFY_SIGNATURES: `true` (default) or `false`. Off is explicit and loud: a WARNING naming the setting
  at every bundle load. Any other value is an error, so a typo never turns verification off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("bentoml.memoria")

SIGNATURE = "manifest.sig"
SIGNATURE_FORMAT = "memoria-signature/1"
ALGORITHM = "ed25519"
CONTEXT = b"memoria-bundle-signature/1\n"  # domain separation: what is signed is a memoria manifest, nothing else

PUBLIC_KEY_ENV = "MEMORIA_SIGNING_PUBLIC_KEY"
PRIVATE_KEY_ENV = "MEMORIA_SIGNING_KEY"
KEY_DIR_ENV = "MEMORIA_SIGNING_DIR"
VERIFY_ENV = "MEMORIA_VERIFY_SIGNATURES"
PRIVATE_KEY_FILE = "bundle-signing.key"
PUBLIC_KEY_FILE = "bundle-signing.pub"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_PEM_BEGIN = b"-----BEGIN PUBLIC KEY-----"


class SignatureError(RuntimeError):
    """The bundle's signature is missing, malformed, by an untrusted key, or does not match its manifest; or there
    is no key to check it with. load_bundle reports it as a BundleError: the bundle is refused."""


def key_dir() -> Path:
    """The local key pair's folder: $MEMORIA_SIGNING_DIR, else <$MEMORIA_HOME or the current directory>/.memoria/
    signing (the same root rule as the local store, so training and serving of one checkout find the same pair)."""
    if os.environ.get(KEY_DIR_ENV):
        return Path(os.environ[KEY_DIR_ENV])
    return Path(os.environ.get("MEMORIA_HOME") or Path.cwd()) / ".memoria" / "signing"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint that names a key in messages and in the signature file (never secret)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def signature_document(manifest_raw: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The content of manifest.sig for these exact manifest.json bytes."""
    document = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(private_key.sign(CONTEXT + manifest_raw)).decode(),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class SignaturePolicy:
    """What load_bundle demands of a bundle's signature: made by a trusted key, or (verify=False) nothing."""

    verify: bool
    trusted: tuple[Ed25519PublicKey, ...] = ()  # given directly; else read from `key_file` when a bundle is checked
    key_file: Path | None = None
    key_file_explicit: bool = False  # named by MEMORIA_SIGNING_PUBLIC_KEY (not the local pair's default)
    warn_unverified: bool = True  # off only where the caller checks who made it otherwise (signing a bundle)

    @classmethod
    def from_env(cls) -> SignaturePolicy:
        """The policy the settings describe. An unknown value of MEMORIA_VERIFY_SIGNATURES is a SignatureError:
        refusing beats guessing, so a typo never turns verification off."""
        value = os.environ.get(VERIFY_ENV, "true").strip().lower()
        if value in _FALSE:
            return cls(verify=False)
        if value not in _TRUE:
            raise SignatureError(f"{VERIFY_ENV}={value!r}: expected true or false")
        explicit = os.environ.get(PUBLIC_KEY_ENV)
        return cls(
            verify=True,
            key_file=Path(explicit) if explicit else key_dir() / PUBLIC_KEY_FILE,
            key_file_explicit=bool(explicit),
        )

    @classmethod
    def trusting(cls, *keys: Ed25519PublicKey) -> SignaturePolicy:
        return cls(verify=True, trusted=keys)

    def trusted_keys(self) -> tuple[Ed25519PublicKey, ...]:
        if self.trusted or self.key_file is None:
            return self.trusted
        if not self.key_file.is_file():
            hint = (
                f"{PUBLIC_KEY_ENV} names a file that does not exist"
                if self.key_file_explicit
                else f"set {PUBLIC_KEY_ENV} to the team's public key, or train once here to create the local key "
                f"pair ({KEY_DIR_ENV})"
            )
            raise SignatureError(f"no public key to check bundle signatures at {self.key_file}: {hint}")
        return read_public_keys(self.key_file)

    def check(self, manifest_raw: bytes, signature_raw: bytes | None, subject: str = "a bundle") -> str:
        """Raise SignatureError unless `signature_raw` is a valid signature of `manifest_raw` by a trusted key;
        returns the signing key's id. With verification off, logs the WARNING (naming `subject`) and returns ""."""
        if not self.verify:
            if not self.warn_unverified:
                return ""
            log.warning(
                "%s=false: bundle signatures are NOT checked; %s is loaded without knowing who made it",
                VERIFY_ENV,
                subject,
            )
            return ""
        if signature_raw is None:
            raise SignatureError(
                f"unsigned bundle ({SIGNATURE} is missing): sign it with the team's key "
                f"(python -m training sign-bundle PATH) or set {VERIFY_ENV}=false to serve unsigned bundles"
            )
        try:
            document = json.loads(signature_raw)
            if document.get("format") != SIGNATURE_FORMAT or document.get("algorithm") != ALGORITHM:
                raise ValueError(f"format {document.get('format')!r} / algorithm {document.get('algorithm')!r}")
            signature = base64.b64decode(document["signature"], validate=True)
            signer = str(document.get("key_id", ""))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as e:
            raise SignatureError(f"{SIGNATURE} is malformed ({type(e).__name__}: {e})") from e
        trusted = {key_id(key): key for key in self.trusted_keys()}
        key = trusted.get(signer)
        if key is None:
            raise SignatureError(
                f"signed by key {signer or '?'}, which is not trusted here (trusted: {', '.join(trusted)}; "
                f"{PUBLIC_KEY_ENV} names the public key file)"
            )
        try:
            key.verify(signature, CONTEXT + manifest_raw)
        except InvalidSignature as e:
            raise SignatureError(
                f"the signature by key {signer} does not match manifest.json: altered after it was signed"
            ) from e
        return signer


def read_public_keys(path: Path) -> tuple[Ed25519PublicKey, ...]:
    """Every Ed25519 public key in a PEM file (one or more `BEGIN PUBLIC KEY` blocks)."""
    data = path.read_bytes()
    blocks = [_PEM_BEGIN + part for part in data.split(_PEM_BEGIN)[1:]]
    keys = []
    for number, block in enumerate(blocks, 1):
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as e:
            raise SignatureError(f"{path}: public key {number} is not a readable PEM key ({e})") from e
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"{path}: public key {number} is a {type(key).__name__}, not an Ed25519 key")
        keys.append(key)
    if not keys:
        raise SignatureError(f"{path}: no PEM public key (-----BEGIN PUBLIC KEY-----) in it")
    return tuple(keys)
