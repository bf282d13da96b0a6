"""A registered version's bundle, fetched and verified the same way by the service and by training's gate.

`champion_ref` reads what the registry's `champion` alias points at; `champion_bundle` copies that version's
artifacts into a private local cache (once per version and digest), verifies every file's sha256 (`load_bundle`)
and checks the bundle against the digest recorded when the version was registered (training/registry/publish.py
writes it).

Failures come in three kinds, because a caller must treat them differently (serving/live_model.py):
- `NoChampion` (a BundleError): there is no store or no `champion` alias: nothing to serve until one is trained;
- `RegistryUnavailable`: the registry or the artifact store could not be read just now (network, server down,
  disk full, a locked database). It says nothing about the bundle: retry later, keep serving what runs;
- `BundleError`: the version's bundle is wrong (a file's hash, the digest, a missing digest tag, a signature):
  refuse that version. A cached copy that fails is deleted and fetched once more first, so a copy truncated by
  a crash or a full disk is not mistaken for a bad bundle, and never reused.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from serving.contract.bundle import Bundle, BundleError, load_bundle
from serving.contract.names import CHAMPION, DIGEST_TAG
from serving.contract.store_location import moved_location

log = logging.getLogger("bentoml.memoria")

# MLflow's error codes for "that registered model / alias does not exist" (SQLite and REST stores alike)
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class NoChampion(BundleError):
    """No store, no registered model or no `champion` alias: nothing to serve until one is trained."""


class RegistryUnavailable(RuntimeError):
    """The registry or its artifacts could not be read just now; the bundle itself may be fine. Retry later."""


@dataclass(frozen=True)
class ServedBundle:
    bundle: Bundle
    origin: str  # "path", "packaged" or "registry"
    registry_version: str | None = None

    @property
    def label(self) -> str:
        """What clients see in the X-Memoria-Model header, e.g. `sentiment/v3 sha256:1a2b3c4d5e6f`."""
        version = f"v{self.registry_version}" if self.registry_version else self.origin
        return f"{self.bundle.task}/{version} sha256:{self.bundle.short_digest}"


@dataclass(frozen=True)
class ChampionRef:
    """What the registry's `champion` alias points at, without downloading anything."""

    version: str
    source: str
    digest: str


def safe_uri(uri: str) -> str:
    """The tracking URI without user:password@ (a URI may carry credentials; messages and logs must not)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def champion_ref(task: str, uri: str) -> ChampionRef:
    """The champion's version, artifact location and digest. Only reads: serving never writes to the store (a
    copied SQLite store's old locations are mapped in memory, see store_location.py)."""
    from mlflow import MlflowClient  # imported here: a path-only deployment never needs MLflow
    from mlflow.exceptions import MlflowException

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # Don't let serving create an empty store (several workers would race to build its tables).
        raise NoChampion(f"no MLflow store at {uri}: train first (make train TASK={task})")
    try:
        version = MlflowClient(tracking_uri=uri).get_model_version_by_alias(task, CHAMPION)
    except MlflowException as e:
        if e.error_code in NOT_FOUND_CODES:
            raise NoChampion(
                f"no {task} champion in {safe_uri(uri)}: train one first (make train TASK={task}) "
                f"or set MEMORIA_{task.upper()}_BUNDLE"
            ) from e
        raise RegistryUnavailable(f"registry {safe_uri(uri)} unreachable ({e.error_code})") from e
    except Exception as e:  # connection, driver or disk errors MLflow lets through
        raise RegistryUnavailable(f"registry {safe_uri(uri)} unreachable ({type(e).__name__})") from e
    source = moved_location(version.source, uri)
    return ChampionRef(str(version.version), source, version.tags.get(DIGEST_TAG, ""))


def champion_bundle(task: str, uri: str, cache: Path, ref: ChampionRef | None = None) -> ServedBundle:
    """Copy `models:/<task>@champion` (or the version `ref` names) into `cache`, once per version, and verify it."""
    ref = ref or champion_ref(task, uri)
    if not ref.digest:
        # Refused, not served unchecked: every version memoria registers carries the digest (publish.py), so a
        # version without one was registered by hand or by another tool, and nothing vouches for its bundle.
        # There is no switch to allow it; tag the version instead (the digest is the sha256 of its manifest.json).
        raise BundleError(
            f"{task} v{ref.version} has no {DIGEST_TAG} tag, so its bundle cannot be checked: refused "
            f"(set the tag to the sha256 of the bundle's manifest.json to serve it)"
        )
    local = private_folder(cache) / task / f"v{ref.version}-{ref.digest[:12]}"
    for attempt in (1, 2):
        if not local.exists():
            _fetch(ref, uri, local)
        try:
            bundle = load_bundle(local, task)
            if bundle.digest != ref.digest:
                raise BundleError(
                    f"{task} v{ref.version}: bundle digest {bundle.short_digest} != registered {ref.digest[:12]}"
                )
            return ServedBundle(bundle, "registry", ref.version)
        except BundleError as e:
            _discard(local)  # never reused: a truncated or altered copy is fetched again, not trusted
            if attempt == 2:
                raise
            log.warning(
                "%s v%s: the local copy failed verification (%s): deleted, fetching again", task, ref.version, e
            )
    raise AssertionError("unreachable")


def _fetch(ref: ChampionRef, uri: str, local: Path) -> None:
    """Download into a staging folder beside `local`, then rename: `local` is a complete copy or absent. Any error
    here (network, disk full, permissions) is RegistryUnavailable: it says nothing about the bundle."""
    from mlflow.artifacts import download_artifacts

    staging: Path | None = None
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=".download-"))
        download_artifacts(artifact_uri=ref.source, dst_path=str(staging), tracking_uri=uri)
        # The copy lands in a folder named like the source's last part (`bundle` for versions registered
        # before bundles were kept per digest, `bundles/<digest>` since): complete copies only.
        try:
            os.replace(staging / ref.source.rstrip("/").rsplit("/", 1)[-1], local)
        except OSError:
            if not local.exists():  # another worker finished the same download first: use its copy
                raise
    except Exception as e:
        raise RegistryUnavailable(f"could not fetch v{ref.version} ({type(e).__name__}: {_short(e)})") from e
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _discard(local: Path) -> None:
    """Move the folder aside first (one rename: no worker sees half of it under its real name), then delete it."""
    aside = local.with_name(f".discard-{local.name}-{os.getpid()}")
    try:
        os.replace(local, aside)
    except OSError:
        return  # already gone (another worker discarded it)
    shutil.rmtree(aside, ignore_errors=True)


def _short(e: BaseException) -> str:
    """An OS error's reason without its file name (errors must not carry the service's paths)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0][:200] if str(e) else ""


def private_folder(path: Path) -> Path:
    """`path`, created 0700 if missing, checked to be a real folder that this user owns and only this user can
    read: what is fetched into it is served, so no other local user may create it first or write into it. One
    owned by someone else is refused (it cannot be trusted or safely removed); one of ours that is too open is
    closed (its content is verified before use anyway)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"bundle cache {path} is not a plain folder (a link?): refusing to use it")
    if info.st_uid != os.geteuid():
        raise PermissionError(
            f"bundle cache {path} belongs to uid {info.st_uid}, not to this service (uid {os.geteuid()}): "
            "refusing to use it (set MEMORIA_BUNDLE_CACHE to a folder of this user)"
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("bundle cache %s was open to other users (mode %o): now 0700", path, stat.S_IMODE(info.st_mode))
    return path
