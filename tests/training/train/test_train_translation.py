"""End to end on a fixture corpus: train (smoke preset, shrunk) -> MLflow run -> publish (export, parity, registry)
-> the champion bundle translates with serving's predictor; the run scores the everyday probe with the served
decoder, and the standalone scorer gives the same numbers on the published bundle."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import torch

from serving.contract.bundle import load_bundle
from serving.translation import TranslationPredictor
from tests.conftest import FIXTURES
from training.config import apply_overrides
from training.data.translation import back_translation
from training.data.translation.everyday_probe import probe_rows
from training.data.translation.pairs import TranslationPair
from training.experiments.everyday_probe import score_bundle
from training.tasks import preset, task_named
from training.train.recipes.translation import (
    TranslationRecipe,
    with_back_translation_tag,
    with_short_lines_repeated,
)

FIXTURE = FIXTURES / "seq2seq" / "pairs-es-en.tsv"


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster and immune to OpenMP spin-waits on a busy machine
    yield
    torch.set_num_threads(threads)


def tiny_translation(*overrides: str):
    return apply_overrides(
        preset("translation", "smoke"),
        [
            "data.source=tatoeba",
            f"data.path={FIXTURE}",
            "data.validation_size=10",
            "data.test_size=10",
            "source_tokenizer.vocab_size=150",
            "target_tokenizer.vocab_size=150",
            "model.encoder.embedding_dim=16",
            "model.encoder.hidden_size=16",
            "model.decoder_hidden_size=16",
            "model.target_embedding_dim=16",
            "model.attention_dim=16",
            "optim.max_epochs=2",
            "optim.batch_size=16",
            "decoding.max_output_tokens=16",
            # as translation's `default` trains: a sampled softmax (64 of the 150 target tokens), so the train ->
            # export -> publish path below runs through it; validation and the exported graphs use the full softmax
            "model.sampled_softmax=64",
            *overrides,
        ],
    )


def test_train_and_publish_translation(ws, tmp_path: Path, one_thread) -> None:
    from training.tasks import publish_run, train

    result = train(tiny_translation(), ws, progress=False)

    for key in (
        "test/bleu",
        "test/chrf",
        "test/bleu_multi_ref",
        "test/chrf_multi_ref",
        "test/bleu_greedy",
        "selection_score",
    ):
        assert key in result.metrics
    run = mlflow.MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert "val/bleu" in run.data.metrics and "val/perplexity" in run.data.metrics
    assert run.data.params["model.sampled_softmax"] == "64"
    for key in ("probe/everyday_bleu", "probe/everyday_chrf"):  # logged by every run, beside the test split
        assert 0.0 <= run.data.metrics[key] <= 100.0, key
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    for name in (
        "model/spec.json",
        "model/source_tokenizer.json",
        "model/target_tokenizer.json",
        "predictions/test_hypotheses.jsonl",
        "predictions/test_samples.json",
        "predictions/everyday_probe.jsonl",
        "plots/attention_test_0.png",
    ):
        assert (artifacts / name).is_file(), name
    assert len((artifacts / "predictions/test_hypotheses.jsonl").read_text().splitlines()) == 10
    assert len((artifacts / "predictions/everyday_probe.jsonl").read_text().splitlines()) == len(probe_rows())

    published = publish_run(ws, result.run_id)
    assert published.promoted and published.parity_max_abs_diff <= 1e-4
    bundle_dir = artifacts / "bundles" / published.bundle_digest[:12]
    bundle = load_bundle(bundle_dir, "translation")
    translations = TranslationPredictor(bundle).translate(["El perro come pan.", "La niña ve la casa."])
    assert len(translations) == 2 and all(isinstance(t, str) for t in translations)
    # the published bundle, scored standalone with the run's beam, gives the numbers the run logged
    probe = score_bundle(bundle_dir, tiny_translation().decoding.beam_size)
    assert probe.bleu == pytest.approx(run.data.metrics["probe/everyday_bleu"], abs=1e-6)
    assert probe.chrf == pytest.approx(run.data.metrics["probe/everyday_chrf"], abs=1e-6)


def test_the_gate_rescores_translation_bundles_on_both_runs_splits(ws, tmp_path: Path, one_thread) -> None:
    """Two runs on differently cut data: the gate decodes both bundles (greedy, onnxruntime) on both validation
    splits, leaving out what either trained on, and scores BLEU."""
    from training.registry.gate import decide
    from training.registry.promotion import champion
    from training.tasks import publish_run, train

    first = publish_run(ws, train(tiny_translation("optim.max_epochs=1"), ws, progress=False).run_id)
    second_run = train(tiny_translation("optim.max_epochs=1", "data.validation_size=14"), ws, progress=False)
    client = mlflow.MlflowClient(ws.tracking_uri)
    second = client.get_model_version("translation", publish_run(ws, second_run.run_id).version)
    decision = decide(client, task_named("translation"), second, champion(client, "translation"), ws, min_rows=3)
    assert decision.method == "re-scored", decision.reason
    assert decision.challenger_fingerprint != decision.champion_fingerprint
    assert [s.split for s in decision.splits] == ["challenger", "champion"]
    assert [s.rows + s.left_out for s in decision.splits] == [14, 10]
    assert sum(s.left_out for s in decision.splits) > 0, "a re-cut split: some validation pairs trained the other"
    assert all(0.0 <= score <= 100.0 for score in decision.scores().values()) and len(decision.scores()) == 4
    assert first.version != second.version


def test_short_lines_are_repeated_in_the_training_split_only_as_configured() -> None:
    pairs = [
        TranslationPair(id="a", source="¿A qué hora abre?", target="What time does it open?"),
        TranslationPair(id="b", source="Uno dos tres cuatro cinco seis siete.", target="One two ... seven."),
        TranslationPair(id="c", source="cesta de carrito de compra", target="shopping cart basket"),
    ]
    assert with_short_lines_repeated(pairs, max_words=6, repeat=1) == pairs
    assert [p.id for p in with_short_lines_repeated(pairs, max_words=6, repeat=3)] == ["a", "b", "c", "a", "a"]
    assert [p.id for p in with_short_lines_repeated(pairs, max_words=7, repeat=2)] == ["a", "b", "c", "a", "b"]


def test_back_translated_sources_start_with_the_tag_and_people_s_do_not() -> None:
    rows = [
        TranslationPair(id="a", source="Mañana vamos.", target="Morning, we go.", domain="tweets_bt"),
        TranslationPair(id="b", source="Mañana vamos.", target="Tomorrow we go.", domain="cataclysm"),
        TranslationPair(id="c", source="uno dos tres", target="one two three", domain="wordnet_bt"),
    ]
    sources = [[7, 8], [7, 8], [9, 10, 11]]
    assert with_back_translation_tag(sources, rows, tag=99, max_tokens=3) == [[99, 7, 8], [7, 8], [99, 9, 10]]
    assert sources == [[7, 8], [7, 8], [9, 10, 11]], "the encoded ids are not changed in place"


def test_a_tagged_run_adds_the_tag_to_the_source_tokenizer_and_publishes(ws, tmp_path: Path, one_thread) -> None:
    """The tag is one more source token: the bundle's tokenizer holds it as a special token (never split), the
    encoder's table has its row, and export parity holds; requests without it translate as before."""
    from training.tasks import publish_run, train

    result = train(tiny_translation("back_translation_tag=true", "optim.max_epochs=1"), ws, progress=False)
    published = publish_run(ws, result.run_id)
    assert published.promoted and published.parity_max_abs_diff <= 1e-4
    run = mlflow.MlflowClient(ws.tracking_uri).get_run(result.run_id)
    bundle_dir = Path(run.info.artifact_uri.removeprefix("file://")) / "bundles" / published.bundle_digest[:12]
    bundle = load_bundle(bundle_dir, "translation")
    predictor = TranslationPredictor(bundle)
    tokenizer = predictor.source_tokenizer
    tag = tokenizer.token_to_id(back_translation.TAG)
    assert tag == tokenizer.get_vocab_size() - 1, "added after the fitted vocabulary"
    assert tokenizer.encode(f"{back_translation.TAG} hola", add_special_tokens=False).ids[0] == tag
    assert len(predictor.translate(["El perro come pan."])) == 1


