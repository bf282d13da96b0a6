"""What the service keeps of each answer (per worker): the input metrics, the drift window and the inference log
(serving/drift.py, serving/inference_log.py), and the corrections clients send back (serving/feedback.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from serving.contract.drift_profile import signal_values
from serving.contract.production import find_request, open_feedback, store_feedback
from serving.drift import DriftMonitor, text_features
from serving.feedback import FeedbackRefused, check_feedback, sha256_text
from serving.inference_log import InferenceLog
from serving.metrics import ServingMetrics

REQUEST_ID_HEADER = "X-Request-Id"


def new_request_id() -> str:
    return uuid.uuid4().hex


class ProductionLoop:
    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics
        self.log = InferenceLog()
        self.drift = DriftMonitor(metrics.drift)

    def answered(
        self,
        request_id: str,
        endpoint: str,
        model: Any,
        started: float,
        texts: list[str],
        answers: list[tuple[str, float | None, int]],
    ) -> None:
        """One answered request: `answers` holds (prediction, confidence or None, input tokens) per text."""
        served = model.served
        task, label = served.bundle.task, served.label
        profile = self.drift.profile(label, served.bundle)
        rows = []
        for text, (prediction, confidence, tokens) in zip(texts, answers, strict=True):
            features = text_features(text, tokens, profile)
            self.metrics.observe_inputs(task, label, tokens, features["novelty"])
            is_label = task == "sentiment"
            rows.append(
                {
                    "prediction": prediction if is_label or self.log.keep_text else None,
                    "prediction_sha256": sha256_text(prediction),
                    "confidence": None if confidence is None else round(confidence, 6),
                    **features,
                    "text_sha256": sha256_text(text),
                    "text": text,
                }
            )
        self.drift.observe(task, label, [signal_values(row) for row in rows])
        head = {
            "request_id": request_id,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "task": task,
            "endpoint": endpoint,
            "model": label,
            "model_version": served.registry_version,
            "model_digest": served.bundle.digest,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        self.log.write(head, rows)

    async def feedback(
        self,
        request_id: str,
        index: int,
        label: str | None,
        translation: str | None,
        text: str | None,
        labels: list[str] | None,
    ) -> dict[str, Any]:
        """Check a correction against the log and store it; raises FeedbackRefused naming the field at fault."""
        if not self.log.enabled:
            raise FeedbackRefused("request_id", "the inference log is off (MEMORIA_INFERENCE_LOG=false)", 404)
        records = await asyncio.to_thread(find_request, request_id)
        correction = check_feedback(request_id, records, index, label, translation, text, labels)
        await asyncio.to_thread(self._store, correction)
        record = records[index]
        self.metrics.feedback.labels(correction.task, record["model"], str(correction.agreed).lower()).inc()
        return {
            "request_id": request_id,
            "index": index,
            "task": correction.task,
            "model_version": correction.model_version,
            "agreed": correction.agreed,
            "trainable": correction.text is not None,
        }

    @staticmethod
    def _store(correction: Any) -> None:
        db = open_feedback()
        try:
            store_feedback(db, correction, datetime.now(UTC).isoformat(timespec="milliseconds"))
        finally:
            db.close()
