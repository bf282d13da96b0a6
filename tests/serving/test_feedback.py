"""A correction checked against the logged records of its request (serving/feedback.py), without a server."""

from __future__ import annotations

import pytest

from serving.feedback import FeedbackRefused, check_feedback, sha256_text

LABELS = ["negative", "neutral", "positive"]
SENTIMENT = {
    "task": "sentiment",
    "prediction": "neutral",
    "text_sha256": sha256_text("the seat"),
    "text": None,
    "model_version": "3",
    "model_digest": "d" * 64,
}
TRANSLATION = {
    "task": "translation",
    "prediction": None,
    "prediction_sha256": sha256_text("Good morning."),
    "text_sha256": sha256_text("Buenos días."),
    "text": "Buenos días.",
    "model_version": "2",
    "model_digest": "e" * 64,
}


def test_a_translation_correction_agrees_when_it_is_the_answer_and_keeps_the_logged_text() -> None:
    same = check_feedback("r", [TRANSLATION], 0, None, " Good morning. ", None, None)  # no sentiment model: fine
    assert same.agreed and same.text == "Buenos días." and same.model_version == "2"
    other = check_feedback("r", [TRANSLATION], 0, None, "Good day.", None, LABELS)
    assert not other.agreed and other.correct == "Good day."


def test_a_sentiment_correction_needs_the_served_labels_and_the_logged_text() -> None:
    stored = check_feedback("r", [SENTIMENT], 0, "negative", None, "the seat", LABELS)
    assert (stored.correct, stored.predicted, stored.agreed, stored.text) == ("negative", "neutral", False, "the seat")
    with pytest.raises(FeedbackRefused) as refused:
        check_feedback("r", [SENTIMENT], 0, "negative", None, None, None)
    assert (refused.value.field, refused.value.status) == ("label", 503)
    with pytest.raises(FeedbackRefused) as refused:
        check_feedback("r", [SENTIMENT], 0, "negative", None, "another seat", LABELS)
    assert (refused.value.field, refused.value.status) == ("text", 400)
    with pytest.raises(FeedbackRefused) as refused:
        check_feedback("r", [], 0, "negative", None, None, LABELS)
    assert (refused.value.field, refused.value.status) == ("request_id", 404)
