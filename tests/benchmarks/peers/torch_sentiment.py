"""The sentiment champion's PyTorch weights, run eagerly: what serving would be without the ONNX export.

Tokenized with the bundle's own tokenizer and length cap, so the only difference to memoria is the runtime and
the serving layout. torch gets every core (torch.set_num_threads), as a torch user's server would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from serving.contract.bundle import Bundle
from serving.contract.text import encode_batch, load_tokenizer
from training.config import SentimentConfig
from training.model_folder import read_model_folder
from training.models.classifier import ProbabilityModel, load_sentiment_net


class TorchSentiment:
    def __init__(self, model_dir: str | Path, bundle: Bundle) -> None:
        torch.set_num_threads(os.cpu_count() or 1)
        model_dir = Path(model_dir)
        folder = read_model_folder(model_dir, SentimentConfig)
        self.model = ProbabilityModel(load_sentiment_net(folder)).eval()
        self.labels: list[str] = list(folder.labels)
        self.tokenizer = load_tokenizer(bundle.tokenizer("text"))
        self.max_tokens = int(bundle.manifest["max_input_tokens"])

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        ids, lengths = encode_batch(self.tokenizer, texts, self.max_tokens)
        with torch.inference_mode():
            probs = self.model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        return [
            {"label": self.labels[int(row.argmax())], "scores": dict(zip(self.labels, map(float, row), strict=True))}
            for row in probs
        ]
