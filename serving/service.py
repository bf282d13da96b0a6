"""The BentoML service: both models in the process that answers HTTP, batched in process.

    POST /sentiment      {"texts": [...]}                  -> [{"label", "scores"}, ...]
    POST /translate      {"texts": [...], "beam_size": 4}  -> [{"translation"}, ...]
    POST /admin/reload   {"task": "all"}                   -> what each task's champion check did
    POST /feedback       {"request_id", "index", "label" | "translation"} -> the correction, stored (in production)
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

Overload is shed, not absorbed: past a worker's concurrency cap (serving/http_guard.py) or its model queue's
bounds (serving/batcher.py), a request gets 503 with Retry-After at once; explanations queue on the same model
thread under the same bounds. A 503 body names the limit or says the model is not ready; the reason a model is
not ready (paths, exception text) goes to the server log only.

In production (serving/production_loop.py): every /sentiment and /translate answer carries an X-Request-Id, is
written to the inference log and feeds the drift windows; POST /feedback takes corrections of logged answers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import time
from typing import Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from pydantic import ValidationError
from pydantic_core import InitErrorDetails
from starlette.responses import Response

from serving import bentoml_patches
from serving.batcher import DeadlineExceeded, Overloaded, QueueLimits
from serving.contract.names import TASKS
from serving.demo import demo_app
from serving.http_guard import HttpGuard, max_concurrent_requests
from serving.live_model import NOT_READY, LiveModel, TaskSpec, request_reload
from serving.metrics import serving_metrics
from serving.openapi import OpenApiDocument
from serving.production_loop import REQUEST_ID_HEADER, FeedbackRefused, ProductionLoop, new_request_id
from serving.responses import SENTIMENT_RESULTS, TRANSLATION_RESULTS, json_response
from serving.schemas import (
    BeamSize,
    CorrectLabel,
    CorrectText,
    ReloadTask,
    RequestId,
    SentimentExplanation,
    SentimentResult,
    SentimentText,
    SentimentTexts,
    SpanishText,
    SpanishTexts,
    TextIndex,
    TranslationExplanation,
    TranslationResult,
)

# BentoML 1.4.40 builds and keeps an OpenTelemetry span per request even with tracing off (its default sample
# rate is 0): measured ~2.3 KB of resident memory per request that never came back (plain BentoML too; cf.
# bentoml#4760) and a third of a no-op's throughput. Set OTEL_SDK_DISABLED=false to trace (with a sample rate).
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
bentoml_patches.apply()

MODEL_HEADER = "X-Memoria-Model"
NOT_READY_RETRY_AFTER_S = 5  # a model still loading is usually there within seconds

log = logging.getLogger("bentoml.memoria")


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
        sentiment, translation = _sentiment_spec(), _translation_spec()
        # Read here so that a bad value stops the worker at start, naming the variable; each model's batcher reads
        # the same variables when it is built (serving/batcher.py QueueLimits.from_env).
        limits = {spec.task: QueueLimits.from_env(spec.max_batch_size) for spec in (sentiment, translation)}
        log.info(
            "back-pressure per worker: %d requests in flight (MEMORIA_MAX_CONCURRENT_REQUESTS); model queue %s texts "
            "(MEMORIA_MAX_QUEUED_TEXTS), refused once its oldest has waited %gs (MEMORIA_MAX_QUEUE_WAIT_S)",
            max_concurrent_requests(),
            ", ".join(f"{task} {limit.max_queued}" for task, limit in limits.items()),
            limits["sentiment"].max_wait_s,
        )
        self.sentiment_model = LiveModel(sentiment, self.metrics)
        self.translation_model = LiveModel(translation, self.metrics)
        self.production = ProductionLoop(self.metrics)  # inference log, drift windows, feedback

    def __is_ready__(self) -> bool:
        return self.sentiment_model.ready and self.translation_model.ready

    @bentoml.api(route="/sentiment")
    async def sentiment(self, texts: SentimentTexts, ctx: bentoml.Context) -> list[SentimentResult]:
        """Sentiment of each text: its label and the probability of every label."""
        started, request_id = time.perf_counter(), new_request_id()
        ctx.response.headers[REQUEST_ID_HEADER] = request_id
        try:
            model = await self._model(self.sentiment_model)
            results = await model.batcher(texts, self._deadline())
        except REFUSALS as e:
            return _refusal("sentiment", e, ctx, self.timeout)  # type: ignore[return-value]
        m, label = self.metrics, model.label
        for r in results:
            m.predictions.labels("sentiment", label, r["label"]).inc()
        answers_seen = [(r["label"], r["scores"][r["label"]], r["tokens"]) for r in results]
        self.production.answered(request_id, "/sentiment", model, started, list(texts), answers_seen)
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
        started, request_id = time.perf_counter(), new_request_id()
        ctx.response.headers[REQUEST_ID_HEADER] = request_id
        try:
            model = await self._model(self.translation_model)
            limit = model.predictor.max_beam_size
            if beam_size > limit:  # checked per request, so one client's beam never fails another's merged batch
                raise _field_error("beam_size", beam_size, limit)
            results = await model.batcher([(t, beam_size) for t in texts], self._deadline())
        except REFUSALS as e:
            return _refusal("translation", e, ctx, self.timeout)  # type: ignore[return-value]
        answers_seen = [(text, None, tokens) for text, tokens, _ in results]
        self.production.answered(request_id, "/translate", model, started, list(texts), answers_seen)
        self._answered("translation", model.label, started, ctx)
        answers = [TranslationResult(translation=text) for text, _, _ in results]
        return json_response(TRANSLATION_RESULTS, answers)  # type: ignore[return-value]

    @bentoml.api(route="/sentiment/explain")
    async def sentiment_explain(self, text: SentimentText, ctx: bentoml.Context) -> SentimentExplanation:
        """The /sentiment answer for one text, and how much each of its tokens moved it (occlusion)."""
        from serving.explain import occlusion

        started = time.perf_counter()
        try:
            model = await self._model(self.sentiment_model)
            deadline = self._deadline()
            (served,) = await model.batcher([text], deadline)  # the answer /sentiment gives, on the served graph
            # On the model's queue, alone: one call of up to max_input_tokens + 1 rows, weighed like as many texts.
            rows = model.predictor.max_tokens + 1
            work = functools.partial(occlusion, model.predictor, text, served["label"])
            tokens = await model.batcher.solo(work, rows, deadline)
        except REFUSALS as e:
            return _refusal("sentiment", e, ctx, self.timeout)  # type: ignore[return-value]
        self.metrics.observe_inputs("sentiment", model.label, served["tokens"], None)  # not logged: no novelty
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
        try:
            model = await self._model(self.translation_model)
            limit = model.predictor.max_beam_size
            if beam_size is not None and beam_size > limit:
                raise _field_error("beam_size", beam_size, limit)
            # On the model's own thread, alone, in queue order: one beam search, weighed like `beam` texts.
            beam = beam_size or model.predictor.default_beam_size
            work = functools.partial(attention, model.predictor, text, beam_size)
            answer = await model.batcher.solo(work, beam, self._deadline())
        except REFUSALS as e:
            return _refusal("translation", e, ctx, self.timeout)  # type: ignore[return-value]
        self.metrics.observe_inputs("translation", model.label, len(answer.source_tokens), None)
        self._answered("translation_explain", model.label, started, ctx)
        return Response(answer.model_dump_json(), media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/admin/reload")
    async def reload(self, task: ReloadTask = "all") -> list[dict[str, str]]:
        """Check the registry's champion now and swap to it if it moved (needs MEMORIA_ADMIN_TOKEN)."""
        tasks = TASKS if task == "all" else (task,)
        out = []
        live_models = {"sentiment": self.sentiment_model, "translation": self.translation_model}
        for name in tasks:
            # This worker first, then the trigger the others (and this worker's own watcher, now a no-op) follow
            # within a second: the other way round, this worker's watcher could swap first and the answer here
            # would say "unchanged" for a reload that did swap.
            out.append(_without_details(await asyncio.to_thread(live_models[name].reload)))
            request_reload(name)
        return out

    @bentoml.api(route="/feedback")
    async def feedback(
        self,
        request_id: RequestId,
        ctx: bentoml.Context,
        index: TextIndex = 0,
        label: CorrectLabel | None = None,
        translation: CorrectText | None = None,
        text: CorrectText | None = None,
    ) -> dict[str, Any]:
        """The right answer to one logged text: `label` for a /sentiment answer, `translation` for a /translate one
        (`text`: the input, when the log does not keep texts and the correction should be trained on)."""
        # the labels a sentiment correction may name are the served model's (None while it is not loaded)
        labels = self.sentiment_model.current().predictor.labels if self.sentiment_model.ready else None
        try:
            return await self.production.feedback(request_id, index, label, translation, text, labels)
        except FeedbackRefused as e:  # shaped like pydantic's 400s: {"detail": [{"loc": [field], "msg": ...}]}
            ctx.response.status_code = e.status
            body = {
                "error": f"{e.field}: {e.message}",
                "detail": [{"loc": [e.field], "msg": e.message, "type": "feedback"}],
            }
            return Response(json.dumps(body), status_code=e.status, media_type="application/json")  # type: ignore[return-value]

    async def _model(self, live: LiveModel) -> Any:
        """The model a request runs on; the first time a model is seen, its dropped work is counted."""
        model = await live.loaded(self.timeout)
        if model.batcher.on_drop is None:
            model.batcher.on_drop = functools.partial(_count_shed, live.task)
        return model

    def _deadline(self) -> float:
        """When a request's queued work stops being worth computing: when its timeout answers 504 (time.monotonic)."""
        return time.monotonic() + self.timeout

    def _answered(self, task: str, label: str, started: float, ctx: bentoml.Context) -> None:
        self.metrics.requests.labels(task, label).inc()
        self.metrics.latency.labels(task, label).observe(time.perf_counter() - started)
        ctx.response.headers[MODEL_HEADER] = label


