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


def resolve_bundle(task: str) -> ServedBundle:
    path = os.environ.get(f"MEMORIA_{task.upper()}_BUNDLE")
    if path:
        return ServedBundle(load_bundle(path, task), "path")
    if (PACKAGED / task).is_dir():
        return ServedBundle(load_bundle(PACKAGED / task, task), "packaged")
    cache = Path(os.environ.get("MEMORIA_BUNDLE_CACHE") or Path(tempfile.gettempdir()) / "memoria-bundles")
    return champion_bundle(task, tracking_uri(), cache)


def champion_bundle(task: str, uri: str, cache: Path) -> ServedBundle:
    """Copy `models:/<task>@champion` into `cache` (once per version) and verify it."""
    from mlflow import MlflowClient  # imported here: a path-only deployment never needs MLflow
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # Don't let serving create an empty store (two model services would race to build its tables).
        raise BundleError(f"no MLflow store at {uri}: train first (make train TASK={task})")
    client = MlflowClient(tracking_uri=uri)
    try:
        version = client.get_model_version_by_alias(task, CHAMPION)
    except MlflowException as e:
        raise BundleError(
            f"no {task} champion in {uri}: train one first (make train TASK={task}) "
            f"or set MEMORIA_{task.upper()}_BUNDLE"
        ) from e
    digest = version.tags.get(DIGEST_TAG, "")
    local = cache / task / f"v{version.version}-{digest[:12]}"
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=".download-"))
        try:
            download_artifacts(artifact_uri=version.source, dst_path=str(staging), tracking_uri=uri)
            os.replace(staging / "bundle", local)  # complete copies only
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    bundle = load_bundle(local, task)
    if digest and bundle.digest != digest:
        raise BundleError(f"{task} v{version.version}: bundle digest {bundle.short_digest} != registered {digest[:12]}")
    return ServedBundle(bundle, "registry", str(version.version))