@pytest.mark.parametrize(
    ("finish_domains", "in_finish"),
    [
        ((), lambda domain: not domain.endswith("_bt")),  # none named: people's translations
        (("dialogue", "tweets_bt"), lambda domain: domain in ("dialogue", "tweets_bt")),
    ],
)
def test_a_finish_ends_the_run_on_the_chosen_pairs(ws, finish_domains, in_finish) -> None:
    """`finish_steps=N`: the training loader's batches from step max_steps - N on hold only pairs of the finish's
    domains (people's translations when none are named); the batches before it draw from every pair."""
    overrides = ["optim.max_steps=30", "finish_steps=12"]
    if finish_domains:
        overrides.append("finish_domains=" + ",".join(finish_domains))
    cfg = apply_overrides(preset("translation", "default"), overrides)
    domains = ["cataclysm", "tweets_bt", "wesnoth", "wordnet_bt", "dialogue"]
    pairs = [TranslationPair(id=str(i), source="s", target="t", domain=domains[i % 5]) for i in range(100)]
    recipe = TranslationRecipe(task_named("translation"), cfg, ws, progress=False)
    recipe.splits = {"train": pairs}
    recipe.encoded = {"train": [([1] * (1 + i % 4), [2] * (1 + i % 3)) for i in range(100)]}
    sampler = recipe.loader("train", shuffle=True).batch_sampler
    steps = [batch for _ in range(16) for batch in sampler][:30]  # 2 batches of 64 an epoch
    finishing = [all(in_finish(pairs[i].domain) for i in batch) for batch in steps]
    assert finishing[18:] == [True] * 12 and not any(finishing[:18])
    assert {pairs[i].domain for batch in steps[18:] for i in batch} == {d for d in domains if in_finish(d)}

    recipe.cfg = apply_overrides(cfg, ["finish_domains=fillets"])
    with pytest.raises(ValueError, match=r"no pair of \['fillets'\] to finish on"):
        recipe.loader("train", shuffle=True)


