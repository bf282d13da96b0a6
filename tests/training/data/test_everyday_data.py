"""Everyday-language translation data: gettext catalogs read as prose, pinned Debian packages, the game catalog
domains, near-duplicate grouping with a domain-stratified split, and the README demo sentences kept out of the data.

Everything runs offline on tiny inputs built here: a gettext catalog written with polib, and a real (but tiny)
.deb assembled byte by byte, so no test calls apt-get or reaches the network."""

from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import hashlib
import io
import json
import lzma
import random
import re
import string
import tarfile
from collections import Counter
from pathlib import Path

import polib
import pytest

from tests.conftest import REPO
from training.config import TranslationDataConfig, Workspace
from training.data import debian
from training.data.debian import PinnedDeb, extract_from_deb, fetch_deb
from training.data.grouping import jaccard
from training.data.prepared import SPLITS
from training.data.sources import ArtifactError
from training.data.translation import corpus as tc
from training.data.translation import game_catalogs
from training.data.translation.everyday_probe import probe_sources
from training.data.translation.game_catalogs import CatalogDomain, read_catalog_domain
from training.data.translation.gettext_pairs import gettext_pair, read_gettext, strip_paired_tags
from training.data.translation.grouping import group_pairs, shingles, split_groups
from training.data.translation.lua_dialogs import read_lua_dialogs
from training.data.translation.pairs import TranslationPair

README = REPO / "README.md"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(root=tmp_path / "ws", tracking_uri="sqlite://")


# --- a small game catalog ---------------------------------------------------------------------------------------

# (msgid, msgstr, extra POEntry fields) of a game's catalog; PROSE_PAIRS is what prose mode keeps of it
GAME_ENTRIES = [
    ("The <color_red>zombie</color> is dead.", "El <color_red>zombi</color> está muerto.", {}),
    ("Read the <info>manual</info> first.", "Lee el <info>manual</info> primero.", {}),
    ("You see %s here.", "Ves %s aquí.", {}),
    ("You hit it %1$d times.", "Lo golpeas %1$d veces.", {}),
    ("Hello {}, welcome back.", "Hola {}, bienvenido de nuevo.", {}),
    ("Hello {name}, welcome back.", "Hola {name}, bienvenido de nuevo.", {}),
    ("<npcname> looks at you.", "<npcname> te mira.", {}),
    ("Open", "Abrir la puerta", {"msgctxt": "door"}),
    ("Open", "Abrir el archivo", {"msgctxt": "file"}),
    ("You find a bottle.", "", {"msgid_plural": "You find bottles.",
                                "msgstr_plural": {0: "Encuentras una botella.", 1: "Encuentras botellas."}}),
    ("It is getting dark.", "Está oscureciendo.", {}),
]  # fmt: skip
PROSE_PAIRS = [
    ("El zombi está muerto.", "The zombie is dead."),
    ("Lee el manual primero.", "Read the manual first."),
    ("Abrir la puerta", "Open"),
    ("Abrir el archivo", "Open"),
    ("Encuentras una botella.", "You find a bottle."),
    ("Está oscureciendo.", "It is getting dark."),
]
# the same catalog translated independently into Argentina's Spanish (a second source for the same English)
GAME_ENTRIES_AR = [
    ("The <color_red>zombie</color> is dead.", "El <color_red>zombi</color> se murió.", {}),
    ("It is getting dark.", "Se está haciendo de noche.", {}),
    ("Where are my boots?", "¿Dónde están mis botas?", {}),
]


def build_catalog(entries: list[tuple[str, str, dict]]) -> polib.POFile:
    po = polib.POFile()
    po.metadata = {
        "Content-Type": "text/plain; charset=UTF-8",
        "Language": "es",
        "Plural-Forms": "nplurals=2; plural=n != 1;",
    }
    for msgid, msgstr, extra in entries:
        po.append(polib.POEntry(msgid=msgid, msgstr=msgstr, **extra))
    return po


def mo_bytes(entries: list[tuple[str, str, dict]], tmp_path: Path) -> bytes:
    path = tmp_path / "scratch.mo"
    build_catalog(entries).save_as_mofile(str(path))
    return path.read_bytes()


