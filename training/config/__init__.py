"""Typed run configuration: one frozen dataclass tree per task, presets, and `--set key=value` overrides.

A whole config is logged to MLflow (flattened as params, and as config.json), so every run can be reproduced
from its page in the UI. Presets differ only in size and time: `smoke` proves the path in seconds, `default` is
what `make run` trains within its time budget on 2 CPU cores, `full` is for best quality with no time limit.

sections.py     what both tasks use (recurrent stack, optimiser, tokenizer) and the preset names
sentiment.py    SentimentConfig and its presets
translation.py  TranslationConfig and its presets
overrides.py    `--set` parsing, and the dict / flat / JSON forms a config is logged in
workspace.py    where data and the MLflow store live
The task table (training/tasks/) names each task's config class and preset function.
"""

from training.config.overrides import apply_overrides, dumps, flatten, from_dict, to_dict
from training.config.sections import PRESETS, OptimConfig, RecurrentConfig, TokenizerConfig
from training.config.sentiment import (
    DistillConfig,
    EnsembleConfig,
    ExportConfig,
    NgramConfig,
    PretrainConfig,
    SentimentConfig,
    SentimentDataConfig,
    WordVectorsConfig,
)
from training.config.translation import DecodingConfig, Seq2SeqConfig, TranslationConfig, TranslationDataConfig
from training.config.workspace import Workspace

TaskConfig = SentimentConfig | TranslationConfig  # a run's config, whichever task (a new task adds its class here)

__all__ = [
    "PRESETS",
    "DecodingConfig",
    "DistillConfig",
    "EnsembleConfig",
    "ExportConfig",
    "NgramConfig",
    "OptimConfig",
    "PretrainConfig",
    "RecurrentConfig",
    "SentimentConfig",
    "SentimentDataConfig",
    "Seq2SeqConfig",
    "TaskConfig",
    "TokenizerConfig",
    "TranslationConfig",
    "TranslationDataConfig",
    "WordVectorsConfig",
    "Workspace",
    "apply_overrides",
    "dumps",
    "flatten",
    "from_dict",
    "to_dict",
]
