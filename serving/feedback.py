"""POST /feedback: a client says what the right answer to one logged text was.

The request names a request id (the X-Request-Id of an answer), the text's `index` in that request (default 0),
and either the right `label` (a /sentiment answer) or the right `translation` (a /translate answer). It is checked
against the inference log: an id the log does not hold is 404, an index past the request's texts, a label for a
translation (or the reverse), a label the model does not have, or a `text` that is not the logged one is 400,
each naming the field. Stored (serving/contract/production.py feedback.db) with the model version and digest it
corrects, whether it agrees with the answer, and the input text when the log kept it (MEMORIA_LOG_TEXT) or the
client sent it (checked against the logged sha256): only corrections with their text can be trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serving.contract.production import Feedback


@dataclass(frozen=True)
class FeedbackRefused(Exception):
    field: str
    message: str
    status: int = 400


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_feedback(
    request_id: str,
    records: Sequence[dict[str, Any]],
    index: int,
    label: str | None,
    translation: str | None,
    text: str | None,
    labels: Sequence[str] | None,
) -> Feedback:
    """The correction to store, or FeedbackRefused naming the field at fault. `records`: the request's log records
    (serving/contract/production.py find_request); `labels`: the sentiment labels a correction may name (None while
    no sentiment model is loaded: a sentiment correction then gets 503, a translation one is taken)."""
    if not records:
        raise FeedbackRefused("request_id", "no answered request with this id in the inference log", 404)
    if index >= len(records):
        raise FeedbackRefused("index", f"request {request_id} had {len(records)} text(s): index must be below that")
    record = records[index]
    task = record["task"]
    if task == "sentiment":
        if translation is not None:
            raise FeedbackRefused(
                "translation", "this request was a sentiment request: send `label`, not `translation`"
            )
        if label is None:
            raise FeedbackRefused("label", "a sentiment correction needs `label`")
        if labels is None:
            raise FeedbackRefused(
                "label", "the sentiment model is not loaded yet, so its labels are unknown: retry", 503
            )
        if label not in labels:
            raise FeedbackRefused("label", f"must be one of {', '.join(labels)}")
        correct, agreed = label, label == record["prediction"]
    else:
        if label is not None:
            raise FeedbackRefused("label", "this request was a translation request: send `translation`, not `label`")
        if translation is None:
            raise FeedbackRefused("translation", "a translation correction needs `translation`")
        correct = translation.strip()
        agreed = sha256_text(correct) == record["prediction_sha256"]
    logged = record.get("text")
    if text is not None and sha256_text(text) != record["text_sha256"]:
        raise FeedbackRefused("text", f"is not the text answered as request {request_id} index {index}")
    return Feedback(
        request_id=request_id,
        index=index,
        task=task,
        model_version=record.get("model_version"),
        model_digest=record["model_digest"],
        predicted=record["prediction"] if task == "sentiment" else record["prediction_sha256"],
        correct=correct,
        text=logged if logged is not None else text,
        agreed=agreed,
    )
