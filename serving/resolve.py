"""Which bundle a task serves: an explicit path, or the registry's `champion`.

In this order:
1. MEMORIA_<TASK>_BUNDLE=/path/to/bundle serves that folder (no registry needed: a bundle is self-contained);
2. a packaged `bundles/<task>/` beside `serving/`: what `make bento` puts into a built Bento (and removes from
   the working tree afterwards, so that during development the registry stays the source of truth);
3. `models:/<task>@champion` in MLFLOW_TRACKING_URI (default: SQLite in ./mlruns): its artifacts are copied to a
   local cache, verified like any bundle (every file's sha256) and checked against the digest recorded when the
   version was registered.

The cache (MEMORIA_BUNDLE_CACHE, default `$BENTOML_HOME/memoria/bundle-cache`, BENTOML_HOME being the service's own
home, `~/bentoml` unless set; `make serve` sets `.bentoml/` in the repository) is a private folder: 0700 and owned
by the service's user, checked before every use (serving/contract/registry.py). It is not in the shared temp
folder, where another local user could create it first and plant a bundle or the reload trigger.
"""

from __future__ import annotations

import os
from pathlib import Path

from serving.contract.bundle import load_bundle
from serving.contract.names import tracking_uri
from serving.contract.registry import ServedBundle, champion_bundle

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
    """Where registry bundles are copied to (checked private by `champion_bundle`, not here)."""
    if os.environ.get("MEMORIA_BUNDLE_CACHE"):
        return Path(os.environ["MEMORIA_BUNDLE_CACHE"])
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")  # BentoML's own default home
    return home / "memoria" / "bundle-cache"


def resolve_bundle(task: str) -> ServedBundle:
    origin = bundle_origin(task)
    if origin == "path":
        return ServedBundle(load_bundle(os.environ[f"MEMORIA_{task.upper()}_BUNDLE"], task), "path")
    if origin == "packaged":
        return ServedBundle(load_bundle(PACKAGED / task, task), "packaged")
    return champion_bundle(task, tracking_uri(), bundle_cache())