@pytest.fixture(params=["po", "mo"])
def game_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The game catalog saved as .po or as .mo (compiled, as Debian ships it)."""
    path = tmp_path / f"game.{request.param}"
    po = build_catalog(GAME_ENTRIES)
    if request.param == "po":
        po.save(str(path))
    else:
        po.save_as_mofile(str(path))
    return path


# --- gettext in prose mode --------------------------------------------------------------------------------------


def test_prose_mode_keeps_words_of_paired_tags_and_drops_placeholders_and_template_tags(game_catalog: Path) -> None:
    raw = read_gettext(game_catalog, progress=False, prose=True, domain="x")

    assert sorted((p.source, p.target) for p in raw.pairs) == sorted(PROSE_PAIRS)
    # %s, %1$d, {} and {name}: a sentence with its slot removed is no longer whole
    assert raw.dropped["placeholder"] == 4
    assert raw.dropped["template_tag"] == 1  # <npcname>
    assert {p.domain for p in raw.pairs} == {"x"}


def test_non_prose_mode_keeps_placeholders_and_markup(game_catalog: Path) -> None:
    raw = read_gettext(game_catalog, progress=False)

    by_target = {p.target: p.source for p in raw.pairs}
    assert by_target["You see %s here."] == "Ves %s aquí."
    assert by_target["You hit it %1$d times."] == "Lo golpeas %1$d veces."
    assert by_target["Hello {name}, welcome back."] == "Hola {name}, bienvenido de nuevo."
    assert by_target["<npcname> looks at you."] == "<npcname> te mira."
    assert by_target["Read the <info>manual</info> first."] == "Lee el <info>manual</info> primero."
    assert len(raw.pairs) == len(GAME_ENTRIES)
    assert not raw.dropped
    assert {p.domain for p in raw.pairs} == {""}


def test_contexts_and_plurals() -> None:
    # msgctxt only tells identical English strings apart: it is not part of either text
    door = polib.POEntry(msgid="Open", msgstr="Abrir la puerta", msgctxt="door")
    assert gettext_pair(door, prose=True) == ("Abrir la puerta", "Open")
    # plural entries give their singular forms
    plural = polib.POEntry(
        msgid="You find a bottle.",
        msgid_plural="You find bottles.",
        msgstr_plural={0: "Encuentras una botella.", 1: "Encuentras botellas."},
    )
    assert gettext_pair(plural, prose=True) == ("Encuentras una botella.", "You find a bottle.")
    untranslated_plural = polib.POEntry(msgid="a cat", msgid_plural="cats", msgstr_plural={0: "", 1: ""})
    assert gettext_pair(untranslated_plural, prose=True) == "untranslated"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The <color_red>zombie</color> is dead.", "The zombie is dead."),
        ("Read the <info>manual</info> first.", "Read the manual first."),
        ("<good>Yes</good> or <bad>no</bad>?", "Yes or no?"),
        ("No tags at all.", "No tags at all."),
        ("<npcname> looks at you.", None),  # a lone template variable
        ("Give <info>this</info> to <npcname>.", None),  # one pair, one lone variable
        ("<info>unclosed", None),
    ],
)
def test_strip_paired_tags(text: str, expected: str | None) -> None:
    assert strip_paired_tags(text) == expected


def test_a_literal_percent_sign_is_not_a_placeholder() -> None:
    entry = polib.POEntry(msgid="I am 100% sure.", msgstr="Estoy 100% seguro.")
    assert gettext_pair(entry, prose=True) == ("Estoy 100% seguro.", "I am 100% sure.")


# --- a tiny Debian package --------------------------------------------------------------------------------------


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    """An `ar` archive as dpkg writes one: a 60-byte header per member, data padded to an even length."""
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def tar_xz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name in sorted({str(Path(n).parent) for n in files} - {"."}):
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def odd_sized_control_tar() -> bytes:
    """A control.tar.gz (dpkg takes .gz as well as .xz; xz output has an even length) of odd length, so the
    member after it sits behind a padding byte."""
    for n in range(50):
        control = tar_xz({"./control": b"Package: game-data\nVersion: 1.0-1\n" + b"#" * n})
        control = gzip.compress(lzma.decompress(control), mtime=0)
        if len(control) % 2:
            return control
    raise AssertionError("no odd-sized control archive")


ES_ES_MO = "usr/share/locale/es_ES/LC_MESSAGES/game.mo"
ES_AR_MO = "usr/share/locale/es_AR/LC_MESSAGES/game.mo"


@pytest.fixture
def deb_bytes(tmp_path: Path) -> bytes:
    data = tar_xz(
        {
            f"./{ES_ES_MO}": mo_bytes(GAME_ENTRIES, tmp_path),
            f"./{ES_AR_MO}": mo_bytes(GAME_ENTRIES_AR, tmp_path),
            "./usr/share/doc/game-data/copyright": b"Files: *\nLicense: CC-BY-SA-3.0\n",
        }
    )
    return deb_holding(data)


def deb_holding(data_tar_xz: bytes) -> bytes:
    """A .deb whose data.tar.xz is `data_tar_xz` (after an odd-sized control archive, as dpkg-deb may write one)."""
    return ar_archive(
        [("debian-binary", b"2.0\n"), ("control.tar.gz", odd_sized_control_tar()), ("data.tar.xz", data_tar_xz)]
    )


def pin(deb_bytes: bytes) -> PinnedDeb:
    return PinnedDeb("game-data", "1:1.0-1", hashlib.sha256(deb_bytes).hexdigest(), "CC-BY-SA-3.0", source="game")


def test_pinned_deb_names_its_file_as_apt_get_download_does() -> None:
    deb = PinnedDeb("wesnoth-1.16-did", "1:1.16.9-1", "0" * 64, "GPL-2+", source="wesnoth-1.16")
    assert deb.requirement == "wesnoth-1.16-did=1:1.16.9-1"
    assert deb.filename == "wesnoth-1.16-did_1%3a1.16.9-1_all.deb"
    assert deb.pool_path == "pool/main/w/wesnoth-1.16/wesnoth-1.16-did_1.16.9-1_all.deb"  # no epoch in the pool


def test_extract_from_deb_takes_only_the_matching_files(tmp_path: Path, deb_bytes: bytes) -> None:
    deb_path = tmp_path / "game.deb"
    deb_path.write_bytes(deb_bytes)

    found = extract_from_deb(deb_path, "usr/share/locale/*/LC_MESSAGES/*.mo", tmp_path / "out")

    assert found == sorted([tmp_path / "out" / ES_AR_MO, tmp_path / "out" / ES_ES_MO])
    assert not (tmp_path / "out" / "usr" / "share" / "doc").exists()
    # what comes out is the catalog that went in
    assert polib.mofile(str(tmp_path / "out" / ES_ES_MO)).find("It is getting dark.").msgstr == "Está oscureciendo."
    assert extract_from_deb(deb_path, "usr/share/locale/es_ES/*/*.mo", tmp_path / "es") == [tmp_path / "es" / ES_ES_MO]
    assert extract_from_deb(deb_path, "usr/share/locale/fr/*", tmp_path / "fr") == []


def test_extract_from_something_else_is_refused(tmp_path: Path) -> None:
    not_a_deb = tmp_path / "game.deb"
    not_a_deb.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ArtifactError, match="not a Debian package"):
        extract_from_deb(not_a_deb, "*", tmp_path / "out")
    no_data = tmp_path / "control-only.deb"
    no_data.write_bytes(ar_archive([("debian-binary", b"2.0\n"), ("control.tar.gz", odd_sized_control_tar())]))
    with pytest.raises(ArtifactError, match=r"no data\.tar"):
        extract_from_deb(no_data, "*", tmp_path / "out")


@pytest.fixture
def no_apt_get(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine without apt-get whose Debian mirror is an (empty) local folder; any attempt to run a command fails
    the test. Returns the mirror's folder."""
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("MEMORIA_DEBIAN_MIRROR", mirror.as_uri())

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a fast test tried to run {args}")

    monkeypatch.setattr(debian.subprocess, "run", no_subprocess)
    return mirror


