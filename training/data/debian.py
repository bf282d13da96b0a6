"""Pinned Debian packages as data artifacts: `apt-get download NAME=VERSION`, check the .deb's sha256, read files
out of it without installing it.

Everyday Spanish -> English pairs ship inside Debian packages as gettext catalogs (human translations of modern
English, see README "Data"). `apt-get download` needs no root and installs nothing; it goes through the machine's
normal package client, so it works wherever `apt-get install` does. A .deb whose hash differs from the pin is
refused, like a wheel: a silently changed data set would make every number in the README meaningless.

A .deb is an `ar` archive holding `data.tar.*`; reading it needs only the standard library, so a machine without
dpkg can still use a .deb placed in the cache by hand.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from training.data.sources import ArtifactError, verified


@dataclass(frozen=True)
class PinnedDeb:
    """A data artifact distributed as a Debian package."""

    name: str
    version: str  # Debian version, with its epoch ("1:1.16.9-1")
    sha256: str
    licence: str
    source: str  # the source package: names the folder in a mirror's pool

    @property
    def requirement(self) -> str:
        return f"{self.name}={self.version}"

    @property
    def filename(self) -> str:
        # apt-get download's own naming: the epoch's ":" is URL-encoded
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"

    @property
    def pool_path(self) -> str:
        """Where a Debian mirror keeps it (the pool's file names carry no epoch)."""
        return f"pool/main/{self.source[0]}/{self.source}/{self.name}_{self.version.split(':')[-1]}_all.deb"


DEFAULT_MIRROR = "https://deb.debian.org/debian"


def fetch_deb(deb: PinnedDeb, cache_dir: Path) -> Path:
    """Path of the verified .deb in `cache_dir`, downloading it with `apt-get download` if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / deb.filename
    if not target.exists():
        _download(deb, cache_dir, target)
    return verified(target, deb.sha256)


def _download(deb: PinnedDeb, cache_dir: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        downloaded = Path(tmp) / deb.filename
        apt_error = _download_with_apt(deb, tmp)
        if apt_error is not None:
            mirror_error = _download_from_mirror(deb, downloaded)
            if mirror_error is not None:
                raise ArtifactError(
                    f"could not download {deb.requirement}. With apt-get: {apt_error}. From the mirror: "
                    f"{mirror_error}. Check `apt-cache policy {deb.name}` (has the pinned version left the archive? "
                    f"as root, `apt-get update` refreshes the lists), set MEMORIA_DEBIAN_MIRROR to a reachable "
                    f"Debian mirror, or put {deb.filename} in {cache_dir} by hand"
                )
        shutil.move(str(downloaded), target)  # moved only once complete: no half-written .deb in the cache


def _download_with_apt(deb: PinnedDeb, cwd: str) -> str | None:
    """None once `apt-get download` has put the .deb in `cwd`, else why not."""
    if shutil.which("apt-get") is None:
        return "this machine has no apt-get"
    result = _apt_download(deb, cwd)
    if result.returncode != 0 and os.geteuid() == 0:
        # Stale package lists are the usual cause ("Can't find a source to download version ..."); refresh once.
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True)
        result = _apt_download(deb, cwd)
    if result.returncode != 0 or not (Path(cwd) / deb.filename).exists():
        return result.stderr.strip()[-1000:] or f"exit status {result.returncode}"
    return None


def _download_from_mirror(deb: PinnedDeb, dest: Path) -> str | None:
    """None once the .deb is at `dest`, fetched from the mirror's pool, else why not."""
    url = f"{os.environ.get('MEMORIA_DEBIAN_MIRROR', DEFAULT_MIRROR).rstrip('/')}/{deb.pool_path}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as e:  # URLError and HTTPError are OSErrors
        dest.unlink(missing_ok=True)
        return f"{url}: {e}"
    return None


def _apt_download(deb: PinnedDeb, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", "download", "-q", deb.requirement], cwd=cwd, capture_output=True, text=True)


def _ar_members(f: IO[bytes]) -> Iterator[tuple[str, int]]:
    """(name, size) of each member of an `ar` archive, leaving `f` at the member's data."""
    if f.read(8) != b"!<arch>\n":
        raise ArtifactError("not a Debian package (no ar header)")
    while header := f.read(60):
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        start = f.tell()
        yield name, size
        f.seek(start + size + (size % 2))  # members are 2-byte aligned


def extract_from_deb(deb_path: Path, pattern: str, dest: Path) -> list[Path]:
    """Extract the files of the .deb's data archive whose path matches `pattern` (fnmatch, no leading "./") into
    `dest`, keeping their paths; returns them sorted."""
    with open(deb_path, "rb") as f:
        for name, size in _ar_members(f):
            if name.startswith("data.tar"):
                data = f.read(size)
                break
        else:
            raise ArtifactError(f"{deb_path} has no data.tar member")
    extracted = []
    with tempfile.TemporaryFile() as buf:
        buf.write(data)
        buf.seek(0)
        with tarfile.open(fileobj=buf, mode="r:*") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if member.isfile() and fnmatch.fnmatch(path, pattern):
                    out = dest / path
                    if not out.resolve().is_relative_to(dest.resolve()):  # fnmatch's * also matches "../"
                        raise ArtifactError(f"{deb_path}: member {member.name} would land outside {dest}")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                        shutil.copyfileobj(src, dst)
                    extracted.append(out)
    return sorted(extracted)


def extract_once(packages: Sequence[PinnedDeb], pattern: str, out: Path, cache_dir: Path) -> Path:
    """`out`, holding each package's files matching `pattern` under a folder of the package's name, fetched and
    extracted the first time only. Extraction goes to `<out>.partial`, renamed once complete and marked with
    `.complete`: a half-extracted folder is never read as a whole one."""
    done = out / ".complete"
    if done.exists():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run
    for deb in packages:
        path = fetch_deb(deb, cache_dir)
        if not extract_from_deb(path, pattern, tmp / deb.name):
            raise ValueError(f"{deb.requirement} holds no file matching {pattern}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    done.touch()
    return out
