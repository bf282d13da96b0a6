"""Negation augmentation: a training tweet's rated adjective becomes its antonym under a negator, the label kept, as
many rewrites of each polarity (training/data/sentiment/negation_augment.py)."""

from __future__ import annotations

import random

from training.data.sentiment.negation_augment import (
    any_opposite_word,
    negated_antonym,
    negation_examples,
    polar_antonyms,
)

VALENCE = {"best": 3.2, "worst": -3.1, "good": 1.9, "bad": -2.5, "loved": 2.9, "unloved": -1.9, "right": 1.4}
VALENCE |= {"wrong": -2.1, "happy": 2.7, "unhappy": -1.8, "active": 0.4, "inactive": -0.5}
ANTONYMS = {
    "best": {"worst"},
    "worst": {"best"},
    "good": {"bad", "evil"},  # "evil" is not rated here: left out
    "bad": {"good"},
    "loved": {"unloved"},  # a participle: mostly the verb in tweets
    "right": {"wrong"},  # mostly "right now"
    "happy": {"unhappy"},
    "unhappy": {"happy"},
    "active": {"inactive"},  # rated under 1: too weak to say a polarity
}
NEGATORS = frozenset({"not", "never", "without"})


def test_pairs_are_rated_words_of_opposite_signs_that_tweets_use_as_adjectives() -> None:
    assert polar_antonyms(ANTONYMS, VALENCE) == {
        "best": ("worst",),
        "worst": ("best",),
        "good": ("bad",),
        "bad": ("good",),
        "happy": ("unhappy",),
        "unhappy": ("happy",),
    }


def test_the_negator_goes_before_determiners_and_after_a_copula_takes_one_of_three_forms() -> None:
    pairs = polar_antonyms(ANTONYMS, VALENCE)
    seen = {negated_antonym("@united you guys are the best!", pairs, NEGATORS, random.Random(s)) for s in range(30)}
    assert seen == {
        "@united you guys are not the worst!",
        "@united you guys aren't the worst!",
        "@united you guys are never the worst!",
    }
    # elsewhere "not" alone
    assert negated_antonym("A good flight", pairs, NEGATORS, random.Random(0)) == "not A bad flight"


def test_a_word_already_negated_or_inside_another_token_is_not_rewritten() -> None:
    pairs = polar_antonyms(ANTONYMS, VALENCE)
    rng = random.Random(0)
    assert negated_antonym("not a good day", pairs, NEGATORS, rng) is None  # a negator within three words
    assert negated_antonym("didn't feel happy", pairs, NEGATORS, rng) is None  # any n't
    assert negated_antonym("#best @good 10best", pairs, NEGATORS, rng) is None  # hashtag, mention, alphanumeric
    # the first word that is free is the one rewritten
    rewritten = negated_antonym("not good at first, then happy", pairs, NEGATORS, rng)
    assert rewritten == "not good at first, then not unhappy"


def test_labels_are_kept_polarities_balanced_and_words_against_the_label_left_alone() -> None:
    rows = [
        {"text": "the crew was good", "label": "positive"},
        {"text": "you are the best", "label": "positive"},
        {"text": "best day ever", "label": "positive"},
        {"text": "the food was bad", "label": "negative"},
        {"text": "not a good day", "label": "negative"},  # "good" is negated: nothing to rewrite
        {"text": "happy to wait 5 hours, thanks", "label": "negative"},  # a positive word in a negative tweet
        {"text": "the wifi was good", "label": "neutral"},  # neutral rows are never rewritten
    ]
    out = negation_examples(rows, ANTONYMS, VALENCE, NEGATORS, seed=13)
    assert sorted(r["label"] for r in out) == ["negative", "positive"]  # one each: the smaller side's count
    negative = next(r["text"] for r in out if r["label"] == "negative")
    assert negative in {"the food was not good", "the food wasn't good", "the food was never good"}
    positive = next(r["text"] for r in out if r["label"] == "positive")
    assert "worst" in positive or "bad" in positive
    assert out == negation_examples(rows, ANTONYMS, VALENCE, NEGATORS, seed=13)  # seeded


def test_the_positive_rows_alone_can_be_rewritten_against_the_tweets_skew() -> None:
    rows = [
        {"text": "the crew was good", "label": "positive"},
        {"text": "you are the best", "label": "positive"},
        {"text": "the food was bad", "label": "negative"},
    ]
    out = negation_examples(rows, ANTONYMS, VALENCE, NEGATORS, seed=13, polarities=("positive",))
    assert [r["label"] for r in out] == ["positive", "positive"]  # not cut to the negative side's one


def test_with_any_word_the_negated_word_is_any_rated_word_of_the_opposite_sign() -> None:
    pairs = any_opposite_word(polar_antonyms(ANTONYMS, VALENCE), VALENCE | {"boring": -1.3, ":)": 2.0})
    # every word rated at least 1 with the other sign, alphabetic ones only (no emoticons)
    assert set(pairs["best"]) == {"bad", "boring", "unhappy", "unloved", "worst", "wrong"}
    assert set(pairs["bad"]) == {"best", "good", "happy", "loved", "right"}
    rows = [{"text": "the crew was good", "label": "positive"}] * 20
    out = negation_examples(
        rows, ANTONYMS, VALENCE | {"boring": -1.3}, NEGATORS, seed=1, polarities=("positive",), any_word=True
    )
    assert len({r["text"].split()[-1] for r in out}) > 2  # many words, not one antonym
