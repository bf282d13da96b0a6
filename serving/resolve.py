"""Which bundle a task serves: an explicit path, or the registry's `champion`.

In this order:
1. MEMORIA_<TASK>_BUNDLE=/path/to/bundle serves that folder (no registry needed: a bundle is self-contained);
2. a packaged `bundles/<task>/` beside `serving/`: what `make bento` puts into a built Bento (and removes from
   the working tree afterwards, so that during development the registry stays the source of truth);
3. `models:/<task>@champion` in MLFLOW_TRACKING_URI (default: SQLite in ./mlruns): its artifacts are copied to a
   local cache, verified like any bundle (every file's sha256) and checked against the digest recorded when the
   version was registered.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.bundle import Bundle, BundleError, load_bundle
from serving.store_location import relocate_if_moved

CHAMPION = "champion"
DIGEST_TAG = "memoria.bundle_sha256"  # written by training/registry.py when a version is registered


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


def tracking_uri() -> str:
    home = Path(os.environ.get("MEMORIA_HOME") or Path.cwd())
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(home / 'mlruns' / 'mlflow.db').resolve()}"


PACKAGED = Path(__file__).resolve().parent.parent / "bundles"


def bundle_origin(task: str) -> str:
    """Where `resolve_bundle(task)` takes the bundle from: "path", "packaged" or "registry" (only a registry
    champion can change while the service runs; a path or a packaged Bento is fixed)."""
    if os.environ.get(f"MEMORIA_{task.upper()}_BUNDLE"):
        return "path"
    if (PACKAGED / task).is_dir():
        return "packaged"
    return "registry"


def bundle_cache() -> Path:
    return Path(os.environ.get("MEMORIA_BUNDLE_CACHE") or Path(tempfile.gettempdir()) / "memoria-bundles")


def resolve_bundle(task: str) -> ServedBundle:
    origin = bundle_origin(task)
    if origin == "path":
        return ServedBundle(load_bundle(os.environ[f"MEMORIA_{task.upper()}_BUNDLE"], task), "path")
    if origin == "packaged":
        return ServedBundle(load_bundle(PACKAGED / task, task), "packaged")
    return champion_bundle(task, tracking_uri(), bundle_cache())


@dataclass(frozen=True)
class ChampionRef:
    """What the registry's `champion` alias points at, without downloading anything."""

    version: str
    source: str
    digest: str


def champion_ref(task: str, uri: str) -> ChampionRef:
    from mlflow import MlflowClient  # imported here: a path-only deployment never needs MLflow
    from mlflow.exceptions import MlflowException

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # Don't let serving create an empty store (several workers would race to build its tables).
        raise BundleError(f"no MLflow store at {uri}: train first (make train TASK={task})")
    relocate_if_moved(uri)  # a copied or moved store still serves its champions
    try:
        version = MlflowClient(tracking_uri=uri).get_model_version_by_alias(task, CHAMPION)
    except MlflowException as e:
        raise BundleError(
            f"no {task} champion in {uri}: train one first (make train TASK={task}) "
            f"or set MEMORIA_{task.upper()}_BUNDLE"
        ) from e
    return ChampionRef(str(version.version), version.source, version.tags.get(DIGEST_TAG, ""))


def champion_bundle(task: str, uri: str, cache: Path, ref: ChampionRef | None = None) -> ServedBundle:
    """Copy `models:/<task>@champion` (or the version `ref` names) into `cache`, once per version, and verify it."""
    from mlflow.artifacts import download_artifacts

    ref = ref or champion_ref(task, uri)
    local = cache / task / f"v{ref.version}-{ref.digest[:12]}"
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=".download-"))
        try:
            download_artifacts(artifact_uri=ref.source, dst_path=str(staging), tracking_uri=uri)
            # The copy lands in a folder named like the source's last part (`bundle` for versions registered
            # before bundles were kept per digest, `bundles/<digest>` since): complete copies only.
            try:
                os.replace(staging / ref.source.rstrip("/").rsplit("/", 1)[-1], local)
            except OSError:
                if not local.exists():  # another worker finished the same download first: use its copy
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    bundle = load_bundle(local, task)
    if ref.digest and bundle.digest != ref.digest:
        raise BundleError(f"{task} v{ref.version}: bundle digest {bundle.short_digest} != registered {ref.digest[:12]}")
    return ServedBundle(bundle, "registry", ref.version)
