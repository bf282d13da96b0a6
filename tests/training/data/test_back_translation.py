"""Back-translation: real English, synthetic Spanish from the real Apertium (Debian `apertium-eng-spa`, which
`make test` installs when it is missing), cached, tagged as synthetic, never scored, skipped cleanly without
Apertium."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.config import TranslationConfig, TranslationDataConfig, Workspace
from training.data.translation import back_translation as bt
from training.data.translation import corpus as tc
from training.data.translation.apertium import installed_apertium
from training.data.translation.everyday_probe import probe_rows

ENGLISH = ["I am hungry today.", "It seems that everybody likes golf.", "Where is the train station?"]

needs_apertium = pytest.mark.skipif(
    installed_apertium() is None, reason="Apertium is not installed: `make test` installs it (apertium-eng-spa)"
)


def test_tweets_become_plain_sentences_or_nothing() -> None:
    assert bt.clean_tweet("RT @united: Thanks for the great flight to #Denver http://t.co/x") == (
        "Thanks for the great flight to Denver"
    )
    assert bt.clean_tweet("@VirginAmerica so good") is None  # 2 words
    assert bt.clean_tweet("I love this airline so much 😍😍") is None  # emoji: not a sentence Apertium knows
    assert bt.clean_tweet("We are waiting at the gate for a new crew and nobody…") is None  # truncated


def test_the_tweets_clean_tweet_leaves_out_give_their_plain_sentences() -> None:
    # a tweet clean_tweet takes whole is `tweets`' already: nothing here
    assert bt.left_out_tweet_sentences("Thanks for the great flight to Denver") == []
    # emoji go, the sentence stays
    assert bt.left_out_tweet_sentences("I love this airline so much 😍😍") == ["I love this airline so much"]
    # a long tweet is cut at sentence ends; a sentence under 4 words goes
    long_tweet = (
        "@united Stuck on the tarmac in CLT for two hours now. The gate is not open! Nobody tells us anything and "
        "the crew is gone. Great job http://t.co/x"
    )
    assert bt.left_out_tweet_sentences(long_tweet) == [
        "Stuck on the tarmac in CLT for two hours now",
        "The gate is not open!",
        "Nobody tells us anything and the crew is gone",
    ]
    # a cut-off end goes, the whole sentences before it stay
    cut = "We are waiting at the gate for a new crew. Nobody knows when they will come and nobody…"
    assert bt.left_out_tweet_sentences(cut) == ["We are waiting at the gate for a new crew"]
    assert bt.english_source("tweet_sentences_bt") == "tweet_sentences"


@needs_apertium
def test_real_apertium_back_translates_one_line_per_sentence() -> None:
    binary, _ = installed_apertium()
    spanish = bt.apertium_translate(ENGLISH, binary, pair="eng-spa")
    assert len(spanish) == len(ENGLISH)
    assert "hambre" in spanish[0] and "golf" in spanish[1]
    assert all(s and s != e for s, e in zip(spanish, ENGLISH, strict=True))


@needs_apertium
def test_back_translated_domain_is_cached_and_synthetic(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a tiny English source in place of the tweets
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: list(ENGLISH))
    # When the domain is read twice
    first = bt.read_back_translated("tweets_bt", ws)
    monkeypatch.setattr(bt, "apertium_translate", lambda *a, **k: pytest.fail("the cache was not used"))
    again = bt.read_back_translated("tweets_bt", ws)
    # Then the pairs are real English with Apertium's Spanish, tagged, and the second read came from the cache
    assert [p.target for p in first.pairs] == ENGLISH
    assert {p.domain for p in first.pairs} == {"tweets_bt"}
    assert first.pairs == again.pairs
    assert first.provenance["synthetic"] is True and "apertium" in first.provenance["translator"]


@needs_apertium
def test_synthetic_pairs_only_train(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # distinct sentences, so that each is a group of its own and could be drawn for a held-out split
    subjects = ["My sister", "The pilot", "Our neighbour", "A friend", "The teacher", "His father"]
    things = ["coffee", "long trains", "the sea", "old films", "rainy days"]
    english = [f"{s} really loves {t}." for s in subjects for t in things]
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: english)
    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("".join(f"Frase {w} para probar.\tSentence {w} to test.\n" for w in "abcdefghij"))
    cfg = TranslationDataConfig(
        source="mix", domains=("tatoeba", "tweets_bt"), path=str(pairs_file), validation_size=2, test_size=2
    )
    prepared = tc.prepare_translation(cfg, ws, progress=False)
    assert prepared.card["splits_by_domain"]["train"]["tweets_bt"] > 0
    for split in ("validation", "test"):
        assert "tweets_bt" not in prepared.card["splits_by_domain"][split]
    assert prepared.card["input"]["tweets_bt"]["synthetic"] is True


def test_without_apertium_the_domain_is_skipped_with_its_reason(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bt, "installed_apertium", lambda: None)
    corpus = bt.read_back_translated("tweets_bt", ws)
    assert corpus.pairs == [] and corpus.dropped == {"apertium_not_installed": 1}
    # in the data fingerprint: installing it re-prepares
    assert bt.input_identity("tweets_bt")["translator"] == "unavailable"
    with pytest.raises(ValueError, match="unknown back-translation domain"):
        bt.read_back_translated("novels_bt", ws)


def test_unknown_word_marks_are_found_at_word_starts_only() -> None:
    assert bt.fully_translated("Tengo hambre hoy.")
    assert not bt.fully_translated("*Fluoridize los dientes de niños.")
    assert not bt.fully_translated("Pintura azul *dashed con blanco.")
    assert not bt.fully_translated("Dónde es la #canal de tren?")  # a word Apertium could not inflect
    assert bt.fully_translated("Un 5*3 no es una palabra.")


@needs_apertium
def test_known_words_only_keeps_the_sentences_apertium_translated_whole(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = ["I am hungry today.", "My sister works in a hospital.", "The church was empty."]
    english = [whole[0], "Fluoridize the teeth of children.", *whole[1:]]  # Apertium has no "fluoridize"
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: english)
    every = bt.read_back_translated("wordnet_bt", ws)
    known = bt.read_back_translated("wordnet_bt", ws, known_words_only=True)
    assert [p.target for p in every.pairs] == english
    assert "Fluoridize" in every.pairs[1].source  # -u: the unknown word stays, unmarked
    assert [p.target for p in known.pairs] == whole
    assert known.dropped == {"apertium_unknown_word": 1}
    # ids stay those of the whole source
    assert [p.id for p in known.pairs] == ["wordnet_bt:0", "wordnet_bt:2", "wordnet_bt:3"]


@needs_apertium
def test_round_trip_filter_drops_the_spanish_apertium_garbled(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given English Apertium puts into Spanish and back word for word, and two lines it garbles
    # ("Hará vale en su propio." comes back as "It will do voucher in his own.": chrF 24)
    english = ["I am hungry today.", "She'll do okay on her own.", "The church was empty.", "Should I call about it?"]
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: english)
    # When the domain is read with a round-trip chrF of at least 50, twice
    kept = bt.read_back_translated("wordnet_bt", ws, min_round_trip_chrf=50)
    monkeypatch.setattr(bt, "apertium_translate", lambda *a, **k: pytest.fail("the round trip's cache was not used"))
    again = bt.read_back_translated("wordnet_bt", ws, min_round_trip_chrf=50)
    # Then the garbled pairs are left out and counted, ids stay the source's, and the second read came from the cache
    assert [p.target for p in kept.pairs] == ["I am hungry today.", "The church was empty."]
    assert [p.id for p in kept.pairs] == ["wordnet_bt:0", "wordnet_bt:2"]
    assert kept.dropped == {"apertium_round_trip_below_chrf": 2}
    assert kept.provenance["min_round_trip_chrf"] == 50
    assert again.pairs == kept.pairs
    # and the filter is off at 0: every pair
    monkeypatch.undo()
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: english)
    assert len(bt.read_back_translated("wordnet_bt", ws).pairs) == 4


@needs_apertium
def test_round_trip_filter_is_set_from_the_data_config(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the setting users pass (`--set data.bt_min_round_trip_chrf=50`) reaches the domain and the data card
    english = ["I am hungry today.", "She'll do okay on her own.", "The church was empty.", "Should I call about it?"]
    monkeypatch.setattr(bt, "english_sentences", lambda name, ws: english)
    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("".join(f"Frase {w} para probar.\tSentence {w} to test.\n" for w in "abcdefghij"))
    cfg = TranslationDataConfig(
        source="mix",
        domains=("tatoeba", "wordnet_bt"),
        path=str(pairs_file),
        validation_size=2,
        test_size=2,
        bt_min_round_trip_chrf=50,
    )
    card = tc.prepare_translation(cfg, ws, progress=False).card
    assert card["input"]["wordnet_bt"]["dropped_while_reading"] == {"apertium_round_trip_below_chrf": 2}
    assert card["splits_by_domain"]["train"]["wordnet_bt"] == 2


def test_round_trip_chrf_is_checked_as_a_chrf() -> None:
    assert bt.round_trip_chrf(["The church was empty."], ["The church was empty."]) == [100.0]
    with pytest.raises(ValueError, match=r"data.bt_min_round_trip_chrf is a chrF \(0-100\), got 150"):
        TranslationConfig(data=TranslationDataConfig(bt_min_round_trip_chrf=150))


def test_known_words_only_must_name_a_back_translated_domain_of_the_run(ws: Workspace) -> None:
    cfg = TranslationDataConfig(source="mix", domains=("bible", "wordnet_bt"), bt_known_words_only=("wordnet",))
    with pytest.raises(ValueError, match=r"data.bt_known_words_only names \['wordnet'\]"):
        tc.prepare_translation(cfg, ws, progress=False)


@pytest.mark.parametrize(
    ("name", "requirement", "sentence"),
    [
        ("wordnet", "wordnet-base=1:3.0-37", "They lay on the beach all day."),
        ("endless_sky", "endless-sky-data=0.9.8-1.2", "Sure, I'd be glad to help."),
    ],
)
def test_each_english_source_is_named_by_its_pin_and_leaves_out_probe_answers(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, name: str, requirement: str, sentence: str
) -> None:
    probe_answer = probe_rows()[0]["en"][0]
    source = dataclasses.replace(bt.ENGLISH_SOURCES[name], sentences=lambda ws: [sentence, probe_answer])
    monkeypatch.setitem(bt.ENGLISH_SOURCES, name, source)
    assert bt.english_sentences(name, ws) == [sentence]
    assert bt.input_identity(f"{name}_bt")["english"] == f"{requirement}@{source.pin.sha256}"


def test_an_unknown_back_translation_domain_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown back-translation domain 'novels_bt'"):
        bt.input_identity("novels_bt")
