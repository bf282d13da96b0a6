"""Per-token sentiment knowledge from a lexicon the field trusts: VADER's (vaderSentiment 3.3.2, MIT; 7,500 words
and emoticons rated by people from -4 to +4, plus its lists of negators and intensifiers).

The tweets teach the model the words that tweets use; a review of a film or a toaster uses many the tweets never
had. So beside the learned embedding each token carries a few fixed features looked up from the lexicon, the same
for a word the model saw in training and one it never saw: the recurrent layer learns from the tweets how valence
combines with negation, intensity and "but", and applies that to words it only knows from the lexicon.

Features per token id (a table [vocabulary, FEATURES], stored in the model and exported inside its graph, so
serving's inputs do not change): the valence / 4 of the word the token spells (0 for word pieces, punctuation,
unknown words), whether it is a negator ("not", "never", and the pieces "don't" is split into), an intensifier's
signed strength ("very" +, "barely" -), and whether it turns the sentence ("but", "however", "although", "though",
"yet").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from tokenizers import Tokenizer

from training.data.sentiment.records import LABELS

FEATURES = ("valence", "negator", "intensity", "contrast")
CONTRAST_WORDS = frozenset({"but", "however", "although", "though", "yet", "nevertheless", "nonetheless"})
# The tokenizer splits punctuation off, so "don't" reaches the table as "▁don", "'", "t": the whole spelling VADER
# lists never occurs. The stems below are negations and nothing else ("can" and "won" are not: they are words of
# their own), and the lone piece "t" is what follows the apostrophe of every "n't" (can't, won't included).
NEGATING_STEMS = frozenset(
    {"don", "doesn", "didn", "isn", "aren", "wasn", "weren", "hasn", "haven", "hadn", "couldn", "wouldn", "shouldn"}
    | {"mustn", "needn", "mightn", "shan", "ain"}
)
NEGATING_PIECE = "t"
WORD_START = "▁"  # the Metaspace pre-tokenizer's word-start mark (training/text.py)
THRESHOLD = 0.05  # VADER's documented neutral band on the compound score


@dataclass(frozen=True)
class Lexicon:
    """What the features and the in-graph score know: word valences (-4..+4, VADER's scale), negators, boosters."""

    valence: Mapping[str, float]
    negators: frozenset[str]
    boosters: Mapping[str, float]

    def words(self) -> list[str]:
        """Every alphabetic word the lexicon speaks to (rated, negator, booster, contrast), sorted."""
        every = (*self.valence, *self.negators, *self.boosters, *CONTRAST_WORDS)
        return sorted({w for w in every if w.replace("'", "").isalpha()})


def vader_lexicon() -> Lexicon:
    """VADER's: 7,500 rated words and emoticons, its negators and its boosters."""
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

    return Lexicon(SentimentIntensityAnalyzer().lexicon, frozenset(NEGATE), dict(BOOSTER_DICT))


def with_no_as_negator(lexicon: Lexicon) -> Lexicon:
    """`lexicon` with "no" among its negators, as VADER's own rule for "no" reads it (`negate_after_no`): the rules
    then flip a rated word after it and drop its own valence there (training/models/lexicon_score.py)."""
    return replace(lexicon, negators=lexicon.negators | {"no"})


def negators() -> frozenset[str]:
    """VADER's negation words ("not", "never", "nobody", "without", ...)."""
    return vader_lexicon().negators


def token_features(tokenizer: Tokenizer, lexicon: Lexicon | None = None) -> np.ndarray:
    """[vocabulary size, len(FEATURES)] float32: each token's lexicon features (zeros where the token is not a
    whole lexicon word: a word piece, punctuation, a special token). `lexicon` defaults to VADER's."""
    lexicon = lexicon or vader_lexicon()
    valences, negators, boosters = lexicon.valence, lexicon.negators, lexicon.boosters
    table = np.zeros((tokenizer.get_vocab_size(), len(FEATURES)), dtype=np.float32)
    for token, index in tokenizer.get_vocab().items():
        word = token.removeprefix(WORD_START).lower()
        if not word:
            continue
        # a whole word (it starts a word) or an emoticon/punctuation run that VADER rates as it is written
        whole = token.startswith(WORD_START) or not word.isalpha()
        if whole and word in valences:
            table[index, 0] = valences[word] / 4.0
        if whole and (word in negators or word.replace("'", "") in negators):
            table[index, 1] = 1.0
        if (token.startswith(WORD_START) and word in NEGATING_STEMS) or token == NEGATING_PIECE:
            table[index, 1] = 1.0
        if token.startswith(WORD_START) and word in boosters:
            table[index, 2] = boosters[word] / abs(boosters[word]) if boosters[word] else 0.0
        if token.startswith(WORD_START) and word in CONTRAST_WORDS:
            table[index, 3] = 1.0
    return table


def lexicon_words(lexicon: Lexicon | None = None, repeat: int = 2) -> list[str]:
    """The lexicon's alphabetic words, each `repeat` times, to add to the texts a tokenizer is fitted on, so that
    BPE has seen each whole word (`min_frequency` 2 is met). With a vocabulary of 12,000 that keeps only a fifth of
    VADER's words whole (the tweets' own merges come first); `whole_words` (training/text.py) makes every one a
    token. A word left in pieces carries no valence: "masterpiece" must be one token for the table to rate it."""
    return [word for word in (lexicon or vader_lexicon()).words() for _ in range(repeat)]


def coverage(tokenizer: Tokenizer, texts: list[str], table: np.ndarray) -> float:
    """Share of the texts' tokens with a non-zero valence: how much of the input the lexicon speaks to."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    ids = [i for enc in encodings for i in enc.ids]
    return float(np.mean(table[ids, 0] != 0)) if ids else 0.0


# --- VADER as a scorer: the peer (training/peers/vader.py) and the teacher (training/train/distill.py) ------------


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """Compound scores in [-1, 1], one per text."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(text)["compound"] for text in texts])


def three_classes(compound: np.ndarray) -> np.ndarray:
    """Label ids (LABELS order) by VADER's thresholds."""
    names = np.where(compound >= THRESHOLD, "positive", np.where(compound <= -THRESHOLD, "negative", "neutral"))
    return np.array([LABELS.index(name) for name in names])
