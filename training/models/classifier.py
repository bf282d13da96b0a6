"""Many-to-one recurrent classifier: token ids -> class logits; optionally beside a bag of hashed n-grams, and
optionally several of them averaged into one model.

Everything here exports to one ONNX graph with the same inputs (`input_ids`, `lengths`), so serving never knows
which variant it runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from serving.contract.text import PAD_ID
from training.config import NgramConfig, RecurrentConfig, SentimentConfig
from training.model_folder import RunModel
from training.models.cells import RecurrentStack, init_embedding
from training.models.lexicon_score import VALENCE_SCALE, LexiconScore, token_valence

LEXICON_FEATURES = 4  # training/data/sentiment/lexicon.py FEATURES: valence, negator, intensity, contrast
WORD_VECTOR_DIMENSIONS = 100  # training/data/sentiment/word_vectors.py DIMENSIONS (GloVe 6B, 100d)
# Multipliers of the n-gram hash (distinct odd primes): ids < 2^17 times these stay far below 2^63.
_HASH_PRIMES = (1, 1_000_003, 999_999_937, 2_147_483_647)


class HashedNgrams(nn.Module):
    """fastText's bag of n-grams (Joulin et al., 2017) over subword ids: the mean embedding of every unigram (own
    row per token) and of every 2..n-gram (hashed into `buckets` rows). A linear view of which pieces occur, that the
    recurrent encoder, reading in order, learns slowly from ~30k texts; the same signal that makes the TF-IDF peer
    strong. The hash is computed in the graph from `input_ids`, so serving's inputs do not change."""

    def __init__(self, vocab_size: int, cfg: NgramConfig) -> None:
        super().__init__()
        if any(n < 1 or n > len(_HASH_PRIMES) for n in cfg.orders):
            raise ValueError(f"ngrams.orders must lie in 1..{len(_HASH_PRIMES)}, got {cfg.orders}")
        self.orders = tuple(sorted(set(cfg.orders)))
        self.vocab_size = vocab_size
        self.buckets = cfg.buckets
        self.table = nn.Embedding(vocab_size + cfg.buckets, cfg.dim)
        nn.init.normal_(self.table.weight, std=0.05)
        self.output_size = cfg.dim

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T], lengths [B] -> [B, dim]: mean over the n-grams that lie inside each text."""
        steps = input_ids.shape[1]
        positions = torch.arange(steps, device=input_ids.device).unsqueeze(0)  # [1, T]
        total: torch.Tensor | None = None
        count = torch.zeros_like(lengths, dtype=torch.float32)
        for n in self.orders:
            if n == 1:
                rows = input_ids
            else:
                # Pad n-1 steps so every start position has a window, whatever T is (no branch on the traced shape).
                padded = nn.functional.pad(input_ids, (0, n - 1), value=PAD_ID)
                key = padded[:, 0:steps] * _HASH_PRIMES[0]
                for k in range(1, n):
                    key = key + padded[:, k : k + steps] * _HASH_PRIMES[k]
                rows = self.vocab_size + torch.remainder(key, self.buckets)
            inside = (positions + n <= lengths.unsqueeze(1)).to(torch.float32)  # [B, T]
            summed = (self.table(rows) * inside.unsqueeze(2)).sum(dim=1)
            total = summed if total is None else total + summed
            count = count + inside.sum(dim=1)
        return total / count.clamp(min=1.0).unsqueeze(1)


class NgramBagClassifier(nn.Module):
    """A linear ensemble member: the bag of hashed n-grams (HashedNgrams) -> dropout -> linear, nothing recurrent.

    The TF-IDF peer's kind of model inside the graph, computed from `input_ids`, so serving's inputs do not change.
    Tried because averaging `full`'s probabilities with the peer's lifts test macro-F1 (training/experiments/
    peer_fusion.py); it did not carry over (docs/measured.md, "Sentiment off the tweets": trained beside the recurrent
    members its validation curve fell behind from epoch 3 and it cost `full` 0.75 point on test), so no preset has
    it."""

    def __init__(self, vocab_size: int, num_labels: int, cfg: NgramConfig, dropout: float) -> None:
        super().__init__()
        self.ngrams = HashedNgrams(vocab_size, cfg)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.ngrams.output_size, num_labels)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] int64, lengths [B] int64 -> logits [B, num_labels]."""
        return self.head(self.dropout(self.ngrams(input_ids, lengths)))


