"""The BentoML service: both models in the process that answers HTTP, batched in process.

    POST /sentiment      {"texts": [...]}                  -> [{"label", "scores"}, ...]
    POST /translate      {"texts": [...], "beam_size": 4}  -> [{"translation"}, ...]
    POST /admin/reload   {"task": "all"}                   -> what each task's champion check did
    GET  /demo, GET /models                                -> the demo page, the served models' cards (open)
    POST /sentiment/explain  {"text": "..."}               -> label, scores, each token's span and contribution
    POST /translate/explain  {"text": "...", "beam_size"}  -> translation, tokens, attention matrix

Layout (why): one service, one process per core (MEMORIA_WORKERS, default: the machine's core count), each
holding both models. A request is validated on its own (a bad one gets its own 400 naming the field), then its
texts join whatever other requests are waiting for the same model (serving/batcher.py): one model call answers
them all, and a request that finds the model idle runs at once. The old layout (an API service calling a batched
model service per task) crossed a process and pickled every payload, which alone halved the throughput on
2 cores. Each worker gives onnxruntime cores / workers threads, so workers don't fight over cores.

Models load on a background thread, so `/readyz` answers 503 until both are loaded, and stays 503 with a
logged reason if a bundle is broken. A registry champion is watched and swapped live (serving/live_model.py).
Nothing here imports torch: the models run on onnxruntime.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import bentoml
from pydantic import ValidationError
from pydantic_core import InitErrorDetails
from starlette.responses import Response

from serving import bentoml_patches
from serving.contract.names import TASKS
from serving.contract.text import UNK
from serving.demo import demo_app
from serving.http_guard import HttpGuard
from serving.live_model import LiveModel, TaskSpec, request_reload
from serving.metrics import serving_metrics
from serving.openapi import OpenApiDocument
from serving.responses import SENTIMENT_RESULTS, TRANSLATION_RESULTS, json_response
from serving.schemas import (
    BeamSize,
    ReloadTask,
    SentimentExplanation,
    SentimentResult,
    SentimentText,
    SentimentTexts,
    SpanishText,
    SpanishTexts,
    TranslationExplanation,
    TranslationResult,
)

# BentoML 1.4.40 builds and keeps an OpenTelemetry span per request even with tracing off (its default sample
# rate is 0): measured ~2.3 KB of resident memory per request that never came back (plain BentoML too; cf.
# bentoml#4760) and a third of a no-op's throughput. Set OTEL_SDK_DISABLED=false to trace (with a sample rate).
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
bentoml_patches.apply()

MODEL_HEADER = "X-Memoria-Model"


def serving_workers() -> int:
    return int(os.environ.get("MEMORIA_WORKERS", "0")) or os.cpu_count() or 1


def max_batch_size(default: int) -> int:
    """Texts per model call (MEMORIA_MAX_BATCH_SIZE; 1 turns batching off, which `make bench` measures)."""
    return int(os.environ.get("MEMORIA_MAX_BATCH_SIZE", "0")) or default


def request_timeout() -> float:
    return float(os.environ.get("MEMORIA_REQUEST_TIMEOUT_S", "60"))


def _sentiment_spec() -> TaskSpec:
    from serving.sentiment import SentimentPredictor

    return TaskSpec(
        task="sentiment",
        build=SentimentPredictor,
        batch_fn=lambda predictor: predictor.predict,
        warm_up=lambda predictor: predictor.predict(["warm-up"]),
        max_batch_size=max_batch_size(128),
        inline=True,  # about a millisecond per call: a hand-off to a thread would cost as much (serving/batcher.py)
    )


def _translate_items(predictor: Any) -> Any:
    def run(items: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
        """Items merged from concurrent requests; those sharing a beam size are decoded together."""
        out: list[Any] = [None] * len(items)
        by_beam: dict[int, list[int]] = {}
        for i, (_, beam) in enumerate(items):
            by_beam.setdefault(beam, []).append(i)
        for beam, indices in by_beam.items():
            results = predictor.translate_with_stats([items[i][0] for i in indices], beam_size=beam)
            for i, result in zip(indices, results, strict=True):
                out[i] = result
        return out

    return run


def _translation_spec() -> TaskSpec:
    from serving.translation import TranslationPredictor

    return TaskSpec(
        task="translation",
        build=TranslationPredictor,
        batch_fn=_translate_items,
        warm_up=lambda predictor: predictor.translate(["hola"], beam_size=1),
        max_batch_size=max_batch_size(64),
        inline=False,  # beam search takes tens of ms per batch: decode off the event loop
    )


def _field_error(field: str, value: Any, limit: int) -> ValidationError:
    """A 400 shaped exactly like pydantic's own (BentoML answers it with the field named in `detail`)."""
    detail = InitErrorDetails(type="less_than_equal", loc=(field,), input=value, ctx={"le": limit})
    return ValidationError.from_exception_data("Input", [detail])


