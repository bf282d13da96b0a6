"""Concatenated training pairs: two short sentences joined alike on both sides, seeded, training only."""

import pytest

from training.data.translation.back_translation import is_back_translated
from training.data.translation.concatenation import DOMAIN, concatenated_pairs, join_sentences
from training.data.translation.pairs import TranslationPair


def _pairs() -> list[TranslationPair]:
    lines = [
        ("Buenos días.", "Good morning."),
        ("¿Qué tal?", "What's up?"),
        ("Tengo hambre.", "I'm hungry."),
        ("¡Corre!", "Run!"),
        ("Hace frío.", "It's cold."),
    ]
    return [TranslationPair(f"p{i}", es, en, ("another",), "cataclysm") for i, (es, en) in enumerate(lines)]


def test_a_comma_join_lowercases_the_second_sentence_after_its_opening_mark() -> None:
    assert join_sentences("Buenos días.", "¿Qué tal?", comma=True) == "Buenos días, ¿qué tal?"
    assert join_sentences("Good morning.", "What's up?", comma=True) == "Good morning, what's up?"
    assert join_sentences("Buenos días.", "¿Qué tal?", comma=False) == "Buenos días. ¿Qué tal?"


def test_english_i_keeps_its_capital_in_a_comma_join() -> None:
    assert join_sentences("Sure.", "I'm hungry.", comma=True, keep_first_word="I") == "Sure, I'm hungry."
    assert join_sentences("Sure.", "I’m hungry.", comma=True, keep_first_word="I") == "Sure, I’m hungry."
    assert join_sentences("Sure.", "It's cold.", comma=True, keep_first_word="I") == "Sure, it's cold."


def test_a_comma_join_refuses_a_first_sentence_without_a_full_stop() -> None:
    with pytest.raises(ValueError, match="full stop"):
        join_sentences("¡Corre!", "Hace frío.", comma=True)


def test_the_pairs_are_two_distinct_sentences_joined_alike_on_both_sides() -> None:
    pairs = _pairs()
    made = concatenated_pairs(pairs, 200, seed=13)
    assert len(made) == 200
    by_id = {p.id: p for p in pairs}
    commas = 0
    for pair in made:
        first, second = (by_id[i] for i in pair.id.split(":", 2)[2].split("+"))
        assert first.id != second.id
        assert pair.domain == DOMAIN and pair.references == ()  # people's halves only
        assert pair.source.startswith(first.source[:-1]) and pair.target.startswith(first.target[:-1])
        joined_by_comma = pair.source.startswith(first.source[:-1] + ",")
        assert joined_by_comma == pair.target.startswith(first.target[:-1] + ","), pair
        commas += joined_by_comma
    # half the joins may take a comma, and only those whose first sentence ends in a full stop (3 of 5 here)
    assert 30 < commas < 90


def test_the_same_seed_gives_the_same_pairs_and_another_seed_others() -> None:
    pairs = _pairs()
    assert concatenated_pairs(pairs, 20, seed=13) == concatenated_pairs(pairs, 20, seed=13)
    assert concatenated_pairs(pairs, 20, seed=13) != concatenated_pairs(pairs, 20, seed=14)
    assert concatenated_pairs(pairs, 0, seed=13) == []


def test_fewer_than_two_sentences_cannot_be_concatenated() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        concatenated_pairs(_pairs()[:1], 5, seed=13)


def test_a_pair_with_a_back_translated_half_is_back_translated() -> None:
    """Apertium's Spanish in either half: the tag marks the pair and a finish on people's pairs leaves it out."""
    pairs = [
        TranslationPair("people", "Hola.", "Hello.", (), "cataclysm"),
        TranslationPair("apertium", "Adiós.", "Bye.", (), "tweets_bt"),
        TranslationPair("people2", "Gracias.", "Thanks.", (), "dialogue"),
    ]
    for pair in concatenated_pairs(pairs, 60, seed=13):
        halves = pair.id.split(":", 2)[2].split("+")
        assert is_back_translated(pair.domain) == ("apertium" in halves), pair
        assert pair.domain.startswith(DOMAIN)