def test_fetch_deb_uses_a_cached_deb_that_matches_its_pin(tmp_path: Path, deb_bytes: bytes, no_apt_get) -> None:
    deb = pin(deb_bytes)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / deb.filename).write_bytes(deb_bytes)

    assert fetch_deb(deb, tmp_path / "cache") == tmp_path / "cache" / deb.filename


def test_fetch_deb_refuses_a_deb_whose_sha256_differs(tmp_path: Path, deb_bytes: bytes, no_apt_get) -> None:
    deb = PinnedDeb("game-data", "1:1.0-1", "0" * 64, "CC-BY-SA-3.0", source="game")
    (tmp_path / deb.filename).write_bytes(deb_bytes)

    with pytest.raises(ArtifactError, match=f"has sha256 {hashlib.sha256(deb_bytes).hexdigest()}, expected 0000"):
        fetch_deb(deb, tmp_path)


def test_fetch_deb_without_apt_get_says_where_to_put_the_deb(tmp_path: Path, deb_bytes: bytes, no_apt_get) -> None:
    deb = pin(deb_bytes)
    with pytest.raises(ArtifactError, match="no apt-get") as error:
        fetch_deb(deb, tmp_path / "cache")
    assert deb.filename in str(error.value) and str(tmp_path / "cache") in str(error.value)
    assert "MEMORIA_DEBIAN_MIRROR" in str(error.value) and deb.pool_path in str(error.value)
    assert not (tmp_path / "cache" / deb.filename).exists()


