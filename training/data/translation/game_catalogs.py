"""Everyday Spanish -> English: the human Spanish translations of free games' English texts, from pinned
Debian packages (gettext catalogs; see README "Data").

- `cataclysm` (cataclysm-dda-data 0.F-3-9, CC-BY-SA-3.0): a survival game's dialogue, item descriptions, messages
  and menus in modern English ("Hang on, other people can steal our stuff?"), Spain's Spanish (`es_ES`).
- `cataclysm_ar`: the same strings translated independently into Argentina's Spanish (`es_AR`; 71% differ). It is
  a second Spanish source for the same English, so it is training data only: grouped with its `es_ES` twin (same
  English), it lands in the same split, and in validation/test only the `es_ES` side is scored.
- `wesnoth` (the 16 Wesnoth 1.16 campaign packages, GPL-2+): campaign dialogue and narration, older register.
- `dialogue`: three free role-playing games whose text is mostly characters talking to the player, in plain modern
  English ("What are you talking about?", "Well, that would be cheating, don't you think so?"): FreeDroidRPG
  (freedroidrpg-data 1.0-1, GPL-2+), FreeDink (freedink-data 1.08.20190120-2, zlib-style data licence + GPL-3+) and
  Adonthell: Waste's Edge (adonthell-data 0.3.8-1, GPL-2+). About 11,700 pairs read (9,967 left in `default`'s
  training split), training only: the everyday probe, not a test split of their own, measures what they add (a split
  of 500 + 500 would take a tenth of them).
- `fillets`: Fish Fillets NG (fillets-ng-data 1.0.1-1.1, GPL-2+), two fish talking to each other and to the player
  in short modern lines ("Who woke me up?"); its texts are Lua scripts, not gettext (lua_dialogs.py). 1,770
  training pairs, training only for the same reason; in no preset: beside `default`'s data it cost 0.4 BLEU on the
  everyday probe and 0.7 on shared test pairs (docs/measured.md, "What moves everyday Spanish").

Each package is fetched once with `apt-get download` (sha256-pinned), and only its Spanish catalogs are extracted
into the data folder (a few MB); the .debs stay in the artifact cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import Workspace
from training.data.debian import PinnedDeb, extract_once
from training.data.files import files_digest
from training.data.translation.gettext_pairs import read_gettext
from training.data.translation.lua_dialogs import read_lua_dialogs
from training.data.translation.pairs import RawCorpus

log = logging.getLogger(__name__)

CATACLYSM = PinnedDeb(
    "cataclysm-dda-data",
    "0.F-3-9",
    "cd0c097169fe364fdb6bcdab77663d24920a063387ce2fbf1b5d3be01c141105",
    "CC-BY-SA-3.0",
    source="cataclysm-dda",
)
_WESNOTH_SHA256 = {
    "did": "774619f5aaeb7eb4c848e1cc1758795a8c58e96bd270cceecc9d847dbcc769b3",
    "dm": "1997ad4d91e8de36415db2a3445904288f588a76d75111222d2aace409ace5c6",
    "dw": "47982e08b2a5d5fd79f400a5453f32c6d7dd56f2ccc10412a9e47dec8a9b3ca4",
    "ei": "687abe111ee662b7324336ddadc209758f68d2eeb1ccbf630238f27a0e3c6404",
    "httt": "05b16a3f8f8204278794aae14d8e6a7c95d2b2faef7337c4997c827a146d1bbd",
    "l": "5383c79046df6121929bc36a8ec3f970ab4cf9c1239ed9b31868201c27f4266d",
    "low": "2f304551b97b7fb76a2adb5ad8ffcac3e78476bc8ade17532c90714065c9bf9f",
    "nr": "13edcf1bdd23708f531ba81c67100c5800363a119f10155c7f9e146fe7dced34",
    "sof": "b6f1ddffdbd1a977f3965dae944e4fb11c147627471f1cfc71c92d1e69efb555",
    "sota": "fa44304ff53d259f3c5fe13c03cb8166e55e9c307807d1a5663048c396645ba6",
    "sotbe": "877a2f4a7fd8df54fd3b4561ffbd5fa95d0390d7c7372f3cb66367c8007918cb",
    "thot": "79d9ec6e43300ea9f41295ccf3fb451e8eeaefc17007123f65d77eb05cb88695",
    "trow": "b5009e964ac7157a46d50de911e4f56f5bb4389d60b82a513b5f382671d180d7",
    "tsg": "38b5f564253b8e0d9c093b2b7c58aabfef24f688968d9cbaf42abfc1e76d8288",
    "ttb": "d0d45693665305191488553ade8dc1d0aa26ab17d4bffae3bf6969db4a766329",
    "utbs": "81e05717bebbfb6348c0bed2cd6ce2560c4fd9205ed419c2e7bc039b4a70e228",
}
# Found by surveying the Spanish catalogs of every Debian bookworm game package (apt-file): these three hold the most
# short conversational lines; the larger strategy games' catalogs are mostly UI labels and mission notices.
DIALOGUE_GAMES = (
    PinnedDeb(
        "freedroidrpg-data",
        "1.0-1",
        "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b",
        "GPL-2+",
        source="freedroidrpg",
    ),
    PinnedDeb(
        "freedink-data",
        "1.08.20190120-2",
        "5c3f0c22958364460057d9df5318a9a2a0fb84b9174cab57a9d50ad03a73d66c",
        "zlib-style (Dink Smallwood data) and GPL-3+",
        source="freedink-data",
    ),
    PinnedDeb(
        "adonthell-data",
        "0.3.8-1",
        "2312e765b35668ba18f7f9b4cd75e8cad03e509ef1033bad7c37568cb1353adc",
        "GPL-2+",
        source="adonthell-data",
    ),
)
FISH_FILLETS = PinnedDeb(
    "fillets-ng-data",
    "1.0.1-1.1",
    "25de89afd8b1adf7bcace8290248a6a22c89cd42300317e69000e162c032cf84",
    "GPL-2+",
    source="fillets-ng-data",
)
WESNOTH = tuple(
    PinnedDeb(f"wesnoth-1.16-{c}", "1:1.16.9-1", sha, "GPL-2+", source="wesnoth-1.16")
    for c, sha in _WESNOTH_SHA256.items()
)


def read_prose_catalogs(folder: Path, progress: bool, domain: str) -> RawCorpus:
    """A folder of gettext catalogs read as prose (markup removed, one pair per sentence where both sides agree)."""
    return read_gettext(folder, progress=progress, prose=True, domain=domain)


@dataclass(frozen=True)
class CatalogDomain:
    """One domain: the packages that hold it, the path pattern of its Spanish texts inside them, and their reader."""

    name: str
    packages: tuple[PinnedDeb, ...]
    pattern: str
    description: str
    train_only: bool = False
    read: Callable[[Path, bool, str], RawCorpus] = read_prose_catalogs


DOMAINS = {
    d.name: d
    for d in (
        CatalogDomain(
            "cataclysm",
            (CATACLYSM,),
            "usr/share/locale/es_ES/LC_MESSAGES/*.mo",
            "Cataclysm: DDA texts, Spanish (Spain)",
        ),
        CatalogDomain(
            "cataclysm_ar",
            (CATACLYSM,),
            "usr/share/locale/es_AR/LC_MESSAGES/*.mo",
            "Cataclysm: DDA texts, Spanish (Argentina): a second source for the same English, training only",
            train_only=True,
        ),
        CatalogDomain(
            "wesnoth",
            WESNOTH,
            "usr/share/games/wesnoth/1.16/locale/es/LC_MESSAGES/*.mo",
            "Battle for Wesnoth 1.16 campaigns: dialogue and narration, Spanish",
        ),
        CatalogDomain(
            "dialogue",
            DIALOGUE_GAMES,
            # fnmatch's * spans folders: usr/share/locale/es/..., usr/share/games/dink/dink/l10n/es/...,
            # usr/share/games/adonthell/games/wastesedge/locale/es/...
            "usr/share/*/es/LC_MESSAGES/*.mo",
            "FreeDroidRPG, FreeDink and Adonthell: role-playing games' dialogue, Spanish; training only",
            train_only=True,
        ),
        CatalogDomain(
            "fillets",
            (FISH_FILLETS,),
            # every level's dialogs_es.lua, and the demo scenes' demo_dialogs_es.lua
            "usr/share/games/fillets-ng/script/*dialogs_es.lua",
            "Fish Fillets NG: two fish talking in short modern lines, Spanish; training only",
            train_only=True,
            read=read_lua_dialogs,
        ),
    )
}


def catalog_dir(ws: Workspace, domain: CatalogDomain) -> Path:
    """Where a domain's extracted catalogs live: named by the pins, so a new pin never reads stale catalogs."""
    digest = files_digest_of_pins(domain.packages)
    return ws.data_dir / "translation" / "catalogs" / f"{domain.name}-{digest[:12]}"


