"""whole_words (training/text.py): lexicon words made single tokens after BPE, saved and loaded as serving loads
them, without changing how the rest of a text is cut."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from training.config import TokenizerConfig
from training.text import fit_tokenizer, save_tokenizer, whole_words

TEXTS = ["the flight was late again and the crew was rude!", "great crew, lovely flight", "my bag is lost"] * 5


def small_tokenizer() -> Tokenizer:
    return fit_tokenizer(iter(TEXTS), TokenizerConfig(vocab_size=120), lowercase=True)


def test_each_word_becomes_one_token_and_survives_a_save_and_load(tmp_path: Path) -> None:
    before = small_tokenizer()
    words = ["flimsy", "sturdy", "lovely", "flights"]
    assert any(len(before.encode(w).ids) > 1 for w in words), "the small vocabulary leaves some in pieces"
    after, added = whole_words(before, words)
    assert added > 0 and after.get_vocab_size() == before.get_vocab_size() + added
    loaded = Tokenizer.from_file(str(save_tokenizer(after, tmp_path / "tokenizer.json")))
    for word in words:
        assert loaded.encode(word).tokens == ["▁" + word]
        assert loaded.encode(f"It Was {word.upper()}!").tokens[-2:] == ["▁" + word, "!"], "normalised as any text is"
    assert whole_words(after, words)[1] == 0, "nothing to add the second time"


def test_other_words_are_cut_as_before_except_a_longer_first_piece() -> None:
    before = small_tokenizer()
    after, _ = whole_words(before, ["flimsy"])
    for text in TEXTS:
        assert after.encode(text).tokens == before.encode(text).tokens
    # a word that begins like "flimsy" may gain a longer first piece, and still spells the same
    for word in ("flims", "flimsier"):
        assert "".join(after.encode(word).tokens) == "".join(before.encode(word).tokens)


def test_a_word_with_characters_the_tokenizer_never_saw_is_left_alone() -> None:
    before = small_tokenizer()
    after, added = whole_words(before, ["xqz", "flimsy"])  # x, q, z are in none of the texts
    assert "[UNK]" in before.encode("xqz").tokens
    assert after.encode("xqz").tokens == before.encode("xqz").tokens
    assert after.encode("flimsy").tokens == ["▁flimsy"] and added > 0
