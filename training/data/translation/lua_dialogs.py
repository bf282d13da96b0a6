"""Spanish -> English pairs from Fish Fillets NG's dialogue scripts (the `fillets` domain, game_catalogs.py).

Fish Fillets keeps its texts in Lua, not gettext: each level's `dialogs_es.lua` repeats the English line and follows
it with the Spanish one,

    dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
    dialogStr("¿Qué clase de extraño nave es esa?")

Two fish talk to each other and to the player in short modern lines ("Who woke me up?", "Stop it! It makes my scales
itch!"), the register everyday Spanish is in. The pairs go through gettext's prose steps (one pair per sentence when
both sides split alike, quotes around a whole line removed), so they look like the dialogue domain's.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from training.data.files import files_digest
from training.data.translation.gettext_pairs import aligned_sentences, unquote
from training.data.translation.pairs import RawCorpus, TranslationPair, normalise_space

_LUA_STRING = r'"((?:[^"\\]|\\.)*)"'
_PAIR = re.compile(
    r"dialogId\(\s*" + _LUA_STRING + r"\s*,\s*(?:nil|" + _LUA_STRING + r")\s*,\s*" + _LUA_STRING + r"\s*\)"
    r"\s*dialogStr\(\s*" + _LUA_STRING + r"\s*\)"
)
_ESCAPE = re.compile(r"\\(.)")
_ESCAPED = {"n": " ", "t": " "}
# The other domains' English spells apostrophes straight ("don't"); one spelling keeps the model's output in one.
_CURLY = str.maketrans({"’": "'", "‘": "'"})


def lua_string(literal: str) -> str:
    """The text of a double-quoted Lua string's body (`\\"` -> `"`, `\\n` -> a space: a line break in a speech
    bubble)."""
    return _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(1)), literal)


def dialog_pairs(script: str) -> list[tuple[str, str, str]]:
    """(line id, Spanish, English) of every dialogId/dialogStr pair of a `dialogs_es.lua` script, in order."""
    return [(key, lua_string(es), lua_string(en)) for key, _font, en, es in _PAIR.findall(script)]


def read_lua_dialogs(folder: Path, progress: bool = True, domain: str = "") -> RawCorpus:
    """The pairs of every `*dialogs_es.lua` under `folder`, tagged with `domain`."""
    del progress  # a few dozen small files: read in well under a second
    files = sorted(folder.rglob("*dialogs_es.lua"))
    pairs: list[TranslationPair] = []
    dropped: Counter[str] = Counter()
    for file in files:
        level = file.parent.name
        for key, spanish, english in dialog_pairs(file.read_text(encoding="utf-8")):
            spanish, english = normalise_space(spanish.translate(_CURLY)), normalise_space(english.translate(_CURLY))
            if not spanish or spanish == english:
                dropped["untranslated"] += 1
                continue
            sentences = aligned_sentences(spanish, english)
            for k, (es, en) in enumerate(sentences):
                suffix = f".{k}" if len(sentences) > 1 else ""
                pairs.append(TranslationPair(f"{level}:{key}{suffix}", unquote(es), unquote(en), domain=domain))
    if not pairs:
        raise ValueError(f"no dialogId/dialogStr pairs found in the {len(files)} dialogs_es.lua files under {folder}")
    return RawCorpus(pairs, dropped, {"path": str(folder), "scripts": len(files), "sha256": files_digest(files)})
