"""gettext catalogs (`.po`/`.mo`) as Spanish -> English pairs: msgstr -> msgid, read with polib."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from training.data.files import files_digest
from training.data.translation.pairs import RawCorpus, TranslationPair, normalise_space, word_count

log = logging.getLogger(__name__)

DEFAULT_GETTEXT_DIR = Path("/usr/share/locale/es/LC_MESSAGES")
_WORD = re.compile(r"[^\W\d_]+")

# Decisions:
# - plural entries: the singular forms are used (msgid / msgstr[0]); the plural forms would mostly repeat them.
# - fuzzy, obsolete and untranslated entries, and the catalog header, are skipped.
# - keyboard accelerators are removed ("_Open" -> "Open", "&Save" -> "Save", "Arc_hivo" -> "Archivo"): a single
#   "_"/"&" before a letter, at a word start or when the other side has one too (GTK often moves it mid-word).
# - format placeholders (%s, %1$d, %(name)s, {0}, ${var}) and markup (<b>, &amp;) are KEPT: a translator must copy
#   them and a model can learn to; entries that are MOSTLY placeholders/markup ("%s: %s", "<b>%s</b>") are dropped,
#   as are identical msgid/msgstr of 3+ words (an untranslated copy, not a translation).
# - `prose=True` (the game catalogs that teach everyday language, training/data/translation/game_catalogs.py): the text
#   is meant to be read as a sentence, so formatting tags that come in pairs (`<color_red>...</color>`,
#   `<info>...</info>`) are removed and their words kept, while an entry with a placeholder or a lone template tag
#   (`%s`, `{}`, `<npcname>`, `<u_name>`) is dropped: with its slot removed the sentence is no longer whole.
#   An entry of several sentences whose two sides split into the same number of sentences becomes one pair per
#   sentence (item descriptions and dialogue turns are mostly translated sentence by sentence): short pairs teach
#   more per training step, and long entries would otherwise be lost to the length filter. Entries whose counts
#   differ stay whole. Quotes around a whole line ("\"How was the movie?\"", a spoken line) are removed: the words
#   are what people will type.

_PLACEHOLDER = re.compile(
    # (no space flag: "100% sure" is a percent sign, not "% s")
    r"%(?:\d+\$)?(?:\([^)]*\))?[-+#0']*(?:\d+|\*)?(?:\.\d+)?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcspmn%]"
    r"|\{[^{}\s]*\}|\$\{?\w+\}?|<[^<>]+>|&\w+;|&#\d+;"
)
# A sentence ends at . ! ? or … (and a closing quote), before a capital or an opening mark.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"”»']))\s+(?=[¿¡\"“«(']?[A-ZÁÉÍÓÚÑÜ])")
_TAG = re.compile(r"<(/?)([A-Za-z_][\w-]*)(?:[ :=][^<>]*)?>")
_ACCELERATOR = {
    "_": re.compile(r"(?<![\w_])_(?=[^\W\d_])|(?<=[^\W\d_])_(?=[^\W\d_])"),
    "&": re.compile(r"&(?=[^\W\d_])(?![\w]+;)"),
}


def gettext_catalogs(path: Path) -> list[Path]:
    """The .po/.mo files at `path` (a catalog, or a folder searched recursively), sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no gettext catalog or folder at {path}")
    return sorted(p for p in path.rglob("*") if p.suffix in (".po", ".mo") and p.is_file())


def read_gettext(path: Path, progress: bool = True, prose: bool = False, domain: str = "") -> RawCorpus:
    """Spanish (msgstr) -> English (msgid) pairs from every catalog at `path` (`prose`: see the decisions above)."""
    import polib  # only this source needs it

    files = gettext_catalogs(path)
    pairs: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    for file in tqdm(files, desc="reading catalogs", unit="catalog", disable=not progress or len(files) < 20):
        try:
            catalog = polib.mofile(str(file)) if file.suffix == ".mo" else polib.pofile(str(file))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            log.warning("skipping unreadable catalog %s: %s", file, e)
            dropped["unreadable_catalog"] += 1
            continue
        for number, entry in enumerate(catalog):
            result = gettext_pair(entry, prose)
            if isinstance(result, str):
                dropped[result] += 1
                continue
            sentences = [(unquote(es), unquote(en)) for es, en in aligned_sentences(*result)] if prose else [result]
            for k, (spanish, english) in enumerate(sentences):
                suffix = f".{k}" if len(sentences) > 1 else ""
                pairs.append(TranslationPair(f"{file.stem}:{number}{suffix}", spanish, english, domain=domain))
    if not pairs:
        raise ValueError(
            f"no translated gettext entries found in {path} ({len(files)} catalogs); point data.path at a folder "
            "of Spanish .mo/.po files (e.g. /usr/share/locale/es/LC_MESSAGES) or install packages with Spanish "
            "translations"
        )
    provenance = {"path": str(path), "catalogs": len(files), "sha256": files_digest(files)}
    return RawCorpus(pairs, dropped, provenance)


