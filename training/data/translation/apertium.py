"""The Apertium runner (Debian `apertium-eng-spa`): is it installed, and translate a batch of texts with it.

Data preparation uses it to back-translate (training/data/translation/back_translation.py); the Apertium peer
(training/peers/apertium.py) uses it to translate the test split. Installing it is the peer's business."""

from __future__ import annotations

import shutil
import subprocess

PACKAGE = "apertium-eng-spa"


def has_pair(binary: str) -> bool:
    """Whether the `apertium` at `binary` has both directions of the English-Spanish pair."""
    out = subprocess.run([binary, "-l"], capture_output=True, text=True)
    return {"spa-eng", "eng-spa"} <= set(out.stdout.split())


def installed_apertium() -> tuple[str, str] | None:
    """(binary, package version) when Apertium and its English-Spanish pair are installed, else None."""
    found = shutil.which("apertium")
    if not found or not has_pair(found):
        return None
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True)
    return found, version.stdout.strip() or "unknown"


def apertium_translate(texts: list[str], binary: str, pair: str = "spa-eng", mark_unknown: bool = False) -> list[str]:
    """One Apertium process for all texts: one text per line in, one per line out. -u drops the '*' marks
    Apertium puts on unknown words (they would cost BLEU for a cosmetic reason); `mark_unknown` keeps them."""
    clean = [" ".join(t.split()) for t in texts]  # no newlines inside a text
    flags = [] if mark_unknown else ["-u"]
    out = subprocess.run(
        [binary, *flags, pair], input="\n".join(clean) + "\n", capture_output=True, text=True, check=True
    )
    lines = out.stdout.rstrip("\n").split("\n")
    if len(lines) != len(texts):
        raise RuntimeError(f"apertium returned {len(lines)} lines for {len(texts)} inputs")
    return [line.strip() for line in lines]
