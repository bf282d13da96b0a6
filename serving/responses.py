"""Answers serialized once, here, instead of by BentoML's output descriptor.

bentoml 1.4.40 regenerates the output type's JSON schema on every response just to choose its media type
(`IOMixin.mime_type` -> `model_json_schema()`): profiled with py-spy at 32 clients, that was 30% of a worker's
busy event-loop time. An endpoint that returns a Starlette `Response` skips it; the endpoint's return annotation
still documents the shape in OpenAPI, and the schemathesis test checks every answer against that document.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from starlette.responses import Response

from serving.schemas import SentimentResult, TranslationResult

SENTIMENT_RESULTS: TypeAdapter[list[SentimentResult]] = TypeAdapter(list[SentimentResult])
TRANSLATION_RESULTS: TypeAdapter[list[TranslationResult]] = TypeAdapter(list[TranslationResult])


def json_response(adapter: TypeAdapter[Any], results: list[Any]) -> Response:
    return Response(adapter.dump_json(results), media_type="application/json")
