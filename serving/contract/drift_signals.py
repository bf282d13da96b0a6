"""The drift signals of one input text, their bins, and the one distance that compares two of their distributions.

Both sides use this module: export counts a data split into the bundle's drift profile (training/export/
drift_profile.py), serving counts its sliding window of live texts (serving/drift.py), so a distance between the
two is drift, not a change of definition. Signals (each a categorical distribution over named bins):

- novelty     share of a text's words that the training split never had (words: lower-cased runs of letters).
              The tokenizer is byte-level BPE, so its unknown-token share is 0 for every input and cannot move;
              words can. Its reference is the VALIDATION split against the training vocabulary: on the training
              split itself every word is known, which would make any live text look novel.
- confidence  the probability of the predicted label (sentiment), reference on the validation split.
- label_mix   the predicted label (sentiment), reference on the validation split, predicted the same way.
- input_tokens tokens per text as the model sees them, reference on the training split.
- language    es / en / unknown from function words (translation: a text that is not Spanish), training split.

Distance: the Jensen-Shannon distance (base 2, so 0 = same distribution, 1 = disjoint). Why not PSI: PSI is
infinite when a bin is empty on one side (a window of short texts has empty bins all the time) and needs an
arbitrary floor; JS is bounded and defined for empty bins, so one threshold reads the same for every signal.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence

PROFILE_FORMAT = "memoria-drift-profile/1"
PROFILE_FILE = "drift_profile.json"  # in the bundle folder, named by the manifest's `drift_profile`

NOVELTY_BOUNDS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CONFIDENCE_BOUNDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
TOKEN_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # as serving/contract/input_profile.py TOKEN_BUCKETS
LANGUAGES = ("es", "en", "unknown")

_WORD = re.compile(r"[^\W\d_]+")  # letters only: numbers and names of things change too fast to mean drift

# Function words of each language, minus those the two share or that are words of the other ("a", "no", "me",
# "he", "e", "o", "son", "con" ...): enough to tell a Spanish sentence from an English one, no model needed.
_SPANISH = frozenset(
    str.split(
        "de la que el en y los se del las un por una su para es al lo como más pero sus le ya este sí porque esta "
        "entre cuando muy sin sobre también hasta hay donde quien desde todo nos durante todos uno les ni contra "
        "otros ese eso ante ellos esto mí antes algunos qué unos yo otro otras otra él tanto esa estos mucho quienes "
        "nada muchos cual poco ella estar estas algunas algo nosotros mis tú te ti tus ellas está están estoy eres "
        "soy fue era ser tiene tengo usted ustedes dónde cómo gracias hola buenos buenas día días bien"
    )
)
_ENGLISH = frozenset(
    str.split(
        "the and of to in is it you that was for on are with as his they be at have this from or had by not but "
        "what we can were all there when your how said an each she which do their if will about then them would "
        "like so these her him has could did my get just i am very really would should been being does"
    )
)


def bin_names(bounds: Sequence[float]) -> list[str]:
    """Prometheus-style bucket names: `le <bound>` for each bound, then `+Inf`."""
    return [f"le {b:g}" for b in bounds] + ["+Inf"]


def bin_index(value: float, bounds: Sequence[float]) -> int:
    """The first bin whose bound `value` does not exceed (Prometheus' rule); the last bin takes the rest."""
    return bisect.bisect_left(bounds, value)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def novelty(text: str, vocabulary: frozenset[str]) -> float:
    """Share of the text's words that are not in `vocabulary`; 0 for a text without words (nothing is new)."""
    found = words(text)
    return sum(w not in vocabulary for w in found) / len(found) if found else 0.0


def novel_words(text: str, vocabulary: frozenset[str]) -> list[str]:
    return [w for w in words(text) if w not in vocabulary]


def language(text: str) -> str:
    """`es`, `en`, or `unknown` (no function word of either, or as many of each)."""
    found = words(text)
    es = sum(w in _SPANISH for w in found)
    en = sum(w in _ENGLISH for w in found)
    return "es" if es > en else "en" if en > es else "unknown"


def counts(indices: Iterable[int], n_bins: int) -> list[int]:
    out = [0] * n_bins
    for i in indices:
        out[i] += 1
    return out


def js_distance(p_counts: Sequence[float], q_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2) between two count vectors over the same bins: in [0, 1]."""
    if len(p_counts) != len(q_counts):
        raise ValueError(f"bins differ: {len(p_counts)} vs {len(q_counts)}")
    p_total, q_total = float(sum(p_counts)), float(sum(q_counts))
    if p_total <= 0 or q_total <= 0:
        raise ValueError("a distribution with no observations has no distance")
    divergence = 0.0
    for pc, qc in zip(p_counts, q_counts, strict=True):
        p, q = pc / p_total, qc / q_total
        m = (p + q) / 2
        if p > 0:
            divergence += p * math.log2(p / m) / 2
        if q > 0:
            divergence += q * math.log2(q / m) / 2
    return math.sqrt(max(0.0, min(1.0, divergence)))
