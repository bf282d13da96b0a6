"""A synthetic review set big enough for the promotion gate (>= 50 validation texts after dedupe): each text a
random draw of several word slots, so that texts are neither duplicates nor near-duplicates of each other, and the
label is carried by the sentiment words alone. For end-to-end tests that need a gate to decide, not a score."""

from __future__ import annotations

import csv
import random
from pathlib import Path

SUBJECTS = [
    "the hotel",
    "our room",
    "the staff",
    "the breakfast",
    "the pool",
    "the lobby",
    "the view",
    "the bed",
    "the bathroom",
    "the location",
    "the restaurant",
    "the bar",
    "the check-in",
    "the spa",
    "the parking",
]
POSITIVE = [
    "wonderful",
    "excellent",
    "lovely",
    "superb",
    "delightful",
    "fantastic",
    "charming",
    "spotless",
    "marvellous",
    "brilliant",
    "perfect",
    "pleasant",
]
NEGATIVE = [
    "terrible",
    "awful",
    "filthy",
    "horrible",
    "dreadful",
    "disgusting",
    "appalling",
    "rude",
    "broken",
    "miserable",
    "noisy",
    "shabby",
]
NEUTRAL = [
    "on the second floor",
    "near the station",
    "open until ten",
    "next to the lift",
    "facing the street",
    "on the left side",
    "beside the garden",
    "across the hall",
    "by the entrance",
    "under renovation notice",
]
FILLERS = [
    "we stayed in june",
    "booked it last spring",
    "it was a business trip",
    "came with my sister",
    "second visit this year",
    "travelling with kids",
    "a weekend away",
    "during the festival",
    "for three nights",
    "after a long drive",
    "on our anniversary",
    "with two colleagues",
]


def review(rng: random.Random, label: str) -> str:
    subject, filler = rng.choice(SUBJECTS), rng.choice(FILLERS)
    if label == "positive":
        return f"{subject} was {rng.choice(POSITIVE)} and {rng.choice(POSITIVE)}, {filler}"
    if label == "negative":
        return f"{subject} was {rng.choice(NEGATIVE)} and {rng.choice(NEGATIVE)}, {filler}"
    return f"{subject} is {rng.choice(NEUTRAL)}, {filler}"


def write_reviews(path: Path, n: int = 1500, seed: int = 0) -> Path:
    rng = random.Random(seed)
    seen: set[str] = set()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        while len(seen) < n:
            label = rng.choice(["positive", "negative", "neutral"])
            text = review(rng, label)
            if text not in seen:
                seen.add(text)
                writer.writerow([text, label])
    return path
