"""A training run's `model/` folder: what `train` saves and what export reads, written and read only here.

    spec.json        task, config (the run's whole config), tokenizer files, vocabulary sizes, labels (sentiment)
    state_dict.pt    the trained weights (torch.save of the model's state dict)
    *tokenizer*.json the fitted tokenizers, copied into the bundle unchanged

The reader returns a typed `RunModel` whose config is parsed once (with the task table's config class), so an
export passes one parsed config on instead of re-reading spec.json in every step. The layout is the one runs have
logged since the first release: older runs still export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from training.config import from_dict, to_dict

SPEC = "spec.json"
WEIGHTS = "state_dict.pt"


@dataclass(frozen=True)
class RunModel:
    """A run's model folder, read back."""

    dir: Path
    task: str
    config: Any  # the task's config class, parsed once
    tokenizers: dict[str, str]  # role ("text", "source", "target") -> file name in `dir`
    vocab_sizes: dict[str, int]  # role -> vocabulary size
    labels: tuple[str, ...] = ()  # classes, in output order (sentiment)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # spec.json as written

    def tokenizer(self, role: str) -> Path:
        return self.dir / self.tokenizers[role]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.dir / WEIGHTS, map_location="cpu")


def write_model_folder(
    out_dir: Path,
    cfg: Any,
    model: torch.nn.Module,
    tokenizers: dict[str, tuple[str, Tokenizer]],
    labels: tuple[str, ...] = (),
) -> None:
    """Save weights, tokenizers (role -> (file name, tokenizer)) and spec.json. Vocabulary sizes are recorded as
    `vocab_size` for a single `text` tokenizer and `<role>_vocab_size` otherwise (the keys runs have always had)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / WEIGHTS)
    spec: dict[str, Any] = {"task": cfg.task}
    if labels:
        spec["labels"] = list(labels)
    for role, (_, tokenizer) in tokenizers.items():
        spec[_size_key(role)] = tokenizer.get_vocab_size()
    spec["config"] = to_dict(cfg)
    spec["tokenizers"] = {role: name for role, (name, _) in tokenizers.items()}
    (out_dir / SPEC).write_text(json.dumps(spec, indent=2))
    for name, tokenizer in tokenizers.values():
        tokenizer.save(str(out_dir / name))


def read_model_folder(model_dir: Path, config_class: type) -> RunModel:
    """Read a run's model folder; `config_class` is the task's (the task table's `config`)."""
    model_dir = Path(model_dir)
    spec = json.loads((model_dir / SPEC).read_text())
    tokenizers = dict(spec["tokenizers"])
    return RunModel(
        dir=model_dir,
        task=spec["task"],
        config=from_dict(config_class, spec["config"]),
        tokenizers=tokenizers,
        vocab_sizes={role: int(spec[_size_key(role)]) for role in tokenizers},
        labels=tuple(spec.get("labels", ())),
        raw=spec,
    )


def _size_key(role: str) -> str:
    return "vocab_size" if role == "text" else f"{role}_vocab_size"
