"""Tab-separated sentence pairs: the manythings.org/Tatoeba file (`English<TAB>Spanish<TAB>attribution`), or a
2-column `Spanish<TAB>English` file. A 2-column file that looks the other way round is refused, rather than
silently training English -> Spanish."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from serving.contract.files import sha256_file
from training.data.translation.pairs import RawCorpus, TranslationPair, normalise_space

_SPANISH_MARKS = re.compile(r"[¿¡ñÑáéíóúÁÉÍÓÚ]")


def read_tatoeba(path: Path) -> RawCorpus:
    """Pairs of a tab-separated file (column order: see the module docstring)."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    layout = tatoeba_layout(lines)
    pairs, dropped = parse_tab_pairs(lines, layout, path.stem)
    if layout == "source-target":
        _refuse_swapped_columns(pairs, path)
    provenance = {"file": str(path), "sha256": sha256_file(path), "layout": layout, "lines": len(lines)}
    return RawCorpus(pairs, dropped, provenance)


def tatoeba_layout(lines: Iterable[str]) -> str:
    """`manythings` (English, Spanish, attribution) when the first non-blank line has 3+ columns, otherwise
    `source-target` (Spanish, English)."""
    for line in lines:
        if line.strip():
            return "manythings" if len(line.split("\t")) >= 3 else "source-target"
    raise ValueError("the pairs file is empty")


def parse_tab_pairs(lines: Iterable[str], layout: str, name: str) -> tuple[list[TranslationPair], Counter[str]]:
    pairs: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    want = 3 if layout == "manythings" else 2
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2 or (layout == "source-target" and len(columns) != want):
            dropped["malformed_line"] += 1
            continue
        english, spanish = (columns[0], columns[1]) if layout == "manythings" else (columns[1], columns[0])
        pairs.append(TranslationPair(f"{name}:{number}", normalise_space(spanish), normalise_space(english)))
    return pairs, dropped


def _refuse_swapped_columns(pairs: Sequence[TranslationPair], path: Path) -> None:
    """A 2-column file is Spanish first; if its second column looks more Spanish than its first, refuse it."""
    if len(pairs) < 5:
        return
    source_es = sum(1 for p in pairs if _SPANISH_MARKS.search(p.source))
    target_es = sum(1 for p in pairs if _SPANISH_MARKS.search(p.target))
    if target_es > max(source_es, 0.1 * len(pairs)):
        raise ValueError(
            f"{path} has 2 columns, read as Spanish<TAB>English, but the second column looks Spanish "
            f"({target_es} lines with Spanish accents/¿¡ vs {source_es} in the first); swap its columns "
            "(awk -F'\\t' -v OFS='\\t' '{print $2, $1}') or use the 3-column manythings.org file"
        )
