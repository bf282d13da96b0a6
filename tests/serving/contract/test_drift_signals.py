"""The drift signals of a text and the distance between two of their distributions (contract/drift_signals.py)."""

from __future__ import annotations

import math

import pytest

from serving.contract.drift_signals import (
    NOVELTY_BOUNDS,
    bin_index,
    bin_names,
    js_distance,
    language,
    novel_words,
    novelty,
    words,
)


def test_words_are_lower_cased_letter_runs_without_numbers() -> None:
    assert words("Great flight, 5pm! Muy BIEN_hecho") == ["great", "flight", "pm", "muy", "bien", "hecho"]


def test_novelty_is_the_share_of_words_the_vocabulary_lacks() -> None:
    vocabulary = frozenset({"great", "flight"})
    assert novelty("Great flight", vocabulary) == 0.0
    assert novelty("great vuelo hoy", vocabulary) == pytest.approx(2 / 3)
    assert novelty("1234 !!", vocabulary) == 0.0  # no words: nothing new
    assert novel_words("great vuelo hoy", vocabulary) == ["vuelo", "hoy"]


def test_language_tells_spanish_from_english_by_function_words() -> None:
    assert language("El vuelo de hoy fue muy malo y la comida también") == "es"
    assert language("The flight was late and the food was bad") == "en"
    assert language("Zzz qqq") == "unknown"


def test_bins_follow_prometheus_le_rule() -> None:
    assert bin_index(0.0, NOVELTY_BOUNDS) == 0
    assert bin_index(0.05, NOVELTY_BOUNDS) == 1  # on the bound: that bucket
    assert bin_index(0.06, NOVELTY_BOUNDS) == 2
    assert bin_index(7.0, NOVELTY_BOUNDS) == len(NOVELTY_BOUNDS)  # +Inf
    assert bin_names((1, 2.5)) == ["le 1", "le 2.5", "+Inf"]


def test_js_distance_is_zero_for_the_same_mix_one_for_disjoint_and_symmetric() -> None:
    assert js_distance([10, 30, 0], [1, 3, 0]) == pytest.approx(0.0, abs=1e-9)
    assert js_distance([5, 0], [0, 7]) == pytest.approx(1.0)
    d = js_distance([8, 2, 0], [2, 6, 2])
    assert 0.0 < d < 1.0 and d == pytest.approx(js_distance([2, 6, 2], [8, 2, 0]))
    # the textbook value: JS divergence of (1,0) and (1/2,1/2) is 1 - (3/4) log2(3) / ... computed directly here
    p, q, m = (1.0, 0.0), (0.5, 0.5), (0.75, 0.25)
    kl = lambda a, b: sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)  # noqa: E731
    assert js_distance([1, 0], [1, 1]) == pytest.approx(math.sqrt((kl(p, m) + kl(q, m)) / 2))


def test_js_distance_refuses_empty_or_mismatched_distributions() -> None:
    with pytest.raises(ValueError, match="no observations"):
        js_distance([0, 0], [1, 1])
    with pytest.raises(ValueError, match="bins differ"):
        js_distance([1], [1, 1])
