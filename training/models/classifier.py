"""Many-to-one recurrent classifier: token ids -> class logits."""

from __future__ import annotations

import torch
from torch import nn

from serving.text import PAD_ID
from training.config import RecurrentConfig
from training.models.cells import RecurrentStack


class RecurrentClassifier(nn.Module):
    """Embedding -> recurrent stack -> [final hidden state ; max over time] -> linear.

    The final state is taken at each text's true length (packed sequences / masked steps), and max pooling
    skips padded positions, so padding never changes a prediction. Max pooling also gives every position a
    short gradient path to the loss, which helps the vanilla RNN most.
    """

    def __init__(self, vocab_size: int, num_labels: int, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.encoder = RecurrentStack(
            cfg.cell, cfg.embedding_dim, cfg.hidden_size, cfg.num_layers, cfg.bidirectional, cfg.dropout, cfg.init
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * self.encoder.output_size, num_labels)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] int64, lengths [B] int64 -> logits [B, num_labels]."""
        x = self.dropout(self.embedding(input_ids))
        outputs, state = self.encoder(x, lengths)
        steps = torch.arange(outputs.shape[1], device=outputs.device).unsqueeze(0)
        pad = (steps >= lengths.unsqueeze(1)).unsqueeze(2)
        pooled = outputs.masked_fill(pad, -1e4).max(dim=1).values
        features = torch.cat([self.encoder.last_hidden(state), pooled], dim=1)
        return self.head(self.dropout(features))


class ProbabilityModel(nn.Module):
    """What the exported graph computes: class probabilities (softmax of the classifier's logits)."""

    def __init__(self, classifier: RecurrentClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(input_ids, lengths), dim=-1)
