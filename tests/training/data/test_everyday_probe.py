"""The everyday probe (training/data/translation/everyday_probe.jsonl): what the file promises (everyday_probe.md),
that none of its sentences can reach a training, validation or test split, and how it is scored."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.config import TranslationDataConfig, Workspace
from training.data.prepared import SPLITS
from training.data.translation import corpus as tc
from training.data.translation.everyday_probe import PROBE, bleu_by_topic, probe_metrics, probe_rows, probe_sources
from training.data.translation.pairs import dedupe_key, word_count

TOPICS = {
    "greetings", "travel", "health", "food", "shopping", "family", "weather", "time", "feelings", "work", "plans",
}  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(root=tmp_path / "ws", tracking_uri="sqlite://")


# --- the file --------------------------------------------------------------------------------------------------


def test_the_probe_is_about_200_short_everyday_sentences_with_one_to_three_references() -> None:
    rows = probe_rows()

    assert 190 <= len(rows) <= 210
    for row in rows:
        assert set(row) == {"es", "en", "topic"}, row
        assert 2 <= word_count(row["es"]) <= 12, row
        assert 1 <= len(row["en"]) <= 3 and all(ref.strip() for ref in row["en"]), row
        assert len(set(row["en"])) == len(row["en"]), f"a reference repeated: {row}"
    topics = Counter(row["topic"] for row in rows)
    assert set(topics) == TOPICS
    assert min(topics.values()) >= 15, topics  # spread over the topics, none a token few


def test_no_probe_sentence_is_there_twice_or_is_a_readme_demo_sentence() -> None:
    keys = [dedupe_key(s) for s in probe_sources()]
    assert len(set(keys)) == len(keys), [k for k, n in Counter(keys).items() if n > 1]
    assert not set(keys) & {dedupe_key(s) for s in tc.DEMO_SENTENCES}


def test_the_card_counts_match_the_file() -> None:
    # given: the table of topic counts in everyday_probe.md
    card = PROBE.with_suffix(".md").read_text(encoding="utf-8")
    topics = Counter(row["topic"] for row in probe_rows())
    for topic, count in topics.items():
        assert f"| {topic} | {count} |" in card, topic
    assert f"| **all** | {sum(topics.values())} |" in card


# --- kept out of the data --------------------------------------------------------------------------------------

OTHER_LINES = [
    "El gato duerme en el sofá.\tThe cat sleeps on the sofa.",
    "Mi vecino toca el piano.\tMy neighbour plays the piano.",
    "El autobús pasa cada hora.\tThe bus comes every hour.",
    "Leo el periódico por la mañana.\tI read the newspaper in the morning.",
    "La tienda de la esquina es nueva.\tThe shop on the corner is new.",
    "Mi tío arregla bicicletas.\tMy uncle repairs bicycles.",
    "El río está muy crecido.\tThe river is very high.",
    "Hay tres sillas en la cocina.\tThere are three chairs in the kitchen.",
    "Ella escribe cartas a mano.\tShe writes letters by hand.",
    "El museo tiene un jardín.\tThe museum has a garden.",
]


def test_probe_sentences_are_dropped_from_every_split_however_they_are_written(
    tmp_path: Path, workspace: Workspace
) -> None:
    # given: a pairs file with ten other sentences and four probe sentences written differently (case, punctuation,
    # spacing), the way a corpus may hold them
    probe = probe_sources()
    variants = [probe[0].upper(), probe[50].strip("¿?¡!.") + "!", "  ".join(probe[100].split()), probe[199].lower()]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join([*OTHER_LINES, *(f"{v}\tsomething" for v in variants)]) + "\n", encoding="utf-8")
    cfg = TranslationDataConfig(source="tatoeba", path=str(path), validation_size=2, test_size=2)

    # when: the data is prepared
    prepared = tc.prepare_translation(cfg, workspace, progress=False)

    # then: the four are dropped and counted as probe sentences, and no split holds any probe sentence
    dropped = prepared.card["counts"]["dropped"]
    assert dropped["probe_sentence"] == 4 and dropped["demo_sentence"] == 0
    every_source = {dedupe_key(p.source) for split in SPLITS for p in prepared.pairs(split)}
    assert len(every_source) == len(OTHER_LINES)
    assert not every_source & {dedupe_key(s) for s in probe}


def test_changing_the_probe_prepares_the_data_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # given: the fingerprint of a preparation, with the probe as it is
    cfg = TranslationDataConfig(source="tatoeba", path=str(tmp_path / "pairs.tsv"))
    identity = {"tatoeba": {"file": "pairs.tsv", "sha256": "0" * 64}}
    before = tc.config_fingerprint(cfg, identity)

    # when: a probe sentence is added
    monkeypatch.setattr(tc, "probe_sources", lambda: [*probe_sources(), "Una frase nueva del probe."])

    # then: prepared data made before no longer matches (it could hold the new sentence)
    assert tc.config_fingerprint(cfg, identity) != before


# --- scoring ---------------------------------------------------------------------------------------------------


def test_any_reference_scores_full_marks_and_wrong_output_scores_low() -> None:
    rows = probe_rows()

    first = probe_metrics([row["en"][0] for row in rows], rows)
    last = probe_metrics([row["en"][-1] for row in rows], rows)  # multi-reference: the last one counts as much
    wrong = probe_metrics(["the the the"] * len(rows), rows)

    assert set(first) == {"probe/everyday_bleu", "probe/everyday_chrf"}
    assert first == pytest.approx({"probe/everyday_bleu": 100.0, "probe/everyday_chrf": 100.0})
    assert last == pytest.approx(first)
    assert wrong["probe/everyday_bleu"] < 1.0 and wrong["probe/everyday_chrf"] < 20.0


def test_scores_need_one_output_per_probe_sentence() -> None:
    with pytest.raises(ValueError, match="hypotheses for"):
        probe_metrics(["one"], probe_rows())


def test_bleu_by_topic_scores_each_topic_on_its_own_rows() -> None:
    rows = probe_rows()
    # given: right outputs for the health rows only
    outputs = [row["en"][0] if row["topic"] == "health" else "no" for row in rows]

    by_topic = bleu_by_topic(outputs, rows)

    assert set(by_topic) == TOPICS
    assert by_topic["health"] == pytest.approx(100.0)
    assert all(bleu < 1.0 for topic, bleu in by_topic.items() if topic != "health")
