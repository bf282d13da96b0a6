"""Why a served model answered what it answered, on the served bundle (onnxruntime, no torch).

- Sentiment, by occlusion: each token of the text in turn is replaced by the unknown-token id, and its
  contribution is p(label | text) - p(label | text with that token unknown), label = the predicted one. The text
  and its variants have the same length, so they run as ONE onnxruntime call, without padding.
- Translation: the decoder's attention over the source at every output token, which the decoder-step graph
  already returns (checked against PyTorch at export: training/export/translation.py).
- Token spans: where each token came from in the request's text, for shading it in a page.

Cost is bounded per request: one text, cut to the model's token limit (the same cut as a prediction), so an
occlusion call has at most `max_input_tokens` + 1 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from serving.contract.text import UNK, UNK_ID, pad_batch
from serving.schemas import TokenContribution, TranslationExplanation
from serving.sentiment import SentimentPredictor
from serving.translation import TranslationPredictor

WORD_START = "\u2581"  # the Metaspace pre-tokenizer's mark for "a space was here" (training/text.py)


@dataclass(frozen=True)
class TokenSpan:
    index: int  # position in the model's input
    token: str  # as the model saw it (normalised), without the word-start mark
    start: int  # text[start:end] is where it came from
    end: int


def shown(piece: str) -> str:
    """A token for people: without the word-start mark (a bare mark stays, so no column is left unnamed)."""
    return piece.removeprefix(WORD_START) or piece


def token_spans(tokenizer: Tokenizer, text: str, max_tokens: int) -> tuple[list[int], list[TokenSpan]]:
    """The model's input ids for `text` (exactly those of serving.contract.text.encode_ids, before its empty-text [UNK])
    and the span in `text` of every token that has one.

    `tokenizers` maps offsets back through the normalizer, but not exactly where the normalizer rewrote text: a
    `Replace` whose content is longer than what it matched (the tweet placeholders: a URL -> " http ", a mention
    -> " @user ") maps every token of its content to the LAST character of the match, and a token that begins
    inside an NFKC expansion (the "i" of the ligature "ﬁ") starts after it. Such tokens are recognised (several
    share one offset pair, or their normalised source text is not the token) and given the source text they were
    made from: the stretch since the previous token, or, where that does not hold them, back into the previous
    token's characters (two tokens then share a character). Bare word-start marks are left out (they stand for
    whitespace); spans never include surrounding whitespace.
    """
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids = encoding.ids[:max_tokens]
    pieces = encoding.tokens[: len(ids)]
    offsets = [tuple(o) for o in encoding.offsets[: len(ids)]]
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer is not None else str

    spans: list[TokenSpan] = []
    previous_start, previous_end, i = 0, 0, 0
    while i < len(ids):
        group_end = i + 1  # tokens sharing one offset pair come from one rewritten stretch of text
        while group_end < len(ids) and offsets[group_end] == offsets[i]:
            group_end += 1
        start, end = offsets[i]
        group = [pieces[j] for j in range(i, group_end)]
        if group_end - i > 1 or not _holds(normalize(text[start:end]), group, exactly=True):
            start = _rewritten_start(text, normalize, group, previous_start, min(previous_end, start), end)
        span = _trimmed(text, start, end)
        if span[0] < span[1]:
            spans += [TokenSpan(j, shown(pieces[j]), *span) for j in range(i, group_end) if pieces[j] != WORD_START]
        previous_start, previous_end = span[0], max(previous_end, end)
        i = group_end
    return ids, spans


def _holds(normalized: str, pieces: list[str], exactly: bool = False) -> bool:
    """Whether normalised source text can have produced `pieces` (an unknown token: any one character)."""
    words = [p.removeprefix(WORD_START) for p in pieces if p not in (UNK, WORD_START)]
    if exactly:
        return "".join(words) == normalized.strip()
    return all(w in normalized for w in words)


def _rewritten_start(
    text: str, normalize: Callable[[str], str], pieces: list[str], floor: int, start: int, end: int
) -> int:
    if _holds(normalize(text[start:end]), pieces):
        return start
    for candidate in range(start - 1, floor - 1, -1):
        if _holds(normalize(text[candidate:end]), pieces):
            return candidate
    return start


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def variant_probabilities(predictor: SentimentPredictor, variants: Sequence[Sequence[int]]) -> np.ndarray:
    """[len(variants), n_labels] from ONE call of the fp32 graph. Not the served int8 graph, where there is one:
    int8 takes each activation's range from the whole call, so a variant's numbers would move with the others
    in it (serving/sentiment.py `activations_quantized`); fp32's do not, so one call gives comparable rows."""
    batch, lengths = pad_batch(variants)
    (probabilities,) = predictor.fp32_session.run(["probabilities"], {"input_ids": batch, "lengths": lengths})
    return probabilities


def occlusion(predictor: SentimentPredictor, text: str, label: str) -> list[TokenContribution]:
    """Each token of `text` that has a span, with p(label | text) - p(label | text with it unknown).

    `label` is the served answer's (the served graph's, which may be int8); both probabilities of a difference
    come from the same fp32 call. A token that already is unknown contributes exactly 0 (masking changes nothing).
    """
    ids, spans = token_spans(predictor.tokenizer, text, predictor.max_tokens)
    if not spans:
        return []
    target = predictor.labels.index(label)
    masked = [s for s in spans if ids[s.index] != UNK_ID]
    variants = [ids] + [[*ids[: s.index], UNK_ID, *ids[s.index + 1 :]] for s in masked]
    p = variant_probabilities(predictor, variants)[:, target]
    drops = {s.index: float(p[0] - q) for s, q in zip(masked, p[1:], strict=True)}
    return [
        TokenContribution(token=s.token, start=s.start, end=s.end, contribution=drops.get(s.index, 0.0)) for s in spans
    ]


def attention(predictor: TranslationPredictor, text: str, beam_size: int | None) -> TranslationExplanation:
    """The translation of `text` with its tokens and attention [target tokens, source tokens] (rows sum to 1)."""
    (t,) = predictor.translate_with_attention([text], beam_size)
    return TranslationExplanation(
        translation=t.text,
        source_tokens=[shown(p) for p in t.source_tokens],
        target_tokens=[shown(p) for p in t.output_tokens],
        attention=t.attention.astype(float).tolist(),
        score=t.score,
    )