def test_fetch_deb_falls_back_to_a_mirrors_pool(tmp_path: Path, deb_bytes: bytes, no_apt_get: Path) -> None:
    # Given no apt-get (or a distribution without the pinned version) and a mirror that has the package
    deb = pin(deb_bytes)
    in_pool = no_apt_get / deb.pool_path
    in_pool.parent.mkdir(parents=True)
    in_pool.write_bytes(deb_bytes)
    # When it is fetched, Then it comes from the pool, checked against its pin
    assert fetch_deb(deb, tmp_path / "cache").read_bytes() == deb_bytes
    # and a mirror serving other bytes is refused
    in_pool.write_bytes(deb_bytes + b"tampered")
    (tmp_path / "cache" / deb.filename).unlink()
    with pytest.raises(ArtifactError, match="expected"):
        fetch_deb(deb, tmp_path / "cache")


# --- game catalog domains ---------------------------------------------------------------------------------------


@pytest.fixture
def tiny_domains(monkeypatch: pytest.MonkeyPatch, workspace: Workspace, deb_bytes: bytes, no_apt_get) -> PinnedDeb:
    """Two catalog domains of the tiny .deb (es_ES, and es_AR for training only), the .deb already in the cache."""
    deb = pin(deb_bytes)
    workspace.artifact_cache.mkdir(parents=True)
    (workspace.artifact_cache / deb.filename).write_bytes(deb_bytes)
    monkeypatch.setitem(
        game_catalogs.DOMAINS,
        "tinygame",
        CatalogDomain("tinygame", (deb,), "usr/share/locale/es_ES/LC_MESSAGES/*.mo", "Tiny game, Spain"),
    )
    monkeypatch.setitem(
        game_catalogs.DOMAINS,
        "tinygame_ar",
        CatalogDomain(
            "tinygame_ar", (deb,), "usr/share/locale/es_AR/LC_MESSAGES/*.mo", "Tiny game, Argentina", train_only=True
        ),
    )
    return deb


def test_read_catalog_domain_gives_prose_pairs_with_provenance(workspace: Workspace, tiny_domains: PinnedDeb) -> None:
    raw = read_catalog_domain(workspace, "tinygame", progress=False)

    assert sorted((p.source, p.target) for p in raw.pairs) == sorted(PROSE_PAIRS)
    assert {p.domain for p in raw.pairs} == {"tinygame"}
    assert raw.dropped == Counter({"placeholder": 4, "template_tag": 1})
    assert raw.provenance["packages"] == [
        {"package": "game-data=1:1.0-1", "sha256": tiny_domains.sha256, "licence": "CC-BY-SA-3.0"}
    ]
    assert raw.provenance["catalogs"] == 1
    assert len(raw.provenance["catalogs_sha256"]) == 64

    # the es_AR domain reads only the es_AR catalog of the same package
    ar = read_catalog_domain(workspace, "tinygame_ar", progress=False)
    assert sorted(p.source for p in ar.pairs) == [
        "El zombi se murió.",
        "Se está haciendo de noche.",
        "¿Dónde están mis botas?",
    ]


def test_read_catalog_domain_reuses_the_extracted_catalogs(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, tiny_domains: PinnedDeb
) -> None:
    # given: a first read extracted the catalogs
    first = read_catalog_domain(workspace, "tinygame", progress=False)
    # when: the .deb is gone and fetching is impossible
    (workspace.artifact_cache / tiny_domains.filename).unlink()

    def no_fetch(*args, **kwargs):
        raise AssertionError("the catalogs were extracted already")

    monkeypatch.setattr(debian, "fetch_deb", no_fetch)
    second = read_catalog_domain(workspace, "tinygame", progress=False)
    # then: the same pairs, from the extracted catalogs
    assert second.pairs == first.pairs
    assert second.provenance == first.provenance


def test_a_train_only_catalog_domain_never_reaches_validation_or_test(
    workspace: Workspace, tiny_domains: PinnedDeb
) -> None:
    cfg = TranslationDataConfig(
        source="mix", domains=("tinygame", "tinygame_ar"), validation_size=1, test_size=2, seed=3
    )
    prepared = tc.prepare_translation(cfg, workspace, progress=False)

    held_out = prepared.pairs("validation") + prepared.pairs("test")
    assert held_out and {p.domain for p in held_out} == {"tinygame"}
    assert "tinygame_ar" in prepared.card["splits_by_domain"]["train"]
    # an es_AR twin whose es_ES pair is held out is dropped, not trained on
    train_sources = {p.source for p in prepared.pairs("train")}
    twins = {"El zombi está muerto.": "El zombi se murió.", "Está oscureciendo.": "Se está haciendo de noche."}
    for es, ar in twins.items():
        assert (es in train_sources) == (ar in train_sources)
    dropped_twins = sum(1 for es in twins if es in {p.source for p in held_out})
    assert dropped_twins > 0  # seed 3 holds out a pair that has a twin: the count below is not vacuous
    assert prepared.card["counts"]["dropped"].get("train_only_domain_in_heldout_group", 0) == dropped_twins


