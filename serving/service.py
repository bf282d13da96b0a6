"""BentoML services: `Memoria` (the HTTP API) in front of one batched model service per task.

    POST /sentiment  {"texts": [...]}                   -> [{"label", "scores"}, ...]
    POST /translate  {"texts": [...], "beam_size": 4}   -> [{"translation"}, ...]

Why two layers: BentoML's adaptive batching merges the *items* of concurrent calls into one model call, and a
batchable endpoint takes exactly one batched argument. The API service validates each request on its own (a bad
request gets its own 400 and never fails a merged batch), carries per-request options such as `beam_size`, and
sets the `X-Memoria-Model` header; the model services do the batched inference.

Models load on a background thread, so `/readyz` answers 503 until every model is loaded (BentoML's readiness
probe asks each dependency), and stays 503 with a logged reason if a bundle is broken. Nothing here imports
torch: the models run on onnxruntime.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import aiohttp
import bentoml
from bentoml.exceptions import ServiceUnavailable
from pydantic import Field

from serving.resolve import ServedBundle, resolve_bundle
from serving.runtime import device_from_env, providers_for
from serving.schemas import (
    SentimentResult,
    SentimentTexts,
    SpanishTexts,
    TranslationItem,
    TranslationResult,
)

log = logging.getLogger("bentoml.memoria")

T = TypeVar("T")
MODEL_HEADER = "X-Memoria-Model"

# BentoML 1.4's client to a dependency closes its connection pool every `max_requests` calls, even while other
# calls are in flight on it, and may reuse a keep-alive connection the server just dropped (bentoml#4971): under
# load that surfaced here as 500s. The model services therefore ask for a pool that is (practically) never
# recycled, and the API retries a call once on a connection-level error; the model calls are idempotent.
STABLE_CONNECTIONS = {"max_requests": 1_000_000_000, "max_age": 86_400.0}


async def call_model(call: Callable[[Any], Any], payload: Any) -> Any:
    try:
        return await call(payload)
    except aiohttp.ClientConnectionError as e:
        log.warning("retrying a model call once after a dropped connection: %s", e)
        return await call(payload)


class BackgroundModel(Generic[T]):
    """Resolve a task's bundle and build its predictor on a thread; `get()` raises 503 until it is ready."""

    def __init__(self, task: str, build: Callable[[Any, list[Any], str], T]) -> None:
        self.task = task
        self.predictor: T | None = None
        self.served: ServedBundle | None = None
        self.error: str | None = None
        self._build = build
        threading.Thread(target=self._load, name=f"load-{task}", daemon=True).start()

    def _load(self) -> None:
        try:
            # Lets tests and demos watch /readyz go from 503 to 200 on a fast machine.
            time.sleep(float(os.environ.get("MEMORIA_LOAD_DELAY_SECONDS", "0")))
            served = resolve_bundle(self.task)
            device = device_from_env(self.task)
            self.predictor = self._build(served.bundle, providers_for(device), device)
            self.served = served
            log.info("%s model ready: %s (from %s)", self.task, served.label, served.origin)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            log.error("%s model NOT loaded, service stays unready: %s", self.task, self.error)

    @property
    def ready(self) -> bool:
        return self.served is not None

    def get(self) -> tuple[T, ServedBundle]:
        if self.predictor is None or self.served is None:
            reason = self.error or "still loading"
            raise ServiceUnavailable(f"{self.task} model is not ready: {reason}")
        return self.predictor, self.served


def _sentiment_predictor(bundle: Any, providers: list[Any], device: str) -> Any:
    from serving.sentiment import SentimentPredictor

    return SentimentPredictor(bundle, providers, device)


def _translation_predictor(bundle: Any, providers: list[Any], device: str) -> Any:
    from serving.translation import TranslationPredictor

    return TranslationPredictor(bundle, providers, device)


@bentoml.service(
    name="memoria-sentiment-model", workers=1, traffic={"timeout": 60}, runner_connection=STABLE_CONNECTIONS
)
class SentimentModel:
    def __init__(self) -> None:
        self.model = BackgroundModel("sentiment", _sentiment_predictor)

    def __is_ready__(self) -> bool:
        return self.model.ready

    # max_latency_ms is a cap, not a wait: the dispatcher waits only as long as it expects to gain. A generous
    # cap avoids BentoML answering 503 "Service Busy" under bursts (measured in `make bench`).
    @bentoml.api(batchable=True, max_batch_size=128, max_latency_ms=5000)
    def classify(self, texts: list[str]) -> list[dict]:
        predictor, served = self.model.get()
        results = predictor.predict(texts)
        for r in results:
            r["model"] = served.label
        return results


@bentoml.service(
    name="memoria-translation-model", workers=1, traffic={"timeout": 120}, runner_connection=STABLE_CONNECTIONS
)
class TranslationModel:
    def __init__(self) -> None:
        self.model = BackgroundModel("translation", _translation_predictor)

    def __is_ready__(self) -> bool:
        return self.model.ready

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=20000)
    def translate(self, items: list[TranslationItem]) -> list[dict]:
        """Items merged from concurrent requests; items sharing a beam size are decoded together."""
        predictor, served = self.model.get()
        out: list[dict] = [{} for _ in items]
        by_beam: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            by_beam.setdefault(item.beam_size, []).append(i)
        for beam, indices in by_beam.items():
            translations = predictor.translate([items[i].text for i in indices], beam_size=beam)
            for i, text in zip(indices, translations, strict=True):
                out[i] = {"translation": text, "model": served.label}
        return out


@bentoml.service(name="memoria", workers=1, traffic={"timeout": 120})
class Memoria:
    """The public API. Limits: see serving/schemas.py (and the OpenAPI page at /)."""

    sentiment_model = bentoml.depends(SentimentModel)
    translation_model = bentoml.depends(TranslationModel)

    @bentoml.api(route="/sentiment")
    async def sentiment(self, texts: SentimentTexts, ctx: bentoml.Context) -> list[SentimentResult]:
        """Sentiment of each text: its label and the probability of every label."""
        results = await call_model(self.sentiment_model.to_async.classify, texts)
        ctx.response.headers[MODEL_HEADER] = results[0]["model"]
        return [SentimentResult(label=r["label"], scores=r["scores"]) for r in results]

    @bentoml.api(route="/translate")
    async def translate(
        self,
        texts: SpanishTexts,
        ctx: bentoml.Context,
        beam_size: Annotated[int, Field(ge=1, le=8, description="beam width; 1 = greedy")] = 4,
    ) -> list[TranslationResult]:
        """English translation of each Spanish text."""
        items = [TranslationItem(text=t, beam_size=beam_size) for t in texts]
        results = await call_model(self.translation_model.to_async.translate, items)
        ctx.response.headers[MODEL_HEADER] = results[0]["model"]
        return [TranslationResult(translation=r["translation"]) for r in results]
