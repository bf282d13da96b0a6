"""The FastAPI app a user would write around a model: plain sync endpoints, each request run alone, no batching.

    PEER_BACKEND=onnx   the champion's ONNX bundles with serving's predictors (MEMORIA_SENTIMENT_BUNDLE,
                        MEMORIA_TRANSLATION_BUNDLE): /sentiment and /translate
    PEER_BACKEND=torch  the champion's PyTorch weights, eager (PEER_TORCH_MODEL_DIR: spec.json + state_dict.pt;
                        the tokenizer comes from MEMORIA_SENTIMENT_BUNDLE): /sentiment only

Run with uvicorn's defaults: `uvicorn --factory tests.benchmarks.peers.fastapi_peer:create_app`. Same request and
response JSON as memoria, validated with the same pydantic schemas, so only the serving layout differs. FastAPI
runs sync endpoints on its thread pool, so requests may overlap in the model; each is still its own model call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from serving.contract.bundle import load_bundle
from serving.schemas import MAX_BEAM_SIZE, SentimentResult, SentimentTexts, SpanishTexts, TranslationResult


class SentimentRequest(BaseModel):
    texts: SentimentTexts


class TranslateRequest(BaseModel):
    texts: SpanishTexts
    beam_size: int = Field(4, ge=1, le=MAX_BEAM_SIZE)


def _onnx_models() -> tuple[Callable[[list[str]], list[dict[str, Any]]], Callable[[list[str], int], list[str]]]:
    from serving.sentiment import SentimentPredictor
    from serving.translation import TranslationPredictor

    sentiment = SentimentPredictor(load_bundle(os.environ["MEMORIA_SENTIMENT_BUNDLE"], "sentiment"))
    translation = TranslationPredictor(load_bundle(os.environ["MEMORIA_TRANSLATION_BUNDLE"], "translation"))
    return sentiment.predict, lambda texts, beam: translation.translate(texts, beam_size=beam)


def create_app() -> FastAPI:
    """Loads the models before uvicorn starts listening, so /readyz answering means ready."""
    if os.environ.get("PEER_BACKEND", "onnx") == "torch":
        from tests.benchmarks.peers.torch_sentiment import TorchSentiment

        bundle = load_bundle(os.environ["MEMORIA_SENTIMENT_BUNDLE"], "sentiment")
        predict, translate = TorchSentiment(os.environ["PEER_TORCH_MODEL_DIR"], bundle).predict, None
    else:
        predict, translate = _onnx_models()
    app = FastAPI(title="memoria benchmark peer")

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/sentiment")
    def sentiment(request: SentimentRequest) -> list[SentimentResult]:
        return [SentimentResult(label=r["label"], scores=r["scores"]) for r in predict(request.texts)]

    if translate is not None:

        @app.post("/translate")
        def translation(request: TranslateRequest) -> list[TranslationResult]:
            return [TranslationResult(translation=t) for t in translate(request.texts, request.beam_size)]

    return app