# --- grouping and the domain-stratified split -------------------------------------------------------------------

# Parallel passages (as Kings / Chronicles have): 15 words, one of them different; different English
KINGS = TranslationPair(
    "kings",
    "Y fueron todos los días que reinó David sobre Israel cuarenta años, siete en Hebrón.",
    "The days that David reigned over Israel were forty years; seven years he reigned in Hebron.",
    domain="bible",
)
CHRONICLES = TranslationPair(
    "chronicles",
    "Y fueron todos los días que reinó David sobre Israel cuarenta años, siete en Sión.",
    "The time that he reigned over Israel was forty years, seven of them in Zion.",
    domain="bible",
)
# One English string, two Spanish translations (Spain and Argentina)
CLOSE_ES = TranslationPair("es", "Cierra la puerta.", "Close the door.", domain="cataclysm")
CLOSE_AR = TranslationPair("ar", "Cerrá la puerta, che.", "Close the door!", domain="cataclysm_ar")


def unrelated_pairs(domain: str, n: int) -> list[TranslationPair]:
    """`n` pairs that share nothing: made-up words, so no two of them are near-duplicates."""
    rng = random.Random(domain)
    pairs = []
    for i in range(n):
        words = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(5)]
        pairs.append(TranslationPair(f"{domain}:{i}", " ".join(words), f"{domain} sentence {i}", domain=domain))
    return pairs


def corpus() -> list[TranslationPair]:
    return [
        KINGS,
        *unrelated_pairs("bible", 30),
        CHRONICLES,
        CLOSE_ES,
        *unrelated_pairs("cataclysm", 30),
        CLOSE_AR,
        *unrelated_pairs("cataclysm_ar", 10),
    ]


def split_of(splits: dict[str, list[TranslationPair]]) -> dict[str, str]:
    return {p.id: name for name, split in splits.items() for p in split}


def test_parallel_passages_and_second_translations_are_grouped() -> None:
    pairs = corpus()
    groups, joins = group_pairs(pairs, threshold=0.7)

    index = {p.id: i for i, p in enumerate(pairs)}
    assert groups[index["kings"]] == groups[index["chronicles"]]  # near-identical Spanish
    assert groups[index["es"]] == groups[index["ar"]]  # same English, case and punctuation aside
    assert joins == Counter({"near_duplicate_source": 1, "same_target": 1})
    assert len(set(groups)) == len(pairs) - 2  # everything else stays alone


def test_without_near_duplicate_matching_only_identical_targets_join() -> None:
    _, joins = group_pairs(corpus(), threshold=1.0)
    assert joins == Counter({"same_target": 1})


# More parallel passages: (verse, word, the word its parallel has instead); 13 to 19 words each
VERSE_VARIANTS = [
    ("Y reinó Salomón sobre todo Israel, y edificó casa a Jehová en Jerusalén, y fue muy grande su sabiduría.",
     "edificó", "levantó"),
    ("Y durmió David con sus padres, y fue sepultado en la ciudad de David su padre.", "durmió", "descansó"),
    ("Entonces subió el rey a la casa de Jehová con todos los varones de Judá.", "varones", "hombres"),
    ("Y Josías quitó todas las abominaciones de todas las tierras de los hijos de Israel.", "quitó", "apartó"),
    ("Y habló Jehová a Manasés y a su pueblo, mas ellos no escucharon su voz.", "voz", "palabra"),
    ("Y mandó el rey a todo el pueblo que celebrasen la pascua a Jehová su Dios.", "mandó", "ordenó"),
    ("Y edificó altares a todo el ejército de los cielos en los dos atrios de la casa de Jehová.",
     "ejército", "ejércitos"),
    ("Y vino la palabra de Jehová a Natán aquella misma noche, diciendo así.", "noche", "tarde"),
    ("Y el rey Salomón hizo un gran trono de marfil, y cubriólo de oro purísimo.", "purísimo", "finísimo"),
]  # fmt: skip


def verse_variant_pairs() -> list[TranslationPair]:
    pairs = []
    for n, (verse, word, other) in enumerate(VERSE_VARIANTS):
        pairs.append(TranslationPair(f"{n}:kings", verse, f"Kings verse {n}", domain="bible"))
        pairs.append(TranslationPair(f"{n}:chronicles", verse.replace(word, other), f"Chronicles {n}", domain="bible"))
    return pairs


