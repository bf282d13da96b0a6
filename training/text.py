"""Fit subword tokenizers on the training split only and save them as one JSON file each.

BPE over SentencePiece-style "▁" word boundaries: decoding joins pieces and turns "▁" back into spaces, so a
translation comes out with its original spacing and punctuation. Everything a text goes through (Unicode
normalisation, lower-casing, tweet placeholders) lives inside the tokenizer file, so serving applies exactly what
training applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from serving.contract.text import SPECIAL_TOKENS, UNK
from training.config import TokenizerConfig

# Tweets: user names and links carry no sentiment but would flood the vocabulary with one-off tokens.
URL_PATTERN = r"(?:https?://|www\.)\S+"
MENTION_PATTERN = r"@\w+"
# Marks that open a phrase and stand glued to the word after them ("¿qué", "«Hola", "(ver"); TokenizerConfig
# .opening_marks_apart sets them apart so that word keeps its "▁" start.
OPENING_MARKS = "¿¡«“(["


def build_normalizer(lowercase: bool, tweets: bool, opening_marks_apart: bool = False) -> normalizers.Normalizer:
    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    if opening_marks_apart:
        # a space after each: the Metaspace pre-tokenizer then starts the next word with "▁" as it would anywhere
        steps += [normalizers.Replace(mark, mark + " ") for mark in OPENING_MARKS]
    if tweets:
        steps += [
            normalizers.Replace(Regex(URL_PATTERN), " http "),
            normalizers.Replace(Regex(MENTION_PATTERN), " @user "),
        ]
    if lowercase:
        steps.append(normalizers.Lowercase())
    steps.append(normalizers.Replace(Regex(r"\s+"), " "))
    steps.append(normalizers.Strip())
    return normalizers.Sequence(steps)


def fit_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, *, lowercase: bool, tweets: bool = False) -> Tokenizer:
    """Train a BPE tokenizer whose first ids are SPECIAL_TOKENS (PAD=0, UNK=1, BOS=2, EOS=3). `lowercase` is the
    task's choice, which `cfg.lowercase` overrides where it is set."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    lowercase = lowercase if cfg.lowercase is None else cfg.lowercase
    tokenizer.normalizer = build_normalizer(lowercase, tweets, cfg.opening_marks_apart)
    # Metaspace marks word starts; Punctuation splits "wept." into "wept" + "." so punctuation is shared.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def whole_words(tokenizer: Tokenizer, words: Iterable[str]) -> tuple[Tokenizer, int]:
    """`tokenizer` with merges appended so that each of `words` (as a text of its own) is one token; returns it and
    the number of tokens added.

    BPE fitted on the tweets spends its vocabulary on the tweets' frequent pieces: at 12,000 tokens only a fifth of
    VADER's words come out whole, and a word in pieces carries no lexicon feature ("flimsy" as "▁fl" "im" "sy").
    Each word's pieces are joined left to right by new merges of the lowest rank, applied after every merge the
    tweets taught: a text's other words tokenize as before, except those that begin with the same pieces, which gain
    a longer first piece. Every new merge joins onto a word-start token, so the chains of two words never cross.
    """
    data = json.loads(tokenizer.to_str())
    vocab, merges = data["model"]["vocab"], data["model"]["merges"]
    added = 0
    for word in words:
        encoding = tokenizer.encode(word, add_special_tokens=False)
        if UNK in encoding.tokens:  # a character the tokenizer never saw: no merge can spell it
            continue
        pieces = encoding.tokens
        joined = pieces[0] if pieces else ""
        for piece in pieces[1:]:
            if joined + piece not in vocab:
                vocab[joined + piece] = len(vocab)
                merges.append([joined, piece])
                added += 1
            joined += piece
    return Tokenizer.from_str(json.dumps(data)), added


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path
