"""The bundle's drift profile: the training vocabulary and each drift signal's reference distribution
(format: serving/contract/drift_profile.py; signals: serving/contract/drift_signals.py).

Written into the bundle folder before the manifest, so its checksum and the signature cover it. References come
from the run's own prepared data: novelty, confidence and label mix on the validation split (text the model never
trained on, so "novel" means what it will mean live), input length and language on the training split. Without the
prepared data the bundle still exports, with no profile and the reason in the manifest (`drift_profile_missing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.contract.bundle import Bundle
from serving.contract.drift_profile import profile_document, reference
from serving.contract.drift_signals import LANGUAGES, PROFILE_FILE, language, novelty, words
from serving.contract.files import atomic_write_bytes
from serving.contract.text import encode_ids, load_tokenizer
from training.config import Workspace
from training.data.prepared import load_split
from training.task_spec import TaskSpec

TRAIN, VALIDATION = "train", "validation"


def write_drift_profile(
    task: TaskSpec, cfg: Any, ws: Workspace | None, out_dir: Path, manifest: dict[str, Any]
) -> dict[str, str]:
    """Write `drift_profile.json` into `out_dir`; returns the manifest entries to add (`drift_profile`, or
    `drift_profile_missing` with the reason). `manifest`: the task part plus `tokenizers`, as exported so far."""
    if ws is None:
        return {"drift_profile_missing": "no workspace given to export: the run's prepared data is unknown"}
    prepared = task.find_prepared(cfg.data, ws)
    if prepared is None:
        return {"drift_profile_missing": f"the run's prepared data is not in {ws.prepared(task.name, cfg.data.source)}"}
    train = [row[task.input_field] for row in load_split(prepared.dir, TRAIN)]
    held_out = [row[task.input_field] for row in load_split(prepared.dir, VALIDATION)]
    vocabulary = {w for text in train for w in words(text)}
    known = frozenset(vocabulary)
    tokenizer = load_tokenizer(out_dir / manifest["tokenizers"][task.input_field])
    lengths = [len(ids) for ids in encode_ids(tokenizer, train, int(manifest["max_input_tokens"]))]
    signals = {
        "novelty": reference("novelty", VALIDATION, [novelty(t, known) for t in held_out]),
        "input_tokens": reference("input_tokens", TRAIN, lengths),
        "language": reference("language", TRAIN, [language(t) for t in train], LANGUAGES),
    }
    unavailable: dict[str, str] = {}
    if task.predict_labels is None:
        unavailable["confidence"] = unavailable["label_mix"] = f"{task.name} answers carry no label probability"
    else:
        bundle = Bundle(out_dir, manifest, digest="")  # the graphs just written, before the manifest is
        predicted = task.predict_labels(bundle, held_out) if held_out else []
        signals["confidence"] = reference("confidence", VALIDATION, [p for _, p in predicted])
        signals["label_mix"] = reference("label_mix", VALIDATION, [label for label, _ in predicted], manifest["labels"])
    atomic_write_bytes(out_dir / PROFILE_FILE, profile_document(sorted(vocabulary), signals, unavailable))
    return {"drift_profile": PROFILE_FILE}
