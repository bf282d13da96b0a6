"""Apertium (rule-based Spanish -> English, Debian `apertium-eng-spa`) scored on the same test split.

A peer that needs no training: it shows what the recurrent model's BLEU is worth. `make baseline
TASK=translation` installs it with apt-get when it is missing and the user is root; otherwise it says how.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import mlflow

from training.config import TranslationConfig, Workspace
from training.provenance import data_tags, log_data_inputs
from training.tracking import start_run

PACKAGE = "apertium-eng-spa"


def ensure_apertium() -> str:
    """Path of the `apertium` binary, installing the Debian package if possible."""
    found = shutil.which("apertium")
    if found and _has_pair(found):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", PACKAGE], check=True, env=env, capture_output=True)
        found = shutil.which("apertium")
        if found and _has_pair(found):
            return found
    raise RuntimeError(f"Apertium is not installed: run `sudo apt-get install {PACKAGE}` (Debian/Ubuntu)")


def _has_pair(binary: str) -> bool:
    out = subprocess.run([binary, "-l"], capture_output=True, text=True)
    return {"spa-eng", "eng-spa"} <= set(out.stdout.split())


def installed_apertium() -> tuple[str, str] | None:
    """(binary, package version) when Apertium and its English-Spanish pair are installed, else None."""
    found = shutil.which("apertium")
    if not found or not _has_pair(found):
        return None
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True)
    return found, version.stdout.strip() or "unknown"


def apertium_translate(texts: list[str], binary: str, pair: str = "spa-eng") -> list[str]:
    """One Apertium process for all texts: one text per line in, one per line out. -u drops the '*' marks
    Apertium puts on unknown words (they would cost BLEU for a cosmetic reason)."""
    clean = [" ".join(t.split()) for t in texts]  # no newlines inside a text
    out = subprocess.run(
        [binary, "-u", pair], input="\n".join(clean) + "\n", capture_output=True, text=True, check=True
    )
    lines = out.stdout.rstrip("\n").split("\n")
    if len(lines) != len(texts):
        raise RuntimeError(f"apertium returned {len(lines)} lines for {len(texts)} inputs")
    return [line.strip() for line in lines]


def run_apertium(cfg: TranslationConfig, ws: Workspace) -> dict[str, float]:
    from training.data.translation_corpus import load_split, prepare_translation
    from training.evaluation import sacrebleu_signatures, scores_by_domain

    binary = ensure_apertium()
    prepared = prepare_translation(cfg.data, ws, progress=False)
    test = load_split(prepared.dir, "test")
    started = time.time()
    tags = {"memoria.kind": "baseline", **data_tags(prepared.card)}  # the model card finds the peer by its data
    with start_run(ws, "translation", "peer-apertium", cfg.data, tags):
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True)
        mlflow.log_params({"model": "apertium spa-eng (rule-based)", "apertium_eng_spa": version.stdout or "?"})
        log_data_inputs("translation", prepared.dir, prepared.card, evaluation_set=False)  # card, dataset input
        hypotheses = apertium_translate([r["source"] for r in test], binary)
        seconds = time.time() - started
        metrics = scores_by_domain(hypotheses, test, prefix="test/")
        mlflow.log_dict(sacrebleu_signatures(), "eval/sacrebleu_signatures.json")
        metrics["translate_seconds"] = seconds
        mlflow.log_metrics(metrics)
        mlflow.log_text("\n".join(hypotheses) + "\n", "test_hypotheses.txt")
    return {k: round(v, 3) for k, v in metrics.items()}
