"""The sentiment data card: what was read, what each step dropped, and what each split holds."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from training.config import SentimentDataConfig
from training.data.sentiment.dedupe import MAX_HELDOUT_GROUP, RULES
from training.data.sentiment.records import LABELS, PIPELINE_VERSION, DedupStats, Example, RawCorpus

DEDUP_KEY = (
    "the text as the tokenizer sees it (NFKC, lower case, links and @handles as placeholders, punctuation split), "
    "links dropped, leading 'RT @user:' and a trailing truncation mark removed (training/data/sentiment/dedupe.py)"
)
CONFLICT_POLICY = "majority label of the duplicates; an exact tie drops the text"


def _class_counts(examples: Iterable[Example]) -> dict[str, int]:
    counts = Counter(ex.label for ex in examples)
    return {label: counts[label] for label in LABELS}


def build_card(
    cfg: SentimentDataConfig,
    fingerprint: str,
    raw: RawCorpus,
    counts: Mapping[str, int],
    dedup: DedupStats,
    splits: Mapping[str, Sequence[Example]],
    files: Mapping[str, str],
) -> dict[str, Any]:
    """What was read, what each step dropped, and what each split holds. rows.raw equals the sum of every
    dropped_* count plus rows.kept."""
    kept = sum(map(len, splits.values()))
    cross_split = {k.rpartition(".")[2]: v for k, v in counts.items() if k.startswith("dropped_in_earlier_split.")}
    official = raw.splits is not None
    card: dict[str, Any] = {
        "task": "sentiment",
        "source": cfg.source,
        "pipeline_version": PIPELINE_VERSION,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(cfg),
        "input": raw.provenance,
        "labels": list(LABELS),
        "raw_classes": _class_counts(raw.examples),
        "rows": {
            "raw": counts["raw"],
            "dropped_empty": counts["dropped_empty"],
            "dropped_duplicate": dedup.duplicate_rows,
            "dropped_conflicting_label": dedup.tie_rows,
            "dropped_in_earlier_split": sum(cross_split.values()),
            "dropped_not_in_subset": counts["not_in_subset"],
            "kept": kept,
        },
        "deduplication": {
            "key": DEDUP_KEY,
            "removed_by_rule": {rule: counts.get(f"removed_by_rule.{rule}", 0) for rule in RULES},
            "conflict_policy": CONFLICT_POLICY,
            "conflicting_texts": dedup.conflict_groups,
            "resolved_by_majority": dedup.resolved_by_majority,
            "minority_label_rows": dedup.minority_rows,
            "dropped_ties": dedup.tie_groups,
        },
        "split": {
            "method": "official (train/dev/test), texts already in an earlier split dropped"
            if official
            else "whole near-duplicate groups, stratified by label, seeded",
            "seed": cfg.seed,
            "requested_fractions": None
            if official
            else {
                "train": round(1 - cfg.validation_fraction - cfg.test_fraction, 6),
                "validation": cfg.validation_fraction,
                "test": cfg.test_fraction,
            },
            "fractions": {name: round(len(split) / kept, 4) if kept else 0.0 for name, split in splits.items()},
        },
        "splits": {name: {"total": len(split), **_class_counts(split)} for name, split in splits.items()},
        "classes": _class_counts(ex for split in splits.values() for ex in split),
        "files": dict(files),
    }
    if official:
        card["split"]["dropped_in_earlier_split"] = cross_split
    else:
        card["split"]["grouping"] = {
            "near_duplicate": f"character 5-gram Jaccard of the keys >= {cfg.near_duplicate_threshold}",
            "truncated_prefix": "a text ending in a truncation mark whose key starts another text's key",
            "joins": {k.partition(".")[2]: v for k, v in counts.items() if k.startswith("joined_by_rule.")},
            **{k.partition(".")[2]: v for k, v in counts.items() if k.startswith("groups.")},
            "max_heldout_group": MAX_HELDOUT_GROUP,
        }
    card.update(raw.notes)
    return card
