"""What a negator alone says about a tweet's label, as a second expert the members learn beside (`negation_debias`).

In the airline tweets a negator nearly always comes with a complaint (a negated negative word stands in 455
negative tweets and 137 positive ones), so every member learns "a negator means negative", and reads "We have never
had a bad meal here" or "no complaints" as complaints whatever the lexicon features and VADER's rules say about
scope (docs/measured.md, "Sentiment off the tweets"). Rewriting and repeating tweets did not unlearn it. A product
of experts does it in the loss instead (Clark et al., 2019; He et al., 2019): a bias-only model that sees nothing but
the number of negation cues in a text gives log-odds per label, these are added to each member's logits during
training, and the members therefore only have to explain what that model cannot. At test time and when served, the
members speak alone, without the skew the bias-only model absorbed.

The bias-only model is a count table over the training split: log P(label | cue) - log P(label), for texts with and
without a negation cue, so the class prior itself stays with the members. Two groups, not a count: "don't" reaches
the table as two flagged pieces, "never" as one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from training.data.sentiment.lexicon import FEATURES, WORD_START

# Words that negate without being VADER negators (VADER rates "no" as a word of its own and lists neither "nobody"
# nor "hardly"); a cue is any of these or a token the lexicon flags as a negator (the pieces of "don't" included).
EXTRA_CUES = ("no", "nobody", "hardly")
GROUPS = 2  # texts without and with a cue


def negation_cues(lexicon_table: np.ndarray, tokenizer: Tokenizer) -> np.ndarray:
    """[vocab] bool: the tokens that count as a negation cue."""
    cues = lexicon_table[:, FEATURES.index("negator")] != 0
    for word in EXTRA_CUES:
        token = tokenizer.token_to_id(WORD_START + word)
        if token is not None:
            cues[token] = True
    return cues


def cue_groups(ids: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
    """[B] the group of each padded text of `ids` [B, T]: 1 where it holds a cue token, else 0 (padding is never a
    cue)."""
    return cues[ids].any(dim=1).long()


def label_log_odds(groups: Sequence[int], labels: Sequence[int], num_labels: int) -> np.ndarray:
    """[GROUPS, num_labels] log P(label | group) - log P(label) over the training split, each count plus one so
    that a group or label with few texts stays near zero."""
    counts = np.ones((GROUPS, num_labels))
    np.add.at(counts, (np.asarray(groups), np.asarray(labels)), 1)
    conditional = counts / counts.sum(axis=1, keepdims=True)
    prior = counts.sum(axis=0) / counts.sum()
    return np.log(conditional) - np.log(prior)
