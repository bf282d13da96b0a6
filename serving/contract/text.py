"""Text -> token ids, shared by training and serving so both see exactly the same ids.

Tokenizers are Hugging Face `tokenizers` files (Rust; no torch). Training fits them (training/text.py) with the
special tokens below first, so their ids are fixed by position and need no lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))


def load_tokenizer(path: str | Path, data: bytes | None = None) -> Tokenizer:
    """The tokenizer file at `path`, or built from `data` (its bytes, already checked: serving passes
    `bundle.read_verified`, so the tokenizer used is the one whose hash was verified, not whatever is on disk now)."""
    tokenizer = Tokenizer.from_file(str(path)) if data is None else Tokenizer.from_str(data.decode("utf-8"))
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected_id:
            raise ValueError(f"{path}: special token {token} must have id {expected_id}")
    return tokenizer


def encode_ids(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids per text, cut to `max_tokens`; a text with no tokens becomes [UNK] (never an empty sequence,
    which recurrent layers cannot take)."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [(enc.ids[:max_tokens] or [UNK_ID]) for enc in encodings]


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad with PAD_ID. Returns ids int64 [B, T] and lengths int64 [B]."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), int(lengths.max(initial=1))), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    return ids, lengths


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> (ids [B, T], lengths [B]), padded to the longest text in the batch."""
    return pad_batch(encode_ids(tokenizer, texts, max_tokens))


def decode_ids(tokenizer: Tokenizer, ids: Sequence[int]) -> str:
    """Ids -> text, stopping at EOS and skipping special tokens."""
    out: list[int] = []
    for i in ids:
        if i == EOS_ID:
            break
        if i >= len(SPECIAL_TOKENS):
            out.append(int(i))
    return tokenizer.decode(out, skip_special_tokens=True).strip()
