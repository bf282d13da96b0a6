"""A registered version's bundle, fetched and verified the same way by the service and by training's gate.

`champion_ref` reads what the registry's `champion` alias points at; `champion_bundle` copies that version's
artifacts into a local cache (once per version and digest), verifies every file's sha256 (`load_bundle`) and checks
the bundle against the digest recorded when the version was registered (training/registry/publish.py writes it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.contract.bundle import Bundle, BundleError, load_bundle
from serving.contract.names import CHAMPION, DIGEST_TAG
from serving.contract.store_location import relocate_if_moved


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
