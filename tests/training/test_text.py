"""training/text.py: lexicon words made single tokens after BPE (whole_words), saved and loaded as serving loads
them, without changing how the rest of a text is cut; and the Spanish source's options (lowercase, opening marks
apart), which live in the tokenizer file serving loads."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tokenizers import Tokenizer

from training.config import TokenizerConfig, apply_overrides
from training.tasks import preset
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


SPANISH = ["¿Puedes cerrar la ventana?", "puedes cerrar la puerta", "Mañana vamos a la playa.", "mañana no puedes"] * 5


def test_a_word_after_an_opening_mark_keeps_its_word_start_form_in_the_saved_tokenizer(tmp_path: Path) -> None:
    cfg = TokenizerConfig(vocab_size=150, min_frequency=1)
    glued = fit_tokenizer(iter(SPANISH), cfg, lowercase=True)
    assert "▁puedes" not in glued.encode("¿puedes?").tokens, "without the option the word after ¿ is cut apart"
    apart = fit_tokenizer(iter(SPANISH), replace(cfg, opening_marks_apart=True), lowercase=True)
    loaded = Tokenizer.from_file(str(save_tokenizer(apart, tmp_path / "source_tokenizer.json")))
    for text in ("¿puedes?", "¡puedes!", "«puedes»", "(puedes)"):
        assert "▁puedes" in loaded.encode(text).tokens, text
    assert loaded.encode("puedes cerrar").tokens == glued.encode("puedes cerrar").tokens, "other text cut as before"


def test_the_config_can_override_the_tasks_choice_of_case() -> None:
    kept = fit_tokenizer(iter(SPANISH), TokenizerConfig(vocab_size=150, min_frequency=1), lowercase=False)
    assert kept.encode("Mañana").tokens != kept.encode("mañana").tokens
    lowered = fit_tokenizer(
        iter(SPANISH), TokenizerConfig(vocab_size=150, min_frequency=1, lowercase=True), lowercase=False
    )
    assert lowered.encode("Mañana").tokens == lowered.encode("mañana").tokens == ["▁mañana"]
    upper = fit_tokenizer(
        iter(SPANISH), TokenizerConfig(vocab_size=150, min_frequency=1, lowercase=False), lowercase=True
    )
    assert upper.encode("Mañana").tokens != upper.encode("mañana").tokens, "False overrides a task that lower-cases"


def test_the_options_are_set_from_the_command_line() -> None:
    cfg = apply_overrides(
        preset("translation", "smoke"), ["source_tokenizer.lowercase=true", "source_tokenizer.opening_marks_apart=1"]
    )
    assert cfg.source_tokenizer.lowercase is True and cfg.source_tokenizer.opening_marks_apart is True
    assert apply_overrides(cfg, ["source_tokenizer.lowercase=none"]).source_tokenizer.lowercase is None


TRAIN_SMOKE = [sys.executable, "-m", "training", "train", "--task", "translation", "--preset", "smoke"]


def test_the_cli_refuses_opening_marks_apart_on_the_translation_output(tmp_path: Path) -> None:
    # the decoder's tokens become the user's text, where "( ver)" would be a corruption, not a setting
    done = subprocess.run(
        [*TRAIN_SMOKE, "--set", "target_tokenizer.opening_marks_apart=true"],
        capture_output=True,
        text=True,
        env={**os.environ, "MEMORIA_HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode != 0
    assert "target_tokenizer.opening_marks_apart is for inputs only" in done.stderr
    assert not (tmp_path / "data").exists(), "refused before any data was fetched"
