"""Apertium (rule-based Spanish -> English, Debian `apertium-eng-spa`) scored on the same test split and on the
everyday probe (training/data/translation/everyday_probe.jsonl).

A peer that needs no training: it shows what the recurrent model's BLEU is worth. `make baseline
TASK=translation` installs it with apt-get when it is missing and the user is root; otherwise it says how.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import mlflow

from serving.contract.names import KIND_TAG, PEER_KIND
from training.config import TranslationConfig, Workspace
from training.data.translation.apertium import PACKAGE, apertium_translate, has_pair
from training.tracking.provenance import data_tags, log_data_inputs
from training.tracking.store import start_run


def ensure_apertium() -> str:
    """Path of the `apertium` binary, installing the Debian package if possible."""
    found = shutil.which("apertium")
    if found and has_pair(found):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", PACKAGE], check=True, env=env, capture_output=True)
        found = shutil.which("apertium")
        if found and has_pair(found):
            return found
    raise RuntimeError(f"Apertium is not installed: run `sudo apt-get install {PACKAGE}` (Debian/Ubuntu)")


def run_apertium(cfg: TranslationConfig, ws: Workspace) -> dict[str, float]:
    from training.data.translation.corpus import load_split, prepare_translation
    from training.data.translation.everyday_probe import probe_metrics, probe_rows
    from training.metrics.bleu import sacrebleu_signatures, scores_by_domain

    binary = ensure_apertium()
    prepared = prepare_translation(cfg.data, ws, progress=False)
    test = load_split(prepared.dir, "test")
    started = time.time()
    tags = {KIND_TAG: PEER_KIND, **data_tags(prepared.card)}  # the model card finds the peer by its data
    with start_run(ws, "translation", "peer-apertium", cfg.data, tags):
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True)
        mlflow.log_params({"model": "apertium spa-eng (rule-based)", "apertium_eng_spa": version.stdout or "?"})
        log_data_inputs("translation", prepared.dir, prepared.card)  # card, dataset input; no evaluation set
        hypotheses = apertium_translate([r["source"] for r in test], binary)
        seconds = time.time() - started
        metrics = scores_by_domain(hypotheses, test, prefix="test/")
        mlflow.log_dict(sacrebleu_signatures(), "eval/sacrebleu_signatures.json")
        metrics["translate_seconds"] = seconds
        probe = probe_rows()
        probe_hypotheses = apertium_translate([row["es"] for row in probe], binary)
        metrics.update(probe_metrics(probe_hypotheses, probe))
        mlflow.log_metrics(metrics)
        mlflow.log_text("\n".join(hypotheses) + "\n", "test_hypotheses.txt")
        mlflow.log_text("\n".join(probe_hypotheses) + "\n", "everyday_probe_hypotheses.txt")
    return {k: round(v, 3) for k, v in metrics.items()}