REFUSALS = (Overloaded, DeadlineExceeded, ServiceUnavailable)


def _without_details(report: dict[str, str]) -> dict[str, str]:
    """A reload report for the caller: the outcome's fixed words; the exception's text (paths, hosts, URIs) is in
    the service log only, as for every other answer."""
    if "reason" not in report:
        return report
    return {**report, "reason": NOT_READY.get(report["outcome"], "see the service log")}


def _refusal(task: str, error: Exception, ctx: bentoml.Context, timeout_s: float) -> Response:
    """503 with Retry-After (or 504 for a passed deadline); the body names the limit, never a path or a trace."""
    if isinstance(error, Overloaded):
        _count_shed(task, "queue")
        return _error_response(ctx, 503, f"{task} {error}: retry later", error.retry_after_s)
    if isinstance(error, DeadlineExceeded):
        # Worded like BentoML's own 504 (the request's timer, serving/bentoml_patches.py): which of the two fires first
        # depends on the machine's speed, and a client should read the same limit from either.
        message = f"not answered within {timeout_s:g} seconds (MEMORIA_REQUEST_TIMEOUT_S; {task} work dropped unrun)"
        return _error_response(ctx, 504, message)
    # The model is not loaded: the reason (a path, an exception's words) is in the server log, not for clients.
    message = f"{task} model is not ready (still loading, or its bundle was refused: see the server log)"
    return _error_response(ctx, 503, message, NOT_READY_RETRY_AFTER_S)


def _error_response(ctx: bentoml.Context, status: int, message: str, retry_after_s: float | None = None) -> Response:
    # BentoML gives a returned Response the context's status and headers (an endpoint taking `ctx`), so set both there.
    ctx.response.status_code = status
    if retry_after_s is not None:
        ctx.response.headers["Retry-After"] = str(math.ceil(retry_after_s))
    return Response(json.dumps({"error": message}), status_code=status, media_type="application/json")


@functools.cache
def _shed_counter() -> Any:
    """Requests refused by a model queue and queued work dropped unrun (once per process, in the worker: see
    serving/metrics.py on why prometheus_client is imported late)."""
    from prometheus_client import Counter

    return Counter(
        "memoria_shed_requests",
        "Work not run: refused by a full or slow queue (queue), client gone (gone), deadline passed (deadline)",
        ["task", "reason"],
    )


def _count_shed(task: str, reason: str) -> None:
    _shed_counter().labels(task, reason).inc()


Memoria.add_asgi_middleware(HttpGuard)
Memoria.mount_asgi_app(demo_app())  # GET /demo (the page) and GET /models (the cards): serving/demo.py
Memoria.add_asgi_middleware(OpenApiDocument, service=Memoria)
