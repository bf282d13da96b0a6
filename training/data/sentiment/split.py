"""From raw examples to splits: clean the text, drop empty texts, de-duplicate, optional stratified subset, split.

De-duplication comes BEFORE splitting, on the key of training/data/sentiment/dedupe.py (the text as the tokenizer
sees it, retweet prefixes and truncation marks removed): the same tweet retweeted, or posted with another t.co
link, in train and test would reward memorising. Duplicates whose labels disagree keep the majority label; a tie
is dropped, since either label would be noise. Near-duplicates (and cut-off copies) are not merged but grouped, and
the split assigns whole groups. A source with an official split (sst) keeps it.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from training.config import SentimentDataConfig
from training.data.prepared import SPLITS
from training.data.sentiment.dedupe import (
    dedupe_key,
    group_sizes,
    group_texts,
    grouped_stratified_split,
    removed_per_rule,
)
from training.data.sentiment.records import LABELS, DedupStats, Example, RawCorpus

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Control characters out (C1 ones survive some broken decodings), one space between words, none at the ends
    (tweets carry \\r, tabs and non-breaking spaces)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _clean_all(examples: Iterable[Example]) -> tuple[list[Example], Counter[str]]:
    counts: Counter[str] = Counter()
    kept = []
    for ex in examples:
        counts["raw"] += 1
        text = clean_text(ex.text)
        if text:
            kept.append(Example(text, ex.label))
        else:
            counts["dropped_empty"] += 1
    return kept, counts


def deduplicate(examples: Sequence[Example]) -> tuple[list[Example], DedupStats]:
    """One example per `dedupe_key`, in first-seen order, with the first text and the majority label; texts whose
    labels tie are dropped."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[dedupe_key(ex.text)].append(ex)
    stats = DedupStats()
    kept = []
    for group in groups.values():
        votes = Counter(ex.label for ex in group).most_common()
        if len(votes) > 1:
            stats.conflict_groups += 1
            if votes[0][1] == votes[1][1]:
                stats.tie_groups += 1
                stats.tie_rows += len(group)
                continue
            stats.resolved_by_majority += 1
            stats.minority_rows += len(group) - votes[0][1]
        stats.duplicate_rows += len(group) - 1
        kept.append(Example(group[0].text, votes[0][0]))
    return kept, stats


def _rng(purpose: str, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across runs and Python versions, and each purpose
    # gets its own stream, so changing the subset size does not reshuffle the split of the examples kept.
    return random.Random(f"memoria-sentiment:{purpose}:{seed}")


def _by_label(examples: Iterable[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {label: [] for label in LABELS}
    for ex in examples:
        groups[ex.label].append(ex)
    return groups


def _allocate(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Split `total` over classes in proportion to `sizes` (largest remainder: sums exactly to `total`)."""
    whole = sum(sizes.values())
    quotas = {label: total * size / whole for label, size in sizes.items()}
    counts = {label: int(q) for label, q in quotas.items()}
    for label in sorted(quotas, key=lambda lb: (-(quotas[lb] - counts[lb]), LABELS.index(lb)))[
        : total - sum(counts.values())
    ]:
        counts[label] += 1
    return counts


def stratified_subset(examples: Sequence[Example], size: int, seed: int) -> list[Example]:
    """`size` examples with the class proportions of `examples` (all of them if size <= 0 or too large)."""
    if size <= 0 or size >= len(examples):
        return list(examples)
    groups = _by_label(examples)
    rng = _rng("subset", seed)
    chosen = []
    for label, n in _allocate({lb: len(g) for lb, g in groups.items()}, size).items():
        chosen.extend(rng.sample(groups[label], n))
    rng.shuffle(chosen)
    return chosen


def split_corpus(raw: RawCorpus, cfg: SentimentDataConfig) -> tuple[dict[str, list[Example]], Counter[str], DedupStats]:
    """Clean, de-duplicate, subset and split `raw` (keeping its official split if it has one); also returns the
    row counts, de-duplication and grouping figures for the card."""
    if raw.splits is not None:
        return _official_splits(raw.splits, cfg.max_examples, cfg.seed)
    cleaned, counts = _clean_all(raw.examples)
    counts.update({f"removed_by_rule.{k}": v for k, v in removed_per_rule([ex.text for ex in cleaned]).items()})
    unique, dedup = deduplicate(cleaned)
    subset = stratified_subset(unique, cfg.max_examples, cfg.seed)
    counts["not_in_subset"] = len(unique) - len(subset)
    return group_split(subset, cfg, counts), counts, dedup


def group_split(
    examples: Sequence[Example], cfg: SentimentDataConfig, counts: Counter[str]
) -> dict[str, list[Example]]:
    """Stratified split of whole near-duplicate groups; the grouping figures go into `counts`."""
    if cfg.validation_fraction < 0 or cfg.test_fraction < 0 or cfg.validation_fraction + cfg.test_fraction >= 1:
        raise ValueError(
            f"validation_fraction ({cfg.validation_fraction}) and test_fraction ({cfg.test_fraction}) must be >= 0 "
            "and leave some data for training"
        )
    groups, joins = group_texts([ex.text for ex in examples], cfg.near_duplicate_threshold)
    counts.update({f"joined_by_rule.{k}": v for k, v in joins.items()})
    counts.update({f"groups.{k}": v for k, v in group_sizes(groups).items()})
    fractions = {"test": cfg.test_fraction, "validation": cfg.validation_fraction}
    indices = grouped_stratified_split([ex.label for ex in examples], groups, fractions, cfg.seed)
    return {name: [examples[i] for i in indices[name]] for name in SPLITS}


def _official_splits(
    raw_splits: Mapping[str, list[Example]], max_examples: int, seed: int
) -> tuple[dict[str, list[Example]], Counter[str], DedupStats]:
    """Clean and de-duplicate each official split, drop texts an earlier split already holds, and subset each split
    in proportion when `max_examples` asks for fewer."""
    counts: Counter[str] = Counter()
    stats = DedupStats()
    seen: set[str] = set()
    splits = {}
    for name in SPLITS:
        cleaned, split_counts = _clean_all(raw_splits[name])
        counts.update(split_counts)
        unique, split_stats = deduplicate(cleaned)
        stats.add(split_stats)
        fresh = [ex for ex in unique if dedupe_key(ex.text) not in seen]
        counts[f"dropped_in_earlier_split.{name}"] = len(unique) - len(fresh)
        seen.update(dedupe_key(ex.text) for ex in fresh)
        splits[name] = fresh
    total = sum(map(len, splits.values()))
    if 0 < max_examples < total:
        sizes = _allocate({name: len(split) for name, split in splits.items()}, max_examples)
        splits = {name: stratified_subset(split, sizes[name], seed) for name, split in splits.items()}
    counts["not_in_subset"] = total - sum(map(len, splits.values()))
    return splits, counts, stats
