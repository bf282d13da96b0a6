"""Corrections from production merged into the training split only (training/data/feedback.py)."""

from __future__ import annotations

from serving.contract.production import Feedback
from training.data.feedback import held_out, merge_feedback
from training.data.sentiment.dedupe import dedupe_key


def correction(text: str | None, label: str, request: int = 0) -> Feedback:
    return Feedback(f"{request:032x}", 0, "sentiment", "1", "d" * 64, "neutral", label, text, label == "neutral")


SPLITS = {
    "train": [{"text": "The crew was lovely", "label": "positive"}, {"text": "Lost my bag", "label": "neutral"}],
    "validation": [{"text": "Seats were cramped", "label": "negative"}],
    "test": [{"text": "Food was cold", "label": "negative"}],
}


def test_corrections_join_training_only_after_dedupe() -> None:
    corrections = [
        correction("LOST my bag", "negative", 1),  # the same text to the model as a training row: relabels it
        correction("Seats  were cramped", "positive", 2),  # a validation text (to the model): would leak, dropped
        correction("food was COLD", "positive", 3),  # a test text: dropped
        correction(None, "negative", 4),  # no text: cannot be trained on
        correction("Great legroom", "negative", 5),
        correction("great legroom", "positive", 6),  # the same text again: the latest label wins
    ]
    merge = merge_feedback(SPLITS, corrections, dedupe_key, holdout_share=0.0)
    assert merge.dropped == {"no_text": 1, "in_validation_or_test": 2, "duplicate": 1}
    assert (merge.added, merge.relabelled, merge.used, merge.held_out) == (1, 1, 2, [])
    assert merge.train == [
        {"text": "The crew was lovely", "label": "positive"},
        {"text": "Lost my bag", "label": "negative"},
        {"text": "great legroom", "label": "positive"},
    ]
    assert SPLITS["train"][1]["label"] == "neutral"  # the caller's splits are left as they were
    assert merge.metrics()["feedback/dropped_in_validation_or_test"] == 2


def test_the_held_out_slice_is_never_trained_on_and_stable() -> None:
    texts = [f"new text number {i}" for i in range(400)]
    merge = merge_feedback(SPLITS, [correction(t, "negative", i) for i, t in enumerate(texts)], dedupe_key, 0.2)
    held = {row["text"] for row in merge.held_out}
    trained = {row["text"] for row in merge.train}
    assert not held & trained and len(held) + merge.added == 400
    assert 50 < len(held) < 110  # about a fifth
    assert all(held_out(dedupe_key(t), 0.2) == (t in held) for t in texts)  # decided by the text alone
