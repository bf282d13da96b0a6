"""Greedy and beam search (serving/decoding.py) over hand-written step functions with known probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from serving.contract.text import BOS_ID, EOS_ID, PAD_ID
from serving.decoding import ban_repeated_ngrams, beam_search, greedy_search, row_top_k

A, B, C, D = 4, 5, 6, 7
VOCAB = 8


class MarkovStep:
    """log p(next | previous token) from a per-sentence table; the context holds each row's sentence id, so rows
    that got mixed up (beam reordering, dropping finished sentences) would read the wrong table.

    state [1, N, 1] counts the steps a row has taken; attention is one-hot at that count (mod S), so attention
    rows returned by the search can be checked against the position of each output token."""

    def __init__(self, tables: np.ndarray, source_len: int = 5) -> None:
        self.tables = tables  # [sentences, V, V] log-probs
        self.source_len = source_len
        self.calls = 0
        self.rows: list[int] = []

    def __call__(
        self, tokens: np.ndarray, state: np.ndarray, context: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, ...]:
        (sentence,) = context
        self.calls += 1
        self.rows.append(len(tokens))
        steps = state[0, :, 0]
        attention = np.zeros((len(tokens), self.source_len), dtype=np.float32)
        attention[np.arange(len(tokens)), steps.astype(int) % self.source_len] = 1.0
        return self.tables[sentence, tokens].astype(np.float32), state + 1, attention


def start(batch: int) -> tuple[np.ndarray, tuple[np.ndarray]]:
    return np.zeros((1, batch, 1), dtype=np.float32), (np.arange(batch),)


def table(transitions: dict[int, dict[int, float]]) -> np.ndarray:
    """Log-prob table from {previous: {next: p}}; unlisted rows go to EOS, unlisted tokens get ~0 probability."""
    probs = np.full((VOCAB, VOCAB), 1e-9)
    for prev in range(VOCAB):
        row = transitions.get(prev, {EOS_ID: 1.0})
        for nxt, p in row.items():
            probs[prev, nxt] = p
    return np.log(probs / probs.sum(axis=1, keepdims=True))


def random_tables(sentences: int, seed: int, eos_bias: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(sentences, VOCAB, VOCAB)) * 2.0
    logits[..., [PAD_ID, BOS_ID]] = -30.0
    logits[..., EOS_ID] += eos_bias
    return logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))


def test_beam_of_one_equals_greedy_exactly() -> None:
    tables = random_tables(30, seed=0, eos_bias=-0.5)
    greedy = greedy_search(MarkovStep(tables), *start(30), max_len=12, with_attention=True)
    beam = beam_search(MarkovStep(tables), *start(30), max_len=12, beam_size=1, with_attention=True)
    assert np.array_equal(greedy.tokens, beam.tokens)
    assert np.array_equal(greedy.lengths, beam.lengths)
    assert np.array_equal(greedy.scores, beam.scores)
    assert np.array_equal(greedy.attention, beam.attention)
    assert len(set(greedy.lengths.tolist())) > 2  # the example exercises dropping finished rows


def test_greedy_stops_at_eos_and_drops_finished_rows() -> None:
    # Given sentence 0 that says "A EOS" and sentence 1 that says "B C D EOS"
    tables = np.stack([table({BOS_ID: {A: 0.9, B: 0.1}}), table({BOS_ID: {B: 1}, B: {C: 1}, C: {D: 1}})])
    step = MarkovStep(tables)
    out = greedy_search(step, *start(2), max_len=10)
    assert out.sequences() == [[A, EOS_ID], [B, C, D, EOS_ID]]
    assert out.tokens.shape == (2, 4) and out.tokens[0, 2:].tolist() == [PAD_ID, PAD_ID]
    np.testing.assert_allclose(out.scores[0], np.log(0.9), atol=1e-6)
    # Then it took 4 steps, and sentence 0 left the batch after its EOS
    assert step.rows == [2, 2, 1, 1]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_length_cap_ends_outputs_that_never_produce_eos(beam_size: int) -> None:
    loop = table({BOS_ID: {A: 0.5, B: 0.5}, A: {B: 0.5, A: 0.5}, B: {A: 0.5, B: 0.5}})  # EOS has ~0 probability
    step = MarkovStep(np.stack([loop, loop]))
    out = beam_search(step, *start(2), max_len=6, beam_size=beam_size)
    assert out.lengths.tolist() == [6, 6] and EOS_ID not in out.tokens
    assert step.calls == 6
    greedy = greedy_search(MarkovStep(np.stack([loop, loop])), *start(2), max_len=6)
    assert greedy.lengths.tolist() == [6, 6]


def test_beam_search_stops_when_every_beam_has_finished() -> None:
    quick = table({BOS_ID: {A: 0.6, B: 0.4}, A: {EOS_ID: 1}, B: {EOS_ID: 1}})
    step = MarkovStep(quick[None])
    out = beam_search(step, *start(1), max_len=20, beam_size=2)
    assert out.sequences() == [[A, EOS_ID]]
    assert step.calls == 2  # both beams ended at step 2; no step is spent on finished hypotheses


def test_beam_search_finds_a_better_sequence_than_greedy() -> None:
    # Greedy takes A (0.6) and then has only 0.35 at best; B (0.4) leads to EOS with 0.9:
    #   greedy: A C EOS  p = 0.6 * 0.35 * 1.0 = 0.21        beam: B EOS  p = 0.4 * 0.9 = 0.36
    crafted = table({BOS_ID: {A: 0.6, B: 0.4}, A: {C: 0.35, D: 0.35, EOS_ID: 0.3}, B: {EOS_ID: 0.9, C: 0.1}})
    greedy = greedy_search(MarkovStep(crafted[None]), *start(1), max_len=10)
    beam = beam_search(MarkovStep(crafted[None]), *start(1), max_len=10, beam_size=2)
    assert greedy.sequences() == [[A, C, EOS_ID]]
    assert beam.sequences() == [[B, EOS_ID]]
    np.testing.assert_allclose(beam.scores, [np.log(0.36)], atol=1e-5)
    assert beam.scores[0] > greedy.scores[0] and beam.normalized_scores[0] > greedy.normalized_scores[0]


def test_length_normalisation_picks_the_best_score_per_token() -> None:
    # "A EOS": p = 0.5 * 0.6 = 0.3, log p / 2 = -0.60; "B C D EOS": p = 0.5 * 0.9 * 0.9 * 0.6 = 0.243, log p / 4 = -0.35
    crafted = table(
        {
            BOS_ID: {A: 0.5, B: 0.5},
            A: {EOS_ID: 0.6, D: 0.4},
            B: {C: 0.9, EOS_ID: 0.1},
            C: {D: 0.9, EOS_ID: 0.1},
            D: {EOS_ID: 0.6, A: 0.4},
        }
    )
    per_token = beam_search(MarkovStep(crafted[None]), *start(1), max_len=10, beam_size=2, length_penalty=1.0)
    assert per_token.sequences() == [[B, C, D, EOS_ID]]
    raw = beam_search(MarkovStep(crafted[None]), *start(1), max_len=10, beam_size=2, length_penalty=0.0)
    assert raw.sequences() == [[A, EOS_ID]]


@pytest.mark.parametrize("beam_size", [1, 2, 4])
def test_batched_decoding_equals_decoding_each_sentence_alone(beam_size: int) -> None:
    tables = random_tables(12, seed=3)
    batched = beam_search(MarkovStep(tables), *start(12), max_len=9, beam_size=beam_size, with_attention=True)
    for i in range(12):
        alone = beam_search(MarkovStep(tables[i : i + 1]), *start(1), max_len=9, beam_size=beam_size)
        assert batched.sequences()[i] == alone.sequences()[0]
        np.testing.assert_allclose(batched.scores[i], alone.scores[0], atol=1e-6)
    # Attention row t of an output belongs to its t-th token (one-hot at t in MarkovStep)
    for i, n in enumerate(batched.lengths):
        expected = np.eye(5, dtype=np.float32)[np.arange(n) % 5]
        assert np.array_equal(batched.attention[i, :n], expected)


def test_wider_beams_never_score_worse_on_random_tables() -> None:
    tables = random_tables(40, seed=5, eos_bias=0.0)
    greedy = greedy_search(MarkovStep(tables), *start(40), max_len=8)
    beam = beam_search(MarkovStep(tables), *start(40), max_len=8, beam_size=4, length_penalty=0.0)
    assert np.all(beam.scores >= greedy.scores - 1e-5)
    assert np.any(beam.scores > greedy.scores + 1e-3)


def test_row_top_k_matches_a_stable_sort_and_leaves_its_input_alone() -> None:
    log_probs = np.random.default_rng(0).normal(size=(6, 50)).astype(np.float32)
    log_probs[0, [3, 7]] = 5.0  # a tie: the lower index comes first, as with argmax
    before = log_probs.copy()
    values, indices = row_top_k(log_probs, 4)
    assert np.array_equal(indices, np.argsort(-before, axis=1, kind="stable")[:, :4])
    assert np.array_equal(values, np.take_along_axis(before, indices, axis=1))
    assert np.array_equal(log_probs, before)


def test_ban_repeated_ngrams_bans_each_token_that_would_repeat_an_ngram() -> None:
    history = np.array([[A, B, C, A, B], [A, B, C, D, A]])
    banned = ban_repeated_ngrams(np.zeros((2, VOCAB)), history, 3)
    # row 0 ends "A B", which C followed before; row 1 ends "D A", seen nowhere before
    assert np.isneginf(banned[0]).nonzero()[0].tolist() == [C]
    assert not np.isneginf(banned[1]).any()
    banned = ban_repeated_ngrams(np.zeros((2, VOCAB)), history, 2)
    assert np.isneginf(banned[0]).nonzero()[0].tolist() == [C]  # after B: C
    assert np.isneginf(banned[1]).nonzero()[0].tolist() == [B]  # after A: B
    short = np.zeros((2, VOCAB))
    assert ban_repeated_ngrams(short, history[:, :2], 3) is short  # no n-gram yet: nothing to ban, no copy
    read_only = np.zeros((2, VOCAB))
    read_only.flags.writeable = False
    assert np.isneginf(ban_repeated_ngrams(read_only, history, 3)).any() and not np.isneginf(read_only).any()


@pytest.mark.parametrize(
    ("beam_size", "n", "expected"),
    [
        (1, 3, [A, B, A, B, EOS_ID]),  # the 4th token may not repeat "A B A": EOS, the second choice
        (1, 2, [A, B, A, EOS_ID]),  # the 3rd token may not repeat "A B"
        # a beam keeps what is left that is most probable: "A B EOS" 0.18 against "A B A B EOS" 0.13
        (3, 3, [A, B, EOS_ID]),
        (3, 2, [A, B, EOS_ID]),
    ],
)
def test_no_repeat_ngram_breaks_a_loop_the_model_prefers(beam_size: int, n: int, expected: list[int]) -> None:
    # Unbanned, the loop "A B A B ..." to the length cap is the most probable output (0.9^5 * 0.8^4 = 0.24)
    loop = table({BOS_ID: {A: 1.0}, A: {B: 0.9, EOS_ID: 0.1}, B: {A: 0.8, EOS_ID: 0.2}})
    free = beam_search(MarkovStep(loop[None]), *start(1), max_len=10, beam_size=beam_size, length_penalty=0.0)
    assert free.sequences() == [[A, B] * 5]
    out = beam_search(
        MarkovStep(loop[None]), *start(1), max_len=10, beam_size=beam_size, length_penalty=0.0, no_repeat_ngram=n
    )
    assert out.sequences() == [expected]


@pytest.mark.parametrize("n", [2, 3])
def test_no_output_repeats_an_ngram_and_a_beam_of_one_is_still_greedy(n: int) -> None:
    tables = random_tables(30, seed=7, eos_bias=-1.0)
    greedy = greedy_search(MarkovStep(tables), *start(30), max_len=12, no_repeat_ngram=n)
    assert (
        greedy.sequences()
        == beam_search(MarkovStep(tables), *start(30), max_len=12, beam_size=1, no_repeat_ngram=n).sequences()
    )
    free = beam_search(MarkovStep(tables), *start(30), max_len=12, beam_size=4)
    banned = beam_search(MarkovStep(tables), *start(30), max_len=12, beam_size=4, no_repeat_ngram=n)

    def repeats(tokens: list[int]) -> bool:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return len(grams) != len(set(grams))

    assert any(repeats(s) for s in free.sequences())  # the example has loops to break
    for out in (greedy, banned):
        assert not any(repeats(s) for s in out.sequences())
        assert np.isfinite(out.scores).all()