def files_digest_of_pins(packages: Sequence[PinnedDeb]) -> str:
    return hashlib.sha256("".join(p.sha256 for p in packages).encode()).hexdigest()


def ensure_catalogs(ws: Workspace, domain: CatalogDomain) -> list[Path]:
    """The domain's Spanish text files, fetching and extracting the pinned packages the first time."""
    out = catalog_dir(ws, domain)
    if not (out / ".complete").exists():
        log.info(
            "extracting %s (downloaded with apt-get if missing)", ", ".join(d.requirement for d in domain.packages)
        )
    extracted = extract_once(domain.packages, domain.pattern, out, ws.artifact_cache)
    return sorted(p for p in extracted.rglob("*") if p.is_file() and p.name != ".complete")


def read_catalog_domain(ws: Workspace, name: str, progress: bool = True) -> RawCorpus:
    """Pairs of one catalog domain, read by its reader, tagged with the domain."""
    domain = DOMAINS[name]
    files = ensure_catalogs(ws, domain)
    corpus = domain.read(catalog_dir(ws, domain), progress, name)
    corpus.provenance = {
        "description": domain.description,
        "packages": [{"package": d.requirement, "sha256": d.sha256, "licence": d.licence} for d in domain.packages],
        "catalogs": len(files),
        "catalogs_sha256": files_digest(files),
    }
    return corpus


def input_identity(names: Sequence[str]) -> dict[str, Any]:
    """What identifies the domains' input without reading it: the package pins."""
    return {name: [d.requirement + "@" + d.sha256 for d in DOMAINS[name].packages] for name in names}
