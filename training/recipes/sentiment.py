"""Sentiment recipe for `train`: data, tokenizer, classifier, evaluation and plots."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import lightning as L
import mlflow
import torch

from serving.text import encode_ids
from training.config import SentimentConfig, Workspace, to_dict
from training.data.batching import bucketed_loader, collate_classification
from training.data.sentiment_corpus import LABELS, load_split, prepare_sentiment
from training.modules.sentiment import SentimentModule
from training.plots import close, confusion_matrix_figure
from training.text import fit_tokenizer, save_tokenizer

TOKENIZER_FILE = "tokenizer.json"


class SentimentRecipe:
    monitor = "val/macro_f1"

    def __init__(self, cfg: SentimentConfig, ws: Workspace, progress: bool) -> None:
        self.cfg = cfg
        self.ws = ws
        self.progress = progress

    def prepare(self) -> None:
        self.prepared = prepare_sentiment(self.cfg.data, self.ws, progress=self.progress)

    def build(self, workdir: Path) -> tuple[L.LightningModule, object, object]:
        cfg = self.cfg
        mlflow.log_dict(self.prepared.card, "data/card.json")
        splits = {name: load_split(self.prepared.dir, name) for name in ("train", "validation", "test")}
        mlflow.log_params({f"data.{name}_size": len(rows) for name, rows in splits.items()})
        self.tokenizer = fit_tokenizer(
            (row["text"] for row in splits["train"]), cfg.tokenizer, lowercase=True, tweets=True
        )
        self.tokenizer_path = save_tokenizer(self.tokenizer, workdir / TOKENIZER_FILE)
        label_id = {label: i for i, label in enumerate(LABELS)}
        self.encoded = {
            name: list(
                zip(
                    encode_ids(self.tokenizer, [r["text"] for r in rows], cfg.tokenizer.max_tokens),
                    [label_id[r["label"]] for r in rows],
                )
            )
            for name, rows in splits.items()
        }
        module = SentimentModule(cfg, self.tokenizer.get_vocab_size(), LABELS, self._class_weights())
        return module, self.loader("train", shuffle=True), self.loader("validation", shuffle=False)

    def loader(self, split: str, shuffle: bool):
        items = self.encoded[split]
        return bucketed_loader(
            items,
            [len(ids) for ids, _ in items],
            self.cfg.optim.batch_size,
            shuffle,
            self.cfg.optim.seed,
            collate_classification,
            self.cfg.optim.num_workers,
        )

    def _class_weights(self) -> torch.Tensor | None:
        """Inverse class frequency, normalised to mean 1, so each class weighs the same in the loss."""
        if not self.cfg.class_weighted_loss:
            return None
        counts = Counter(label for _, label in self.encoded["train"])
        total = sum(counts.values())
        return torch.tensor([total / (len(LABELS) * max(1, counts[i])) for i in range(len(LABELS))])

    def evaluate(self, module: SentimentModule, trainer: L.Trainer, workdir: Path) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for stage, split in (("val", "validation"), ("test", "test")):
            run = trainer.validate if stage == "val" else trainer.test
            (values,) = run(module, self.loader(split, shuffle=False), verbose=False)
            metrics.update({f"final_{k}" if stage == "val" else k: float(v) for k, v in values.items()})
            matrix = module.last_confusion[stage].numpy()
            fig = confusion_matrix_figure(matrix, LABELS, f"{split} split ({int(matrix.sum())} texts)")
            mlflow.log_figure(fig, f"plots/confusion_{split}.png")
            close(fig)
            mlflow.log_dict({"labels": list(LABELS), "matrix": matrix.tolist()}, f"metrics/confusion_{split}.json")
        return metrics

    def save_model(self, module: SentimentModule, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(module.model.state_dict(), out_dir / "state_dict.pt")
        spec = {
            "task": "sentiment",
            "labels": list(LABELS),
            "vocab_size": self.tokenizer.get_vocab_size(),
            "config": to_dict(self.cfg),
            "tokenizers": {"text": TOKENIZER_FILE},
        }
        (out_dir / "spec.json").write_text(json.dumps(spec, indent=2))
        save_tokenizer(self.tokenizer, out_dir / TOKENIZER_FILE)