def test_one_word_variants_are_near_duplicates_by_exact_jaccard() -> None:
    pairs = verse_variant_pairs()
    for kings, chronicles in zip(pairs[::2], pairs[1::2]):
        assert jaccard(shingles(kings.source), shingles(chronicles.source)) >= 0.75


def test_every_one_word_variant_of_a_verse_shares_its_group() -> None:
    pairs = verse_variant_pairs()
    groups, joins = group_pairs(pairs, threshold=0.7)
    missed = [pairs[i].source for i in range(0, len(pairs), 2) if groups[i] != groups[i + 1]]
    assert not missed
    assert joins["near_duplicate_source"] == len(VERSE_VARIANTS)


def test_split_is_stratified_by_domain_and_keeps_groups_whole() -> None:
    pairs = corpus()
    groups, _ = group_pairs(pairs, threshold=0.7)
    train_only = frozenset({"cataclysm_ar"})

    held_out_parallel = 0
    for seed in range(20):
        splits, dropped = split_groups(pairs, groups, validation_size=3, test_size=4, seed=seed, train_only=train_only)
        where = split_of(splits)

        # each domain gets about validation_size / test_size pairs (a group of 2 may overshoot by one)
        for domain in ("bible", "cataclysm"):
            assert 3 <= sum(p.domain == domain for p in splits["validation"]) <= 4
            assert 4 <= sum(p.domain == domain for p in splits["test"]) <= 5
        # whole groups only: the parallel passages always share a split
        assert where["kings"] == where["chronicles"]
        held_out_parallel += where["kings"] != "train"
        # a train-only domain is never scored; its pair in a held-out group is dropped and counted
        assert all(p.domain != "cataclysm_ar" for p in splits["validation"] + splits["test"])
        assert dropped["train_only_domain_in_heldout_group"] == (where["es"] != "train")
        assert ("ar" in where) == (where["es"] == "train")
        assert len(where) + sum(dropped.values()) == len(pairs)
    assert held_out_parallel > 0  # the check above was not vacuous


def test_a_group_led_by_a_train_only_pair_always_trains() -> None:
    # given: the es_AR translation comes first, so the group is the train-only domain's
    pairs = [CLOSE_AR, CLOSE_ES, *unrelated_pairs("cataclysm", 3)]
    groups, _ = group_pairs(pairs, threshold=0.7)
    for seed in range(10):
        splits, dropped = split_groups(pairs, groups, 1, 1, seed, train_only=frozenset({"cataclysm_ar"}))
        assert split_of(splits)["es"] == split_of(splits)["ar"] == "train"
        assert not dropped


def test_split_is_deterministic_per_seed() -> None:
    pairs = corpus()
    groups, _ = group_pairs(pairs, threshold=0.7)

    def split(seed: int) -> dict[str, str]:
        return split_of(split_groups(pairs, groups, 3, 4, seed, train_only=frozenset({"cataclysm_ar"}))[0])

    assert split(7) == split(7)
    assert split(7) != split(8)


# --- README demo sentences --------------------------------------------------------------------------------------

TATOEBA_LINES = [
    "El tren llega a las ocho.\tThe train arrives at eight.",
    "Me gusta leer por la noche.\tI like reading at night.",
    "¿Dónde está la estación?\tWhere is the station?",
    "Hace mucho frío hoy.\tIt is very cold today.",
    "Mi hermana trabaja en un hospital.\tMy sister works in a hospital.",
    "No tengo tiempo para eso.\tI don't have time for that.",
    "¿Cómo estás?\tHow are you?",
    "Compramos pan en la panadería.\tWe bought bread at the bakery.",
    "El perro duerme bajo la mesa.\tThe dog sleeps under the table.",
    "¡No encuentro mis llaves!\tI can't find my keys!",
    "Ella canta muy bien.\tShe sings very well.",
    "Vamos al cine el sábado.\tWe're going to the movies on Saturday.",
    "Este libro es muy largo.\tThis book is very long.",
    "Necesito un café.\tI need a coffee.",
    "Los niños juegan en el parque.\tThe children play in the park.",
    "y lloró Jesús\tJesus wept.",
]


def test_demo_sentences_are_held_out_of_every_split(tmp_path: Path, workspace: Workspace) -> None:
    # given: a pairs file holding three README demo sentences, written differently (case, punctuation)
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(TATOEBA_LINES) + "\n", encoding="utf-8")
    cfg = TranslationDataConfig(source="tatoeba", path=str(path), validation_size=2, test_size=3)

    prepared = tc.prepare_translation(cfg, workspace, progress=False)

    card = prepared.card
    assert card["counts"]["dropped"]["demo_sentence"] == 3
    every_source = {p.source for split in SPLITS for p in prepared.pairs(split)}
    assert len(every_source) == len(TATOEBA_LINES) - 3
    assert not {"¿Cómo estás?", "¡No encuentro mis llaves!", "y lloró Jesús"} & every_source
    assert card["grouping"]["threshold"] == cfg.near_duplicate_threshold
    assert card["grouping"]["groups"] == len(TATOEBA_LINES) - 3
    assert card["splits_by_domain"] == {"train": {"tatoeba": 8}, "validation": {"tatoeba": 2}, "test": {"tatoeba": 3}}


