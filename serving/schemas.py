"""Request and response shapes of the HTTP API, with the limits every request is checked against.

Validation happens here, per request, before adaptive batching merges requests: one client's bad input gets
its own 400 naming the field and never fails another client's batch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

MAX_TEXTS = 64  # texts per request; more should be sent as several requests (they are batched anyway)
MAX_SENTIMENT_CHARS = 2000  # a tweet is <= 280; this leaves room for reviews
MAX_TRANSLATION_CHARS = 500  # about 80 words; the model is trained on verses of at most 20-40 words
MAX_BEAM_SIZE = 8  # the API's ceiling; the served bundle's `max_beam_size` may be lower (checked per request)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text must contain at least one non-whitespace character")
    return text


# The pattern only documents the rule in the OpenAPI schema (clients and schemathesis read it there); the
# validator enforces it with a message that says what is wrong. The class lists exactly what Python's
# str.isspace() calls whitespace, so both agree: a bare `\S` means less in other regex engines (e.g. not \x1e).
WHITESPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = {"pattern": f"[^{WHITESPACE}]"}
SentimentText = Annotated[
    str, Field(min_length=1, max_length=MAX_SENTIMENT_CHARS, json_schema_extra=NOT_BLANK), AfterValidator(_not_blank)
]
SpanishText = Annotated[
    str, Field(min_length=1, max_length=MAX_TRANSLATION_CHARS, json_schema_extra=NOT_BLANK), AfterValidator(_not_blank)
]
SentimentTexts = Annotated[list[SentimentText], Field(min_length=1, max_length=MAX_TEXTS)]
SpanishTexts = Annotated[list[SpanishText], Field(min_length=1, max_length=MAX_TEXTS)]


def _json_integer(value: object) -> object:
    """A JSON integer only: pydantic's lax mode would also take `true` (as 1) and "4" (as 4), which the OpenAPI
    schema (type integer) says are invalid; 4.0 stays accepted, as JSON Schema counts it an integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


# Field before the validator: in the other order pydantic writes `ge`/`le` into the JSON schema, which no client
# reads, instead of `minimum`/`maximum`.
BeamSize = Annotated[
    int,
    Field(ge=1, le=MAX_BEAM_SIZE, description="beam width; 1 = greedy; the served model may allow fewer"),
    BeforeValidator(_json_integer),
]


class SentimentResult(BaseModel):
    label: str = Field(description="negative, neutral or positive")
    scores: dict[str, float] = Field(description="probability of each label; they sum to 1")


class TranslationResult(BaseModel):
    translation: str


class TokenContribution(BaseModel):
    token: str = Field(description="the token as the model saw it (normalised), without its word-start mark")
    start: int = Field(ge=0, description="offset of the token's first character in the request's `text`")
    end: int = Field(ge=0, description="offset after its last character: text[start:end] is its source text")
    contribution: float = Field(
        description="p(label | text) - p(label | text with this token replaced by the unknown token), for the "
        "predicted label: > 0 where the token pushed towards the answer. Both from one call of the model's fp32 "
        "graph (which an int8-served model keeps beside it): they may differ a little from `scores`"
    )


class SentimentExplanation(BaseModel):
    label: str = Field(description="negative, neutral or positive: the answer /sentiment gives")
    scores: dict[str, float] = Field(description="probability of each label; they sum to 1")
    method: Literal["occlusion"]
    tokens: list[TokenContribution] = Field(
        description="the tokens the model read (up to its token limit), in order; tokens without a span are left out"
    )


class TranslationExplanation(BaseModel):
    translation: str
    source_tokens: list[str] = Field(description="the Spanish tokens the model read (up to its token limit)")
    target_tokens: list[str] = Field(description="the English tokens it wrote, its end-of-sentence token included")
    attention: list[list[float]] = Field(
        description="one row per target token, one column per source token; each row sums to 1"
    )
    score: float = Field(description="the output's log-probability per token (length-normalised beam score)")


ReloadTask = Literal["all", "sentiment", "translation"]

# POST /feedback (serving/feedback.py): which answered text, and its right answer
RequestId = Annotated[
    str, Field(pattern="^[0-9a-f]{32}$", description="the X-Request-Id header of the answer being corrected")
]
TextIndex = Annotated[
    int,
    Field(ge=0, le=MAX_TEXTS - 1, description="the text's place in that request's `texts` (0 = the first)"),
    BeforeValidator(_json_integer),
]
CorrectLabel = Annotated[str, Field(min_length=1, max_length=32, description="the right label (a /sentiment answer)")]
CorrectText = Annotated[
    str, Field(min_length=1, max_length=MAX_SENTIMENT_CHARS, json_schema_extra=NOT_BLANK), AfterValidator(_not_blank)
]
