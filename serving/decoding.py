"""Greedy and beam search over an abstract decoder step, batched in numpy (no torch, no onnxruntime here).

A step function advances every row of a batch by one token:

    step(tokens [N] int64, state, context) -> (log_probs [N, V], next_state, attention [N, S] or None)

`state` is one array whose axis `state_axis` is the row axis (1 for the [layers, N, K] recurrent state);
`context` is a tuple of arrays that are constant per sentence (e.g. encoder memory, keys, source lengths), row axis
0. Many sentences decode at once; beam search flattens (sentence, beam) into the N rows. Rows are dropped as soon
as their sentence is finished, so a batch's cost follows its longest *remaining* output, not its longest output.

Beam search keeps `beam_size` hypotheses per sentence, ranked by summed log-probability; a hypothesis that emits
EOS stays in its beam as finished (extended only by a zero-cost filler, so its score and length freeze), and a
sentence is done when all its beams are finished or the length cap is hit. The result is the beam with the best
length-normalised score, score / length**length_penalty, which counters the sum's bias towards short outputs.
With one beam it makes exactly greedy's choices.

`no_repeat_ngram` (0: off) forbids a token that would make an n-gram of that many tokens appear twice in one output
(fairseq's and Hugging Face's `no_repeat_ngram_size`): a model that has not learned enough English loops on a phrase
("the tent of the tent of the tent"), and the ban makes the search take the next best word instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from serving.contract.text import BOS_ID, EOS_ID, PAD_ID

StepFunction = Callable[
    [np.ndarray, np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, np.ndarray, np.ndarray | None]
]


@dataclass(frozen=True)
class Decoded:
    """Outputs of a batch of sentences, in input order."""

    tokens: np.ndarray  # [B, T] int64; EOS included where produced, PAD after the output's end
    lengths: np.ndarray  # [B] tokens per output (EOS included)
    scores: np.ndarray  # [B] summed log-probability of each output
    normalized_scores: np.ndarray  # [B] score / length**length_penalty
    attention: np.ndarray | None  # [B, T, S] attention of each output token over the source (with_attention)

    def sequences(self) -> list[list[int]]:
        return [self.tokens[i, : self.lengths[i]].tolist() for i in range(len(self.lengths))]


def normalize(scores: np.ndarray, lengths: np.ndarray, length_penalty: float) -> np.ndarray:
    return scores / np.maximum(lengths, 1).astype(np.float64) ** length_penalty


def ban_repeated_ngrams(log_probs: np.ndarray, history: np.ndarray, n: int) -> np.ndarray:
    """`log_probs` [N, V] with -inf for each token that would repeat an n-gram already in its row's `history` [N, t].

    The last n-1 tokens of a row are the prefix; every earlier place where the same n-1 tokens stand bans the token
    that followed them there. Vectorised over rows, one pass per earlier position (outputs are a few dozen tokens).
    Returns a writable array (a copy where `log_probs` was read-only, as onnxruntime's outputs can be)."""
    t = history.shape[1]
    if n < 1 or t < n:
        return log_probs
    if not log_probs.flags.writeable:
        log_probs = log_probs.copy()
    prefix = history[:, t - (n - 1) :]
    for start in range(t - n + 1):
        same = (history[:, start : start + n - 1] == prefix).all(axis=1)
        rows = np.flatnonzero(same)
        log_probs[rows, history[rows, start + n - 1]] = -np.inf
    return log_probs


def _take_rows(
    state: np.ndarray, context: tuple[np.ndarray, ...], rows: np.ndarray, state_axis: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    return np.take(state, rows, axis=state_axis), tuple(np.take(c, rows, axis=0) for c in context)


def greedy_search(
    step: StepFunction,
    state: np.ndarray,
    context: Sequence[np.ndarray],
    max_len: int,
    *,
    state_axis: int = 1,
    with_attention: bool = False,
    length_penalty: float = 1.0,
    no_repeat_ngram: int = 0,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    pad_id: int = PAD_ID,
) -> Decoded:
    """Argmax at every step; a sentence stops at EOS or after `max_len` tokens."""
    context = tuple(context)
    batch = state.shape[state_axis]
    tokens_out = np.full((batch, max_len), pad_id, dtype=np.int64)
    lengths = np.zeros(batch, dtype=np.int64)
    scores = np.zeros(batch, dtype=np.float64)
    attention: np.ndarray | None = None
    active = np.arange(batch)  # sentence of each row still decoding
    tokens = np.full(batch, bos_id, dtype=np.int64)
    for t in range(max_len):
        if len(active) == 0:
            break
        log_probs, state, weights = step(tokens, state, context)
        if no_repeat_ngram:
            log_probs = ban_repeated_ngrams(log_probs, tokens_out[active, :t], no_repeat_ngram)
        tokens = log_probs.argmax(axis=1)
        tokens_out[active, t] = tokens
        scores[active] += log_probs[np.arange(len(active)), tokens]
        lengths[active] = t + 1
        if with_attention and weights is not None:
            if attention is None:
                attention = np.zeros((batch, max_len, weights.shape[1]), dtype=np.float32)
            attention[active, t] = weights
        done = tokens == eos_id
        if done.any():
            keep = np.flatnonzero(~done)
            active, tokens = active[keep], tokens[keep]
            state, context = _take_rows(state, context, keep, state_axis)
    width = max(1, int(lengths.max(initial=0)))
    return Decoded(
        tokens_out[:, :width],
        lengths,
        scores,
        normalize(scores, lengths, length_penalty),
        attention[:, :width] if attention is not None else None,
    )


def beam_search(
    step: StepFunction,
    state: np.ndarray,
    context: Sequence[np.ndarray],
    max_len: int,
    beam_size: int,
    *,
    state_axis: int = 1,
    with_attention: bool = False,
    length_penalty: float = 1.0,
    no_repeat_ngram: int = 0,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    pad_id: int = PAD_ID,
) -> Decoded:
    """Beam search over `beam_size` hypotheses per sentence (see the module docstring)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    k = beam_size
    context = tuple(context)
    batch = state.shape[state_axis]
    beam_offsets = np.arange(k)
    # Every sentence's k rows start identical; only beam 0 may expand at the first step (others score -inf),
    # otherwise the beam would fill with k copies of the same hypothesis.
    state = np.repeat(state, k, axis=state_axis)
    context = tuple(np.repeat(c, k, axis=0) for c in context)
    scores = np.zeros((batch, k), dtype=np.float64)
    scores[:, 1:] = -np.inf
    lengths = np.zeros((batch, k), dtype=np.int64)
    finished = np.zeros((batch, k), dtype=bool)
    final_scores = np.zeros((batch, k), dtype=np.float64)
    final_lengths = np.zeros((batch, k), dtype=np.int64)
    last_step = np.full(batch, -1, dtype=np.int64)
    # Per step: the token each beam took and the beam it extended (back-pointers), for backtracking at the end.
    history_tokens = np.full((max_len, batch, k), pad_id, dtype=np.int64)
    history_parents = np.zeros((max_len, batch, k), dtype=np.int64)
    history_attention: np.ndarray | None = None
    # Each beam's own tokens so far (reordered by back-pointers every step), for the n-gram ban.
    hypotheses = np.full((batch, k, max_len), pad_id, dtype=np.int64) if no_repeat_ngram else None
    active = np.arange(batch)
    tokens = np.full(batch * k, bos_id, dtype=np.int64)
    for t in range(max_len):
        if len(active) == 0:
            break
        n = len(active)
        log_probs, state, weights = step(tokens, state, context)
        if hypotheses is not None:
            log_probs = ban_repeated_ngrams(log_probs, hypotheses[active, :, :t].reshape(n * k, t), no_repeat_ngram)
        # A sentence's k best extensions are among the k best tokens of each of its beams: k x k candidates instead
        # of k x V (argmax passes are ~100x faster than argpartition over k x V).
        top_values, top_tokens = row_top_k(log_probs, k)  # [n*k, k] each
        finished_now = finished[active].reshape(-1)
        top_values[finished_now] = -np.inf  # a finished beam continues only as itself: one filler, zero cost
        top_values[finished_now, 0] = 0.0
        top_tokens[finished_now] = pad_id
        candidates = scores[active][:, :, None] + top_values.reshape(n, k, k)  # float64
        choice = np.argsort(-candidates.reshape(n, k * k), axis=1, kind="stable")[:, :k]
        parent = choice // k
        token = np.take_along_axis(top_tokens.reshape(n, k * k), choice, axis=1)
        step_log_prob = np.take_along_axis(top_values.reshape(n, k * k), choice, axis=1).astype(np.float64)
        rows = (np.arange(n)[:, None] * k + parent).ravel()  # flat row each new beam extends
        was_finished = np.take_along_axis(finished[active], parent, axis=1)
        scores[active] = np.take_along_axis(scores[active], parent, axis=1) + step_log_prob
        lengths[active] = np.take_along_axis(lengths[active], parent, axis=1) + ~was_finished
        finished[active] = was_finished | (token == eos_id)
        history_tokens[t, active] = token
        history_parents[t, active] = parent
        if hypotheses is not None:
            hypotheses[active] = np.take_along_axis(hypotheses[active], parent[:, :, None], axis=1)
            hypotheses[active, :, t] = token
        if with_attention and weights is not None:
            if history_attention is None:
                history_attention = np.zeros((max_len, batch, k, weights.shape[1]), dtype=np.float32)
            history_attention[t, active] = weights[rows].reshape(n, k, -1) * ~was_finished[:, :, None]
        last_step[active] = t
        # Reorder the recurrent state by back-pointers, and drop the rows of sentences whose beams all finished.
        done = finished[active].all(axis=1)
        keep = np.flatnonzero(~done)
        if done.any():
            ended = active[done]
            final_scores[ended], final_lengths[ended] = scores[ended], lengths[ended]
            kept_rows = (keep[:, None] * k + beam_offsets).ravel()
            state = np.take(state, rows[kept_rows], axis=state_axis)
            context = tuple(np.take(c, kept_rows, axis=0) for c in context)
            active = active[keep]
            tokens = token[keep].ravel()
        else:
            state = np.take(state, rows, axis=state_axis)
            tokens = token.ravel()
    final_scores[active], final_lengths[active] = scores[active], lengths[active]  # hit the length cap
    return _backtrack(
        history_tokens,
        history_parents,
        history_attention,
        last_step,
        final_scores,
        final_lengths,
        length_penalty,
        pad_id,
    )


def row_top_k(log_probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest values of each row and their indices, best first; ties go to the lower index, as in argmax.

    k argmax passes, masking each pick, then the picks are restored: `log_probs` is unchanged on return."""
    if not log_probs.flags.writeable:
        log_probs = log_probs.copy()
    rows = np.arange(log_probs.shape[0])
    values = np.empty((len(rows), k), dtype=np.float64)
    indices = np.empty((len(rows), k), dtype=np.int64)
    for j in range(k):
        best = log_probs.argmax(axis=1)
        indices[:, j] = best
        values[:, j] = log_probs[rows, best]
        if j + 1 < k:
            log_probs[rows, best] = -np.inf
    for j in range(k - 1):
        log_probs[rows, indices[:, j]] = values[:, j]
    return values, indices


def _backtrack(
    history_tokens: np.ndarray,
    history_parents: np.ndarray,
    history_attention: np.ndarray | None,
    last_step: np.ndarray,
    scores: np.ndarray,
    lengths: np.ndarray,
    length_penalty: float,
    pad_id: int,
) -> Decoded:
    """Follow back-pointers from each sentence's best beam; vectorised over sentences, one pass over time."""
    batch = scores.shape[0]
    normalized = normalize(scores, lengths, length_penalty)
    beam = normalized.argmax(axis=1)
    sentences = np.arange(batch)
    best_len = lengths[sentences, beam]
    width = max(1, int(best_len.max(initial=0)))
    steps = int(last_step.max(initial=-1)) + 1
    path = np.full((batch, max(steps, 1)), pad_id, dtype=np.int64)
    attention = None
    if history_attention is not None:
        attention = np.zeros((batch, max(steps, 1), history_attention.shape[-1]), dtype=np.float32)
    for t in range(steps - 1, -1, -1):
        live = np.flatnonzero(t <= last_step)
        path[live, t] = history_tokens[t, live, beam[live]]
        if attention is not None:
            attention[live, t] = history_attention[t, live, beam[live]]
        beam[live] = history_parents[t, live, beam[live]]
    # A finished hypothesis's later steps are fillers: its own tokens are the first `length` of the path.
    path[np.arange(path.shape[1])[None, :] >= best_len[:, None]] = pad_id
    return Decoded(
        path[:, :width],
        best_len,
        scores[sentences, normalized.argmax(axis=1)],
        normalized.max(axis=1),
        attention[:, :width] if attention is not None else None,
    )