def readme_translate_texts(readme: str) -> list[str]:
    """The Spanish texts the README's `curl ... /translate ... -d '{json}'` examples send (`/translate/explain`'s
    one `text` included)."""
    texts: list[str] = []
    commands = readme.replace("\\\n", " ")  # join continued shell lines
    for line in commands.splitlines():
        if "curl" not in line or not re.search(r"/translate\b", line):
            continue
        body = re.search(r"-d\s+'([^']*)'", line)
        assert body, f"a /translate curl example without a -d '{{json}}' body: {line.strip()}"
        sent = json.loads(body.group(1))
        texts.extend(sent["texts"] if "texts" in sent else [sent["text"]])  # /translate, or /translate/explain
    return texts


def test_readme_translate_examples_are_demo_sentences() -> None:
    texts = readme_translate_texts(README.read_text(encoding="utf-8"))

    assert texts, "README.md has no `curl .../translate -d '{\"texts\": [...]}'` example"
    missing = [t for t in texts if t not in tc.DEMO_SENTENCES]
    assert not missing, (
        f"README /translate examples not in training/data/translation/corpus.py's DEMO_SENTENCES: {missing}"
    )


def test_readme_parser_reads_continued_curl_lines() -> None:
    readme = (
        '```bash\ncurl -s localhost:3000/sentiment -d \'{"texts": ["great"]}\'\n'
        "curl -s localhost:3000/translate -H 'content-type: application/json' \\\n"
        '     -d \'{"texts": ["¿Cómo estás?", "No encuentro mis llaves."], "beam_size": 4}\'\n```\n'
    )
    assert readme_translate_texts(readme) == ["¿Cómo estás?", "No encuentro mis llaves."]


def test_the_dialogue_domain_reads_the_spanish_catalogs_of_its_three_games_and_trains_only() -> None:
    # the paths its packages hold (dpkg -c), and ones that must stay out
    domain = game_catalogs.DOMAINS["dialogue"]
    wanted = (
        "usr/share/locale/es/LC_MESSAGES/freedroidrpg-dialogs.mo",
        "usr/share/games/dink/dink/l10n/es/LC_MESSAGES/dink.mo",
        "usr/share/games/adonthell/games/wastesedge/locale/es/LC_MESSAGES/wastesedge.mo",
    )
    unwanted = (
        "usr/share/locale/es_AR/LC_MESSAGES/freedroidrpg.mo",
        "usr/share/locale/fr/LC_MESSAGES/freedroidrpg-dialogs.mo",
        "usr/share/games/dink/dink/l10n/es.po",
    )
    assert_extracts_only(domain, wanted, unwanted)
    assert [d.name for d in domain.packages] == ["freedroidrpg-data", "freedink-data", "adonthell-data"]
    assert domain.train_only and tc.is_train_only("dialogue")


def assert_extracts_only(domain: CatalogDomain, wanted: tuple[str, ...], unwanted: tuple[str, ...]) -> None:
    """The domain's pattern takes every path of `wanted` and none of `unwanted` (paths as `dpkg -c` lists them)."""
    assert all(fnmatch.fnmatch(p, domain.pattern) for p in wanted)
    assert not any(fnmatch.fnmatch(p, domain.pattern) for p in unwanted)


# --- Fish Fillets' Lua dialogue ------------------------------------------------------------------------------------

FILLETS_SCRIPT = r"""
dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
dialogStr("¿Qué clase de extraño nave es esa?")

dialogId("let-m-oko", nil, "This is not a glass eye. At least in this level.")
dialogStr("Este no es un ojo de vidrio. Al menos en este nivel.")

dialogId("let-v-stop", "font_big", "Don’t say \"never\",\nplease.")
dialogStr("No digas \"nunca\",\npor favor.")

dialogId("let-v-name", "font_big", "Poseidon 737")
dialogStr("Poseidon 737")

dialogId("let-v-two", "font_big", "Hello! Who is there?")
dialogStr("¿Hola, quién está ahí?")
"""