class RecurrentClassifier(nn.Module):
    """Embedding -> recurrent stack -> [final hidden state ; max over time (; n-gram bag)] -> linear.

    The final state is taken at each text's true length (packed sequences / masked steps), and max pooling
    skips padded positions, so padding never changes a prediction. Max pooling also gives every position a
    short gradient path to the loss, which helps the vanilla RNN most.
    """

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        cfg: RecurrentConfig,
        ngrams: NgramConfig | None = None,
        lexicon_features: int = 0,
        lexicon_score: bool = False,
        score_alone: float = 0.0,
        rule_valence: bool = False,
        word_vectors: torch.Tensor | None = None,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        # Fixed word vectors per token (training/data/sentiment/word_vectors.py), [vocabulary, dimensions]: a buffer
        # the ensemble's members share (one tensor, so one table in the checkpoint and in the graph)
        self.word_vectors: torch.Tensor | None
        if word_vectors is not None:
            self.register_buffer("word_vectors", word_vectors)
        else:
            self.word_vectors = None
        vector_dim = 0 if word_vectors is None else word_vectors.shape[1]
        # Fixed per-token lexicon features (training/data/sentiment/lexicon.py) beside the learned embedding: a
        # buffer, not a parameter (set once from the tokenizer, saved with the weights, a constant in the graph).
        self.lexicon: torch.Tensor | None
        if lexicon_features:
            self.register_buffer("lexicon", torch.zeros(vocab_size, lexicon_features))
        else:
            self.lexicon = None
        if rule_valence and not lexicon_features:
            raise ValueError("rule_valence=true needs lexicon=true: it is computed from the lexicon features")
        self.rule_valence = rule_valence
        self.encoder = RecurrentStack(
            cfg.cell,
            cfg.embedding_dim + vector_dim + lexicon_features + int(rule_valence),
            cfg.hidden_size,
            cfg.num_layers,
            cfg.bidirectional,
            cfg.dropout,
            cfg.init,
        )
        init_embedding(self.embedding, cfg.embedding_init)  # after the stack: the same seed, the same stack weights
        self.ngrams = HashedNgrams(vocab_size, ngrams) if ngrams is not None and ngrams.buckets > 0 else None
        if lexicon_score and not lexicon_features:
            raise ValueError("lexicon_score=true needs lexicon=true: the score is computed from the lexicon features")
        # VADER's rules over the same features (training/models/lexicon_score.py), beside the pooled states: the head
        # learns how far to trust them, outside the dropout that regularises the learned features
        self.score = LexiconScore() if lexicon_score else None
        if score_alone and self.score is None:
            raise ValueError("score_alone needs lexicon_score=true: it is the score the head then reads alone")
        self.score_alone = score_alone
        self.dropout = nn.Dropout(cfg.dropout)
        features = 2 * self.encoder.output_size + (self.ngrams.output_size if self.ngrams is not None else 0)
        self.head = nn.Linear(features + (LexiconScore.output_size if self.score is not None else 0), num_labels)

    def inputs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """What the recurrent stack reads at each step: the embedding (dropout in training), and the token's
        lexicon features where the model has them (and its valence after VADER's rules, on the table's scale)."""
        return self.with_lexicon(input_ids, self.dropout(self.embedding(input_ids)))

    def with_lexicon(self, input_ids: torch.Tensor, embedded: torch.Tensor, neighbours: bool = True) -> torch.Tensor:
        """`embedded` [B, T, E] of `input_ids` with the fixed per-token inputs appended: the one place that builds the
        recurrent stack's input, for fine-tuning, serving and language-model pretraining (training/train/pretrain.py,
        which brings its own dropout), with the token's word vector first where the model has them.

        The rule valence reads a token's neighbours (a negator up to three tokens before it, a "but" anywhere after
        it). A language model predicts those neighbours, so `neighbours=False` puts zeros in that input instead: the
        backward direction would otherwise learn that a flipped valence at t means a negator at t-1."""
        if self.word_vectors is not None:
            embedded = torch.cat([embedded, self.word_vectors[input_ids]], dim=2)
        if self.lexicon is None:
            return embedded
        features = self.lexicon[input_ids]
        parts = [embedded, features]
        if self.rule_valence:
            valence = token_valence(features) / VALENCE_SCALE if neighbours else torch.zeros_like(features[..., 0])
            parts.append(valence.unsqueeze(2))
        return torch.cat(parts, dim=2)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] int64, lengths [B] int64 -> logits [B, num_labels]."""
        outputs, state = self.encoder.run_from_zero(self.inputs(input_ids), lengths)
        steps = torch.arange(outputs.shape[1], device=outputs.device).unsqueeze(0)
        pad = (steps >= lengths.unsqueeze(1)).unsqueeze(2)
        pooled = outputs.masked_fill(pad, -1e4).max(dim=1).values
        return self.head_logits(self.encoder.last_hidden(state), pooled, input_ids, lengths)

    def head_logits(
        self, last: torch.Tensor, pooled: torch.Tensor, input_ids: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The head over the final state and the max-pooled states [B, 2 x encoder output], with the n-gram bag and
        the lexicon score where the model has them (one place, also for the gradient-flow measurement)."""
        parts = [last, pooled]
        if self.ngrams is not None:
            parts.append(self.ngrams(input_ids, lengths))
        features = self.dropout(torch.cat(parts, dim=1))
        if self.training and self.score_alone > 0:
            # training only: for this share of the examples the head sees the lexicon score and nothing learned, so
            # it learns to read the score on its own (as it must where the learned features know nothing: reviews)
            kept = torch.rand(features.shape[0], 1, device=features.device) >= self.score_alone
            scale = 1.0 / (1.0 - self.score_alone) if self.score_alone < 1.0 else 0.0  # (1.0: nothing is kept)
            features = features * kept * scale
        if self.score is not None and self.lexicon is not None:
            features = torch.cat([features, self.score(self.lexicon[input_ids])], dim=1)
        return self.head(features)


