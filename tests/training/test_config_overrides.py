"""training/config/overrides.py: `--set` overrides land all at once, so a section's checks see the final values of
fields that must change together; and the checks `model.shared_vocabulary` makes."""

from __future__ import annotations

import itertools

import pytest

from training.config import apply_overrides
from training.tasks import preset

SHARED = ["model.shared_vocabulary=true", "source_tokenizer.vocab_size=900", "target_tokenizer.vocab_size=900"]


@pytest.mark.parametrize("order", list(itertools.permutations(SHARED)))
def test_fields_that_change_together_can_be_set_in_any_order(order: tuple[str, ...]) -> None:
    # one at a time, the first two of any order would leave the tokenizers disagreeing and be refused
    cfg = apply_overrides(preset("translation", "smoke"), list(order))
    assert cfg.model.shared_vocabulary and cfg.source_tokenizer.vocab_size == cfg.target_tokenizer.vocab_size == 900


def test_a_shared_vocabulary_refuses_two_tokenizers_that_disagree() -> None:
    with pytest.raises(ValueError, match="must agree on everything but max_tokens"):
        apply_overrides(preset("translation", "smoke"), SHARED[:2])
    # max_tokens may differ: it cuts each side's sentences, it does not shape the tokenizer
    cfg = apply_overrides(preset("translation", "smoke"), [*SHARED, "target_tokenizer.max_tokens=40"])
    assert cfg.source_tokenizer.max_tokens != cfg.target_tokenizer.max_tokens


def test_a_shared_vocabulary_refuses_two_embedding_widths() -> None:
    with pytest.raises(ValueError, match="embedding_dim must equal"):
        apply_overrides(preset("translation", "smoke"), [*SHARED, "model.target_embedding_dim=48"])
    cfg = apply_overrides(
        preset("translation", "smoke"), [*SHARED, "model.target_embedding_dim=48", "model.encoder.embedding_dim=48"]
    )
    assert cfg.model.encoder.embedding_dim == cfg.model.target_embedding_dim == 48


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=3", "model is a section"),
        ("optim.lr.x=3", "'lr' is not a section"),
        ("nope=1", "has no field 'nope'"),
        ("optim.lr", "not of the form key=value"),
        ("optim.lr=fast", "lr must be float"),
    ],
)
def test_bad_overrides_name_what_is_wrong(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_overrides(preset("translation", "smoke"), [override])


def test_the_last_of_two_values_for_one_field_wins() -> None:
    cfg = apply_overrides(preset("translation", "smoke"), ["optim.lr=0.1", "optim.lr=0.2"])
    assert cfg.optim.lr == 0.2


def test_a_finish_counts_steps_of_a_run_sized_in_steps() -> None:
    with pytest.raises(ValueError, match=r"finish_steps counts the last steps of optim\.max_steps"):
        apply_overrides(preset("translation", "smoke"), ["finish_steps=10"])  # smoke is sized in epochs
    with pytest.raises(ValueError, match="finish_steps counts the last steps"):
        apply_overrides(preset("translation", "default"), ["finish_steps=6000"])
    cfg = apply_overrides(preset("translation", "default"), ["finish_steps=1000"])
    assert cfg.finish_steps == 1000 <= cfg.optim.max_steps
