"""Request and response shapes of the HTTP API, with the limits every request is checked against.

Validation happens here, per request, before adaptive batching merges requests: one client's bad input gets
its own 400 naming the field and never fails another client's batch.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

MAX_TEXTS = 64  # texts per request; more should be sent as several requests (they are batched anyway)
MAX_SENTIMENT_CHARS = 2000  # a tweet is <= 280; this leaves room for reviews
MAX_TRANSLATION_CHARS = 500  # about 80 words; the model is trained on verses of at most 20-40 words


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text must contain at least one non-whitespace character")
    return text


SentimentText = Annotated[str, Field(min_length=1, max_length=MAX_SENTIMENT_CHARS), AfterValidator(_not_blank)]
SpanishText = Annotated[str, Field(min_length=1, max_length=MAX_TRANSLATION_CHARS), AfterValidator(_not_blank)]
SentimentTexts = Annotated[list[SentimentText], Field(min_length=1, max_length=MAX_TEXTS)]
SpanishTexts = Annotated[list[SpanishText], Field(min_length=1, max_length=MAX_TEXTS)]


class SentimentResult(BaseModel):
    label: str = Field(description="negative, neutral or positive")
    scores: dict[str, float] = Field(description="probability of each label; they sum to 1")


class TranslationResult(BaseModel):
    translation: str


class TranslationItem(BaseModel):
    """One text on its way to the batched translation model (beam size travels with it)."""

    text: str
    beam_size: int
