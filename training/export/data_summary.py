"""The bundle manifest's `data` section: what the model was trained on, small enough to travel with the bundle.

The model card (GET /models) shows it, so a bundle served from a path or packaged in a Bento, with no MLflow store
behind it, still says which data it learned from: the prepared data's fingerprint, the split sizes, the classes
(sentiment) or domains (translation) of the training split, and the profile of its inputs as serving measures them
(serving/contract/input_profile.py), which the demo page draws beside the live input signals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.contract.input_profile import input_profile
from serving.contract.text import load_tokenizer
from training.config import Workspace
from training.data.prepared import load_split
from training.task_spec import TaskSpec

TRAIN = "train"


def data_summary(task: TaskSpec, cfg: Any, ws: Workspace | None, tokenizer: Path, max_tokens: int) -> dict[str, Any]:
    """Summary of the run's prepared data; `{"available": False, "reason": ...}` when it is not on this machine
    (the bundle is still exported: the summary informs, it does not gate)."""
    if ws is None:
        return {"available": False, "reason": "no workspace given to export: the run's prepared data is unknown"}
    prepared = task.find_prepared(cfg.data, ws)
    if prepared is None:
        where = ws.prepared(task.name, cfg.data.source)
        return {"available": False, "reason": f"the run's prepared data is not in {where} (changed or removed)"}
    card = prepared.card
    summary: dict[str, Any] = {
        "available": True,
        "source": card["source"],
        "fingerprint": card["fingerprint"],
        "pipeline_version": card.get("pipeline_version"),
        **task.summarize_data(card),  # splits, and the training split's classes or domains
    }
    texts = [row[task.input_field] for row in load_split(prepared.dir, TRAIN)]
    summary["inputs"] = {"split": TRAIN, **input_profile(load_tokenizer(tokenizer), texts, max_tokens)}
    return summary


def sentiment_summary(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "splits": {name: split["total"] for name, split in card["splits"].items()},
        "classes": {label: card["splits"][TRAIN][label] for label in card["labels"]},
    }


def translation_summary(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "direction": card.get("direction", "es->en"),
        "splits": dict(card["splits"]),
        "domains": dict(card["splits_by_domain"][TRAIN]),
    }