def gettext_pair(entry: Any, prose: bool = False) -> tuple[str, str] | str:
    """(Spanish, English) of a polib entry, or the reason it is dropped. Contexts (`msgctxt`) only tell identical
    English strings apart and are not part of the text; plural entries give their singular forms."""
    if not entry.msgid:
        return "header"
    if getattr(entry, "obsolete", False):
        return "obsolete"
    if "fuzzy" in getattr(entry, "flags", ()):
        return "fuzzy"
    english = entry.msgid
    spanish = entry.msgstr_plural.get(0, "") if entry.msgid_plural else entry.msgstr
    if not spanish.strip():
        return "untranslated"
    spanish, english = strip_accelerators(spanish, english)
    if prose:
        spanish, english = strip_paired_tags(spanish), strip_paired_tags(english)
        if spanish is None or english is None:
            return "template_tag"
        if _PLACEHOLDER.search(spanish) or _PLACEHOLDER.search(english):
            return "placeholder"
    spanish, english = normalise_space(spanish), normalise_space(english)
    if mostly_placeholders(english) or mostly_placeholders(spanish):
        return "mostly_placeholders"
    if spanish == english and word_count(english) >= 3:
        return "untranslated_copy"
    return spanish, english


def strip_accelerators(spanish: str, english: str) -> tuple[str, str]:
    """Remove keyboard-accelerator markers (see the decisions above); "&&" (a literal "&") is left alone."""
    for marker, pattern in _ACCELERATOR.items():
        spanish, english = _strip_one(spanish, english, marker, pattern), _strip_one(english, spanish, marker, pattern)
    return spanish, english


def _strip_one(text: str, other: str, marker: str, pattern: re.Pattern[str]) -> str:
    """`text` without its accelerator: one marker before a letter, at a word start, or mid-word when `other` has
    one too and does not contain the same word (`file_name` on both sides is an identifier, not a mnemonic)."""
    hits = list(pattern.finditer(text))
    if len(hits) != 1 or marker * 2 in text:
        return text
    at = hits[0].start()
    at_word_start = at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_")
    if not at_word_start:
        word = text[: at + 1].split()[-1] + text[at + 1 :].split(maxsplit=1)[0]
        if len(pattern.findall(other)) != 1 or word in other.split():
            return text
    return text[:at] + text[at + 1 :]


def mostly_placeholders(text: str) -> bool:
    """True when placeholders/markup outnumber the words, or no word of 2+ letters is left."""
    placeholders = len(_PLACEHOLDER.findall(text))
    words = [w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text)) if len(w) >= 2]
    return not words or placeholders > len(words)


def strip_paired_tags(text: str) -> str | None:
    """`text` without formatting tags that open and close (`<color_red>x</color>` -> `x`; a closing tag may carry
    another name, as Cataclysm's `</color>` does); None if a tag is a lone template variable (`<npcname>`)."""
    tags = _TAG.findall(text)
    if any(not closing for closing, _ in tags) and not any(closing for closing, _ in tags):
        return None
    for closing, name in tags:
        if not closing and not name.startswith("color") and ("/", name) not in tags:
            return None
    return _TAG.sub("", text)


def split_sentences(text: str) -> list[str]:
    """`text` cut after each . ! ? or … (a closing quote may follow) that comes before a capital, Spanish or English."""
    return _SENTENCE_END.split(text)


def aligned_sentences(spanish: str, english: str) -> list[tuple[str, str]]:
    """One pair per sentence when both sides have the same number of sentences (more than one), else the pair."""
    es, en = split_sentences(spanish), split_sentences(english)
    if len(es) == len(en) > 1:
        return list(zip(es, en, strict=True))
    return [(spanish, english)]


_WRAPPING_QUOTES = {'"': '"', "“": "”", "«": "»", "'": "'"}


def unquote(text: str) -> str:
    """`text` without one pair of quotes around all of it (and no other quote of that kind inside)."""
    if len(text) > 2 and (close := _WRAPPING_QUOTES.get(text[0])) and text.endswith(close):
        inner = text[1:-1]
        if text[0] not in inner and close not in inner:
            return inner.strip()
    return text