def member_cells(cfg: SentimentConfig) -> tuple[str, ...]:
    """The cell of each ensemble member: `ensemble.cells` if given, else `model.cell` `ensemble.members` times."""
    return tuple(cfg.ensemble.cells) or (cfg.model.cell,) * max(1, cfg.ensemble.members)


class SentimentNet(nn.Module):
    """One classifier, or several averaged in probability space (each trained on its own loss, from its own
    initialisation), then the decision offsets and the calibration temperature.

    `forward` returns (log p + offsets) / temperature, where p is the members' mean probability (for one member,
    log p is its logits up to a constant). Offsets (one per class, tuned on validation for macro-F1) move the
    decision; the temperature (fitted on validation, training/metrics/calibration.py) only sharpens or softens, so the
    argmax
    of the softmax never changes with it. Both are buffers: saved with the weights, exported in the graph."""

    def __init__(self, vocab_size: int, num_labels: int, cfg: SentimentConfig) -> None:
        super().__init__()
        features = LEXICON_FEATURES if cfg.lexicon else 0
        # one table for every member (set_word_vectors fills it in place)
        vectors = torch.zeros(vocab_size, WORD_VECTOR_DIMENSIONS) if cfg.word_vectors.use else None
        self.members = nn.ModuleList(
            RecurrentClassifier(
                vocab_size,
                num_labels,
                replace(cfg.model, cell=cell),
                cfg.ngrams,
                features,
                cfg.lexicon_score,
                cfg.score_alone,
                cfg.rule_valence,
                vectors,
            )
            for cell in member_cells(cfg)
        )
        # beside the recurrent members, averaged with them: a linear n-gram member (`ngram_member.buckets` > 0)
        self.bag = (
            NgramBagClassifier(vocab_size, num_labels, cfg.ngram_member, cfg.model.dropout)
            if cfg.ngram_member.buckets > 0
            else None
        )
        self.register_buffer("offsets", torch.zeros(num_labels))
        self.register_buffer("temperature", torch.ones(()))

    def set_lexicon(self, table: torch.Tensor) -> None:
        """Every member's lexicon features ([vocabulary, LEXICON_FEATURES]), from the run's tokenizer."""
        for member in self.members:
            member.lexicon.copy_(table)

    def set_word_vectors(self, table: torch.Tensor) -> None:
        """The members' one word-vector table ([vocabulary, WORD_VECTOR_DIMENSIONS]), from the run's tokenizer."""
        self.members[0].word_vectors.copy_(table)

    def zero_embeddings(self, token_ids: torch.Tensor) -> None:
        """Every member's embedding rows of `token_ids` set to zero (tokens the training texts never hold)."""
        with torch.no_grad():
            for member in self.members:
                member.embedding.weight[token_ids] = 0.0

    def member_logits(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Each member's logits, the recurrent ones first, then the n-gram member where the model has one."""
        logits = [member(input_ids, lengths) for member in self.members]
        if self.bag is not None:
            logits.append(self.bag(input_ids, lengths))
        return logits

    def combine(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """Members' logits -> the uncalibrated, unshifted log-probability of the model."""
        if len(logits) == 1:
            return logits[0]
        probs = torch.stack([torch.softmax(z, dim=-1) for z in logits]).mean(dim=0)
        return torch.log(probs.clamp(min=1e-12))

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raw = self.combine(self.member_logits(input_ids, lengths))
        return (raw + self.offsets) / self.temperature


class ProbabilityModel(nn.Module):
    """What the exported graph computes: class probabilities (softmax of the model's calibrated logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(input_ids, lengths), dim=-1)


def load_sentiment_net(model: RunModel) -> SentimentNet:
    """The trained model of a run's model folder (training/model_folder.py), in eval mode."""
    net = SentimentNet(model.vocab_sizes["text"], len(model.labels), model.config)
    state = model.state_dict()
    if not any(key.startswith("members.") for key in state):  # a run from before ensembles: one bare classifier
        state = {f"members.0.{key}": value for key, value in state.items()}
        state.update(offsets=net.offsets, temperature=net.temperature)
    net.load_state_dict(state)
    return net.eval()


def _describe_ngrams(bag: HashedNgrams | None) -> dict[str, Any] | None:
    return None if bag is None else {"orders": list(bag.orders), "buckets": bag.buckets, "dim": bag.output_size}


def describe(net: SentimentNet) -> dict[str, Any]:
    """What the exported graph holds, for the bundle's manifest and the model card."""
    first = net.members[0]
    return {
        "members": [m.encoder.cell for m in net.members],
        "ngram_member": _describe_ngrams(None if net.bag is None else net.bag.ngrams),
        "ngram_branch": _describe_ngrams(first.ngrams),
        "parameters": sum(p.numel() for p in net.parameters()),
        "lexicon_features": 0 if first.lexicon is None else int(first.lexicon.shape[1]),
        "lexicon_score": first.score is not None,
        "rule_valence": first.rule_valence,
        "word_vectors": 0 if first.word_vectors is None else int(first.word_vectors.shape[1]),
    }