def test_a_run_with_a_finish_trains_and_publishes(ws, one_thread) -> None:
    from training.tasks import publish_run, train

    result = train(tiny_translation("optim.max_steps=6", "finish_steps=3"), ws, progress=False)
    assert mlflow.MlflowClient(ws.tracking_uri).get_run(result.run_id).data.params["finish_steps"] == "3"
    assert publish_run(ws, result.run_id).promoted


def test_concatenated_pairs_join_the_training_split_only(ws, tmp_path: Path) -> None:
    """`concat_pairs=N`: N more training pairs, each two short training sentences joined; the tokenizers are fitted,
    and validation and test are, as without them."""
    without = TranslationRecipe(task_named("translation"), tiny_translation(), ws, progress=False)
    without.prepare()
    without.build(tmp_path / "without")
    recipe = TranslationRecipe(task_named("translation"), tiny_translation("concat_pairs=25"), ws, progress=False)
    recipe.prepare()
    recipe.build(tmp_path / "with")
    train = without.splits["train"]
    assert recipe.splits["train"][: len(train)] == train
    added = recipe.splits["train"][len(train) :]
    assert len(added) == 25 and {p.domain for p in added} == {"concatenated"}
    sources = {p.source for p in train}
    assert all(p.source not in sources and len(p.source.split()) > 1 for p in added)
    for split in ("validation", "test"):
        assert recipe.splits[split] == without.splits[split]
    assert recipe.source_tokenizer.get_vocab() == without.source_tokenizer.get_vocab()
    assert len(recipe.encoded["train"]) == len(train) + 25
