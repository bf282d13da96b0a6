"""Install requirements into a venv with uv, honouring the machine's pip configuration; pip if uv fails.

    .venv/bin/python scripts/install_with_uv.py -e '.[train,dev]'

Why: `make install` is the first thing `make run` does, and pip spent 162 s installing the 187 pinned packages into
a fresh venv on a 2-core machine, where uv installed the identical set (`pip freeze` equal) in 16 s (docs/measured.md,
"Time"). uv is already pinned in requirements-dev.txt (`bentoml build` needs it).

uv reads no pip.conf and no PIP_* variable, so this script asks pip for its effective settings (`pip config list`:
files and environment) and hands the ones that choose *what* gets installed to uv: index URL, extra index URLs,
find-links, constraint files, no-index. Machines that serve a local CPU build of torch through find-links (and
cap it with a constraint file) would otherwise get the CUDA wheels from PyPI. uv's index strategy is set to
pip's (best version across all indexes). Anything uv cannot do ends in a loud fallback to pip, never a half venv.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

# pip setting -> uv flag. Values of the list-valued ones are whitespace-separated in pip's config, as in uv's.
LIST_FLAGS = {"extra-index-url": "--extra-index-url", "find-links": "--find-links", "constraint": "--constraint"}
SINGLE_FLAGS = {"index-url": "--index-url"}
SWITCHES = {"no-index": "--no-index"}
TRUE_WORDS = {"1", "true", "yes", "on"}
# pip install reads its [global] section, then [install], then PIP_* variables, each overriding the one before (pip
# has already merged its config files, global < user < site < PIP_CONFIG_FILE, into one value per section.key).
SECTION_RANK = {"global": 0, "install": 1, ":env:": 2}


def pip_settings(python: str) -> dict[str, str]:
    """Effective settings of `pip install`: key -> raw value, ranked as pip ranks them (SECTION_RANK)."""
    listing = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True).stdout
    ranked: list[tuple[int, str, str]] = []
    for line in listing.splitlines():
        name, sep, quoted = line.partition("=")
        section, _, key = name.rpartition(".")  # "global.find-links", "install.constraint", ":env:.find-links"
        if sep and section in SECTION_RANK:
            ranked.append((SECTION_RANK[section], key, " ".join(shlex.split(quoted))))
    return {key: value for _, key, value in sorted(ranked, key=lambda item: item[0])}


def uv_flags(settings: dict[str, str]) -> list[str]:
    """The uv command-line flags that reproduce pip's choice of packages under these settings."""
    flags = ["--index-strategy", "unsafe-best-match"]  # pip's behaviour: the best version across every index
    for key, flag in SINGLE_FLAGS.items():
        if settings.get(key):
            flags += [flag, settings[key]]
    for key, flag in LIST_FLAGS.items():
        for value in settings.get(key, "").split():
            flags += [flag, value]
    for key, flag in SWITCHES.items():
        if settings.get(key, "").lower() in TRUE_WORDS:
            flags.append(flag)
    return flags


def uv_environment(settings: dict[str, str]) -> dict[str, str]:
    """pip's CA bundle, where one is configured, for uv's TLS (uv reads SSL_CERT_FILE)."""
    env = dict(os.environ)
    if settings.get("cert") and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = settings["cert"]
    return env


def main(requirements: list[str]) -> int:
    python = sys.executable
    uv = Path(python).with_name("uv")
    settings = pip_settings(python)
    if uv.exists():
        # --compile-bytecode: pip writes .pyc files at install, uv does not by default; where PYTHONDONTWRITEBYTECODE is
        # set (CI here) nothing writes them later either, and every process (a test's server, a training CLI) would
        # compile torch, mlflow and bentoml from source on start: importing mlflow and bentoml took 4.7 s instead of
        # 1.4 s, and the default test tier 925 s in a fresh clone against 505 s in an older venv that had them
        flags = ["--python", python, "--compile-bytecode", *uv_flags(settings)]
        command = [str(uv), "pip", "install", *flags, *requirements]
        if subprocess.run(command, env=uv_environment(settings), check=False).returncode == 0:
            return 0
        print(f"install_with_uv: uv failed ({shlex.join(command)}); installing with pip instead", file=sys.stderr)
    else:
        print(f"install_with_uv: no uv at {uv}; installing with pip", file=sys.stderr)
    return subprocess.run([python, "-m", "pip", "install", *requirements], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