def test_fish_fillets_scripts_give_their_pairs_one_per_sentence(tmp_path: Path) -> None:
    level = tmp_path / "usr/share/games/fillets-ng/script/airplane"
    level.mkdir(parents=True)
    (level / "dialogs_es.lua").write_text(FILLETS_SCRIPT, encoding="utf-8")
    (level / "dialogs_en.lua").write_text('dialogId("let-m-divna", "font_small", "What kind?")\n', encoding="utf-8")

    raw = read_lua_dialogs(tmp_path, domain="fillets")

    assert [(p.id, p.source, p.target) for p in raw.pairs] == [
        ("airplane:let-m-divna", "¿Qué clase de extraño nave es esa?", "What kind of strange ship is that?"),
        ("airplane:let-m-oko.0", "Este no es un ojo de vidrio.", "This is not a glass eye."),
        ("airplane:let-m-oko.1", "Al menos en este nivel.", "At least in this level."),
        # escapes undone, a line break is a space, a curly apostrophe straightened like the other domains' English
        ("airplane:let-v-stop", 'No digas "nunca", por favor.', 'Don\'t say "never", please.'),
        # the sides split into different numbers of sentences: kept whole
        ("airplane:let-v-two", "¿Hola, quién está ahí?", "Hello! Who is there?"),
    ]
    assert {p.domain for p in raw.pairs} == {"fillets"}
    assert raw.dropped == Counter({"untranslated": 1})
    assert raw.provenance["scripts"] == 1  # dialogs_en.lua is not read


def test_no_dialogue_pairs_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "dialogs_es.lua").write_text("-- nothing here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=str(tmp_path)):
        read_lua_dialogs(tmp_path)


def test_the_fillets_domain_reads_every_levels_spanish_script_through_its_deb(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, no_apt_get
) -> None:
    # the paths fillets-ng-data 1.0.1-1.1 holds (dpkg -c), and ones that must stay out
    domain = game_catalogs.DOMAINS["fillets"]
    wanted = (
        "usr/share/games/fillets-ng/script/airplane/dialogs_es.lua",
        "usr/share/games/fillets-ng/script/atlantis/demo_dialogs_es.lua",
    )
    unwanted = (
        "usr/share/games/fillets-ng/script/airplane/dialogs_en.lua",
        "usr/share/games/fillets-ng/script/airplane/dialogs.lua",
        "usr/share/games/fillets-ng/script/airplane/init.lua",
    )
    assert_extracts_only(domain, wanted, unwanted)
    assert domain.train_only and tc.is_train_only("fillets")

    # Given a .deb laid out like the real one, in the cache under the domain's pin
    data = tar_xz(
        {
            f"./{wanted[0]}": FILLETS_SCRIPT.encode(),
            f"./{unwanted[0]}": b'dialogId("let-m-divna", "font_small", "What kind?")\n',
        }
    )
    deb_bytes = deb_holding(data)
    deb = PinnedDeb("fillets-ng-data", "1.0.1-1.1", hashlib.sha256(deb_bytes).hexdigest(), "GPL-2+", "fillets-ng-data")
    workspace.artifact_cache.mkdir(parents=True)
    (workspace.artifact_cache / deb.filename).write_bytes(deb_bytes)
    monkeypatch.setitem(game_catalogs.DOMAINS, "fillets", dataclasses.replace(domain, packages=(deb,)))

    # When the domain is read, Then its pairs come from the Spanish script only, with the pin in the provenance
    raw = read_catalog_domain(workspace, "fillets", progress=False)
    assert len(raw.pairs) == 5 and {p.domain for p in raw.pairs} == {"fillets"}
    assert raw.provenance["catalogs"] == 1
    assert raw.provenance["packages"] == [{"package": deb.requirement, "sha256": deb.sha256, "licence": "GPL-2+"}]


def test_a_line_holding_a_held_out_sentence_among_its_sentences_is_dropped_too() -> None:
    def pair(source: str) -> TranslationPair:
        return TranslationPair(id=source, source=source, target="x", domain="dialogue")

    kept, dropped = tc.drop_held_out_sentences(
        [
            pair("Tengo que... permanecer en el suelo... Me duele la cabeza..."),  # a demo sentence, third of three
            pair("Hola. ¿Cómo estás?"),  # a demo sentence, second of two
            pair("¿Cómo estás hoy, Ethel?"),  # another sentence that starts the same: kept
            pair("¡MI CABEZA ME DUELE!"),  # the same meaning in other words: kept
            pair(probe_sources()[0] + " Y nada más."),  # a probe sentence, then another
        ]
    )
    assert [p.source for p in kept] == ["¿Cómo estás hoy, Ethel?", "¡MI CABEZA ME DUELE!"]
    assert dropped == {"demo_sentence": 2, "probe_sentence": 1}
