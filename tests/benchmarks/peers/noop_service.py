"""memoria's serving layout with the models taken out: the ceiling that layout allows on this machine.

One BentoML service with memoria's worker count, the same HttpGuard middleware, the same pydantic input schemas
and the same in-process MicroBatcher, but the batch functions answer constants without running a model. The gap
between this and memoria is what the models (and memoria's per-request metrics) cost; the gap between this and
the FastAPI peers is what BentoML's layout costs.

    bentoml serve tests.benchmarks.peers.noop_service:Noop --port 3000
"""

from __future__ import annotations

import gc
from typing import Any

import bentoml

from serving.batcher import MicroBatcher
from serving.http_guard import HttpGuard
from serving.responses import SENTIMENT_RESULTS, TRANSLATION_RESULTS, json_response
from serving.schemas import BeamSize, SentimentResult, SentimentTexts, SpanishTexts, TranslationResult
from serving.service import MODEL_HEADER, max_batch_size, request_timeout, serving_workers

NOOP_LABEL = "noop (no model)"
SCORES = {"negative": 0.2, "neutral": 0.5, "positive": 0.3}


def constant_sentiment(texts: list[str]) -> list[dict[str, Any]]:
    return [{"label": "neutral", "scores": SCORES} for _ in texts]


def constant_translation(items: list[tuple[str, int]]) -> list[str]:
    return ["In the beginning." for _ in items]


@bentoml.service(name="memoria-noop", workers=serving_workers(), traffic={"timeout": request_timeout()})
class Noop:
    def __init__(self) -> None:
        gc.freeze()  # as memoria's workers do once their models are loaded (serving/live_model.py)
        self.sentiment_batcher = MicroBatcher(constant_sentiment, max_batch_size(128), name="sentiment", inline=True)
        self.translation_batcher = MicroBatcher(constant_translation, max_batch_size(64), name="translation")

    @bentoml.api(route="/sentiment")
    async def sentiment(self, texts: SentimentTexts, ctx: bentoml.Context) -> list[SentimentResult]:
        results = await self.sentiment_batcher(texts)
        ctx.response.headers[MODEL_HEADER] = NOOP_LABEL
        answers = [SentimentResult(label=r["label"], scores=r["scores"]) for r in results]
        return json_response(SENTIMENT_RESULTS, answers)  # type: ignore[return-value]

    @bentoml.api(route="/translate")
    async def translate(
        self,
        texts: SpanishTexts,
        ctx: bentoml.Context,
        beam_size: BeamSize = 4,
    ) -> list[TranslationResult]:
        results = await self.translation_batcher([(t, beam_size) for t in texts])
        ctx.response.headers[MODEL_HEADER] = NOOP_LABEL
        return json_response(TRANSLATION_RESULTS, [TranslationResult(translation=t) for t in results])  # type: ignore[return-value]


Noop.add_asgi_middleware(HttpGuard)