@bentoml.service(
    name="memoria",
    workers=serving_workers(),
    # A request still unanswered after this many seconds gets 504 with a message (BentoML's TimeoutMiddleware).
    traffic={"timeout": request_timeout()},
)
class Memoria:
    """The public API. Limits: see serving/schemas.py (and the OpenAPI page at /)."""

    def __init__(self) -> None:
        # One onnxruntime thread pool per worker, sized so that the workers together use the cores once.
        os.environ.setdefault("MEMORIA_ORT_THREADS", str(max(1, (os.cpu_count() or 1) // serving_workers())))
        self.metrics = serving_metrics()
        self.timeout = request_timeout()  # read once, not per request
        self.sentiment_model = LiveModel(_sentiment_spec(), self.metrics)
        self.translation_model = LiveModel(_translation_spec(), self.metrics)

    def __is_ready__(self) -> bool:
        return self.sentiment_model.ready and self.translation_model.ready

    @bentoml.api(route="/sentiment")
    async def sentiment(self, texts: SentimentTexts, ctx: bentoml.Context) -> list[SentimentResult]:
        """Sentiment of each text: its label and the probability of every label."""
        started = time.perf_counter()
        model = await self.sentiment_model.loaded(self.timeout)
        results = await model.batcher(texts)
        m, label = self.metrics, model.label
        for r in results:
            m.observe_inputs("sentiment", label, r["tokens"], r["unknown"])
            m.predictions.labels("sentiment", label, r["label"]).inc()
        self._answered("sentiment", label, started, ctx)
        answers = [SentimentResult(label=r["label"], scores=r["scores"]) for r in results]
        return json_response(SENTIMENT_RESULTS, answers)  # type: ignore[return-value]  # see serving/responses.py

    @bentoml.api(route="/translate")
    async def translate(
        self,
        texts: SpanishTexts,
        ctx: bentoml.Context,
        beam_size: BeamSize = 4,
    ) -> list[TranslationResult]:
        """English translation of each Spanish text."""
        started = time.perf_counter()
        model = await self.translation_model.loaded(self.timeout)
        limit = model.predictor.max_beam_size
        if beam_size > limit:  # checked per request, so one client's beam never fails another's merged batch
            raise _field_error("beam_size", beam_size, limit)
        results = await model.batcher([(t, beam_size) for t in texts])
        for _, tokens, unknown in results:
            self.metrics.observe_inputs("translation", model.label, tokens, unknown)
        self._answered("translation", model.label, started, ctx)
        answers = [TranslationResult(translation=text) for text, _, _ in results]
        return json_response(TRANSLATION_RESULTS, answers)  # type: ignore[return-value]

    @bentoml.api(route="/sentiment/explain")
    async def sentiment_explain(self, text: SentimentText, ctx: bentoml.Context) -> SentimentExplanation:
        """The /sentiment answer for one text, and how much each of its tokens moved it (occlusion)."""
        from serving.explain import occlusion

        started = time.perf_counter()
        model = await self.sentiment_model.loaded(self.timeout)
        (served,) = await model.batcher([text])  # the answer /sentiment gives, on the served graph
        tokens = await asyncio.to_thread(occlusion, model.predictor, text, served["label"])  # off the event loop
        self.metrics.observe_inputs("sentiment", model.label, served["tokens"], served["unknown"])
        self.metrics.predictions.labels("sentiment", model.label, served["label"]).inc()
        # Requests and latency under their own task name: an explanation costs a call of up to
        # max_input_tokens + 1 rows, which would blur the latency of /sentiment.
        self._answered("sentiment_explain", model.label, started, ctx)
        answer = SentimentExplanation(label=served["label"], scores=served["scores"], method="occlusion", tokens=tokens)
        return Response(answer.model_dump_json(), media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/translate/explain")
    async def translate_explain(
        self,
        text: SpanishText,
        ctx: bentoml.Context,
        # None only when left out (pydantic does not validate defaults): an explicit null is a 400, as the
        # document's `type: integer` says.
        beam_size: BeamSize = None,  # type: ignore[assignment]
    ) -> TranslationExplanation:
        """The English translation of one Spanish text, its tokens, and the decoder's attention over the source
        at each output token (beam_size: default the model's)."""
        from serving.explain import attention

        started = time.perf_counter()
        model = await self.translation_model.loaded(self.timeout)
        limit = model.predictor.max_beam_size
        if beam_size is not None and beam_size > limit:
            raise _field_error("beam_size", beam_size, limit)
        answer = await asyncio.to_thread(attention, model.predictor, text, beam_size)  # beam search: off the loop
        unknown = answer.source_tokens.count(UNK)
        self.metrics.observe_inputs("translation", model.label, len(answer.source_tokens), unknown)
        self._answered("translation_explain", model.label, started, ctx)
        return Response(answer.model_dump_json(), media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/admin/reload")
    async def reload(self, task: ReloadTask = "all") -> list[dict[str, str]]:
        """Check the registry's champion now and swap to it if it moved (needs MEMORIA_ADMIN_TOKEN)."""
        tasks = TASKS if task == "all" else (task,)
        out = []
        live_models = {"sentiment": self.sentiment_model, "translation": self.translation_model}
        for name in tasks:
            request_reload(name)  # the other workers follow within a second
            out.append(await asyncio.to_thread(live_models[name].reload))
        return out

    def _answered(self, task: str, label: str, started: float, ctx: bentoml.Context) -> None:
        self.metrics.requests.labels(task, label).inc()
        self.metrics.latency.labels(task, label).observe(time.perf_counter() - started)
        ctx.response.headers[MODEL_HEADER] = label


Memoria.add_asgi_middleware(HttpGuard)
Memoria.mount_asgi_app(demo_app())  # GET /demo (the page) and GET /models (the cards): serving/demo.py
Memoria.add_asgi_middleware(OpenApiDocument, service=Memoria)
