"""Prometheus metrics of the served models, on BentoML's /metrics beside its own HTTP metrics.

Per task and served model (the `X-Memoria-Model` label): requests, latency, batch sizes, and the input signals
that show drift before accuracy can (input length in tokens, share of unknown tokens, predicted label mix);
plus model swaps and refused bundles. BentoML runs workers in Prometheus' multiprocess mode and sets
PROMETHEUS_MULTIPROC_DIR when a worker starts, so prometheus_client is imported in `serving_metrics()`, called
from the service's __init__, never at module import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from serving.contract.input_profile import SHARE_BUCKETS, TOKEN_BUCKETS

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ServingMetrics:
    requests: Any
    latency: Any
    batch_size: Any
    input_tokens: Any
    unknown_share: Any
    predictions: Any
    model_info: Any
    reloads: Any

    def observe_inputs(self, task: str, model: str, tokens: int, unknown: int) -> None:
        self.input_tokens.labels(task, model).observe(tokens)
        self.unknown_share.labels(task, model).observe(unknown / max(tokens, 1))


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
        unknown_share=Histogram(
            "memoria_unknown_token_share", "Share of [UNK] tokens per input text", by_model, buckets=SHARE_BUCKETS
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
    )
