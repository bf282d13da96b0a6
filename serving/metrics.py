"""Prometheus metrics of the served models, on BentoML's /metrics beside its own HTTP metrics.

Per task and served model (the `X-Memoria-Model` label): requests, latency, batch sizes, and the input signals
that show drift before accuracy can (input length in tokens, word novelty, predicted label mix) with their
distances from the training profile (serving/drift.py); feedback and its disagreement with the answers; model
swaps, refused bundles, and whether each task has a model. (The unknown-token share histogram is gone: the
tokenizer is byte-level BPE, so it was 0 for every input; word novelty replaces it.) BentoML runs workers in
Prometheus' multiprocess mode and sets PROMETHEUS_MULTIPROC_DIR when a worker starts, so prometheus_client is
imported in `serving_metrics()`, called from the service's __init__, never at module import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from serving.contract.drift_signals import NOVELTY_BOUNDS
from serving.contract.input_profile import TOKEN_BUCKETS

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ServingMetrics:
    requests: Any
    latency: Any
    batch_size: Any
    input_tokens: Any
    novelty: Any
    predictions: Any
    model_info: Any
    reloads: Any
    drift: Any
    feedback: Any
    task_ready: Any

    def observe_inputs(self, task: str, model: str, tokens: int, novelty: float | None) -> None:
        self.input_tokens.labels(task, model).observe(tokens)
        if novelty is not None:  # None: a bundle without a drift profile (no training vocabulary to compare with)
            self.novelty.labels(task, model).observe(novelty)


@functools.cache
def serving_metrics() -> ServingMetrics:
    """One set per process (prometheus_client refuses to register a name twice)."""
    from prometheus_client import Counter, Gauge, Histogram

    by_model = ["task", "model"]
    return ServingMetrics(
        # Answered requests per model; refused ones (4xx/5xx) are in BentoML's own bentoml_service_request_total.
        requests=Counter("memoria_requests", "Prediction requests answered by a model", by_model),
        latency=Histogram(
            "memoria_request_seconds", "Time to answer a request (queue + model)", by_model, buckets=LATENCY_BUCKETS
        ),
        batch_size=Histogram("memoria_batch_size", "Texts per model call", ["task"], buckets=BATCH_BUCKETS),
        input_tokens=Histogram("memoria_input_tokens", "Tokens per input text", by_model, buckets=TOKEN_BUCKETS),
        novelty=Histogram(
            "memoria_input_novelty",
            "Share of words the training split never had, per text",
            by_model,
            buckets=NOVELTY_BOUNDS,
        ),
        predictions=Counter("memoria_predictions", "Predicted sentiment labels", [*by_model, "label"]),
        model_info=Gauge(
            "memoria_model_served", "1 for the model a task serves now", by_model, multiprocess_mode="livemax"
        ),
        reloads=Counter(
            "memoria_model_reloads",
            "Champion checks that changed or failed: swapped, refused (bundle failed verification), "
            "unreachable, fetch-failed, no-champion (retried with backoff)",
            ["task", "outcome"],
        ),
        # livemax: the worker whose window drifted most (each worker's window is a sample of the same traffic)
        drift=Gauge(
            "memoria_drift_distance",
            "Jensen-Shannon distance of a signal's sliding window from the bundle's training profile (0..1)",
            [*by_model, "signal"],
            multiprocess_mode="livemax",
        ),
        feedback=Counter(
            "memoria_feedback", "Corrections received, by whether they agree with the answer", [*by_model, "agreed"]
        ),
        # livemin: a task is ready only when every live worker has its model
        task_ready=Gauge(
            "memoria_task_ready", "1 when the task has a model to answer with", ["task"], multiprocess_mode="livemin"
        ),
    )
