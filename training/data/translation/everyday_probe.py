"""The everyday probe: short everyday Spanish sentences written by the project (everyday_probe.jsonl, see
everyday_probe.md), each with one to three English references. The per-domain test splits are game text and the
Bible; this is the one local measure of everyday Spanish. Never training data: the corpus drops its sentences from
every source before splitting (training/data/translation/corpus.py).

Every translation run decodes it with the served decoder and logs `probe/everyday_bleu` and `probe/everyday_chrf`
(sacrebleu corpus scores against all references); the Apertium peer logs the same two."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.metrics.bleu import translation_scores

PROBE = Path(__file__).parent / "everyday_probe.jsonl"
NAME = "everyday"  # the metrics are `probe/<NAME>_bleu` and `probe/<NAME>_chrf`, as the sentiment probes'


def probe_rows(path: Path = PROBE) -> list[dict[str, Any]]:
    """`{"es", "en" (one to three references), "topic"}` per line."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def probe_sources(path: Path = PROBE) -> list[str]:
    """The probe's Spanish sentences, in file order."""
    return [row["es"] for row in probe_rows(path)]


def _score_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # the layout training/metrics/bleu.py scores: the first reference as `target`, the others as `references`
    return [{"target": row["en"][0], "references": list(row["en"][1:])} for row in rows]


def multi_reference_scores(hypotheses: Sequence[str], rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """(corpus BLEU, corpus chrF) against every reference of each row (sacrebleu, a missing one padded as None)."""
    scores = translation_scores(hypotheses, _score_rows(rows))
    return scores["bleu_multi_ref"], scores["chrf_multi_ref"]


def probe_metrics(hypotheses: Sequence[str], rows: Sequence[dict[str, Any]] | None = None) -> dict[str, float]:
    """`probe/everyday_bleu` and `probe/everyday_chrf` of `hypotheses`, one per probe row in file order."""
    rows = probe_rows() if rows is None else rows
    if len(hypotheses) != len(rows):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(rows)} probe sentences")
    bleu, chrf = multi_reference_scores(hypotheses, rows)
    return {f"probe/{NAME}_bleu": bleu, f"probe/{NAME}_chrf": chrf}


def bleu_by_topic(hypotheses: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Multi-reference corpus BLEU of each topic's rows (about 18 sentences each: a rough guide, not a benchmark)."""
    by_topic: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_topic[row["topic"]].append(i)
    return {
        topic: multi_reference_scores([hypotheses[i] for i in idx], [rows[i] for i in idx])[0]
        for topic, idx in by_topic.items()
    }
