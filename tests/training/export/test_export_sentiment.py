"""Sentiment export: ONNX vs PyTorch parity for every cell type, at shapes other than the export example."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from serving.contract.bundle import BundleError, load_bundle, write_manifest
from serving.sentiment import SentimentPredictor
from training.config import EnsembleConfig, NgramConfig, RecurrentConfig, TokenizerConfig, to_dict
from training.export.onnx import EXPORT_EXAMPLE, PARITY_SHAPES, ParityError
from training.export.sentiment import sentiment_parity
from training.models.cells import CELL_TYPES
from training.models.classifier import HashedNgrams, ProbabilityModel, RecurrentClassifier, SentimentNet
from training.tasks import export_model_folder, preset
from training.text import fit_tokenizer, save_tokenizer

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["I love this airline, great service!", "Worst flight ever, my bag is lost.", "The flight leaves at 5pm."]


def write_model_dir(path: Path, cell: str, seed: int = 0) -> tuple[RecurrentClassifier, Path]:
    """What a training run logs as its `model/` artifact, with random weights."""
    torch.manual_seed(seed)
    cfg = preset("sentiment", "smoke")
    cfg = replace(cfg, model=RecurrentConfig(cell=cell, embedding_dim=8, hidden_size=8, num_layers=2, dropout=0.0))
    tokenizer = fit_tokenizer(TEXTS * 3, TokenizerConfig(vocab_size=60, min_frequency=1), lowercase=True, tweets=True)
    model = RecurrentClassifier(tokenizer.get_vocab_size(), len(LABELS), cfg.model)
    if cell == "peephole":
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "peephole" in name:
                    p.uniform_(-0.5, 0.5)
    save_model_dir(path, model, tokenizer, cfg)
    return model.eval(), path


def save_model_dir(path: Path, model: torch.nn.Module, tokenizer, cfg) -> None:
    """What a training run logs as its `model/` artifact: weights, tokenizer, spec."""
    path.mkdir(parents=True)
    torch.save(model.state_dict(), path / "state_dict.pt")
    save_tokenizer(tokenizer, path / "tokenizer.json")
    spec = {
        "task": "sentiment",
        "labels": LABELS,
        "vocab_size": tokenizer.get_vocab_size(),
        "config": to_dict(cfg),
        "tokenizers": {"text": "tokenizer.json"},
    }
    (path / "spec.json").write_text(json.dumps(spec))


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_export_matches_pytorch_for_every_cell(tmp_path: Path, cell: str) -> None:
    model, model_dir = write_model_dir(tmp_path / "model", cell)
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={"selection_score": 0.5})

    shapes = [(s["batch"], s["max_length"]) for s in report.parity["shapes"]]
    assert shapes == list(PARITY_SHAPES) and EXPORT_EXAMPLE not in shapes
    assert report.parity["max_abs_diff"] <= 1e-4

    assert_served_like_pytorch(report.bundle_dir, model)


def assert_served_like_pytorch(bundle_dir: Path, model: torch.nn.Module) -> None:
    """The bundle re-opens with serving's loader and the served probabilities are the model's."""
    bundle = load_bundle(bundle_dir, "sentiment")
    served = SentimentPredictor(bundle).probabilities(TEXTS)
    ids, lengths = _encode(bundle, TEXTS)
    with torch.no_grad():
        expected = ProbabilityModel(model)(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)


def _encode(bundle, texts):
    from serving.contract.text import encode_batch, load_tokenizer

    return encode_batch(load_tokenizer(bundle.tokenizer("text")), texts, bundle.manifest["max_input_tokens"])


def test_parity_check_rejects_a_graph_that_disagrees(tmp_path: Path) -> None:
    _, model_dir = write_model_dir(tmp_path / "model", "gru", seed=0)
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={})
    other, _ = write_model_dir(tmp_path / "other", "gru", seed=1)  # different weights, same shapes
    with pytest.raises(ParityError, match="differ"):
        sentiment_parity(ProbabilityModel(other), report.bundle_dir / "classifier.onnx", 60, np.random.default_rng(0))


def test_a_tampered_bundle_is_refused(tmp_path: Path) -> None:
    _, model_dir = write_model_dir(tmp_path / "model", "lstm")
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={})
    # exported signed with the local key pair (tests/conftest.py: MEMORIA_SIGNING_DIR), which serving trusts
    assert (report.bundle_dir / "manifest.sig").is_file() and load_bundle(report.bundle_dir).task == "sentiment"
    graph = report.bundle_dir / "classifier.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(BundleError, match=r"classifier\.onnx has sha256"):
        load_bundle(report.bundle_dir)
    # a manifest rewritten with the altered graph's hash by someone without the key is unsigned: refused too
    write_manifest(report.bundle_dir, {k: v for k, v in report.manifest.items() if k not in ("format", "files")})
    with pytest.raises(BundleError, match=r"unsigned bundle"):
        load_bundle(report.bundle_dir)
    (report.bundle_dir / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(report.bundle_dir)


def write_net_dir(path: Path, **changes: object) -> tuple[SentimentNet, Path]:
    """A run's `model/` folder holding a SentimentNet (n-gram branch, ensemble, offsets, temperature)."""
    torch.manual_seed(3)
    cfg = preset("sentiment", "smoke")
    cfg = replace(cfg, model=RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0), **changes)
    tokenizer = fit_tokenizer(TEXTS * 3, TokenizerConfig(vocab_size=60, min_frequency=1), lowercase=True, tweets=True)
    net = SentimentNet(tokenizer.get_vocab_size(), len(LABELS), cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "ngrams" in name:
                p.normal_(0, 1.0)  # large enough that a wrong hash in the graph would show in the parity check
        net.offsets.copy_(torch.tensor([0.0, -0.3, 0.4]))
        net.temperature.fill_(1.7)
    save_model_dir(path, net, tokenizer, cfg)
    return net.eval(), path


@pytest.mark.parametrize(
    "changes",
    [
        {"ngrams": NgramConfig(buckets=97, orders=(1, 2, 3), dim=6)},
        {"ensemble": EnsembleConfig(cells=("gru", "lstm"))},
        {"ngrams": NgramConfig(buckets=31, orders=(2,), dim=4), "ensemble": EnsembleConfig(members=2)},
        {"ngram_member": NgramConfig(buckets=53, orders=(1, 2), dim=4)},
    ],
    ids=["ngrams", "ensemble", "both", "ngram-member"],
)
def test_ngram_branch_and_ensemble_export_with_parity(tmp_path: Path, changes: dict) -> None:
    net, model_dir = write_net_dir(tmp_path / "model", **changes)
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={})
    assert report.parity["max_abs_diff"] <= 1e-4
    manifest = report.manifest
    assert manifest["calibration"] == {"temperature": pytest.approx(1.7), "offsets": pytest.approx([0.0, -0.3, 0.4])}
    assert len(manifest["architecture"]["members"]) == len(net.members)
    assert (manifest["architecture"]["ngram_member"] is None) == (net.bag is None)
    assert_served_like_pytorch(report.bundle_dir, net)


def test_hashed_ngrams_ignore_padding_and_see_order() -> None:
    torch.manual_seed(0)
    bag = HashedNgrams(vocab_size=40, cfg=NgramConfig(buckets=101, orders=(1, 2, 3), dim=5))
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 9, 9, 9, 9, 9]])
    alone = bag(ids, torch.tensor([4]))
    torch.testing.assert_close(bag(padded, torch.tensor([4, 6]))[0:1], alone)
    # same tokens, other order: the unigrams agree, the bigrams and trigrams do not
    assert not torch.allclose(bag(torch.tensor([[8, 7, 6, 5]]), torch.tensor([4])), alone)
    # a one-token text has no bigram: still defined (mean of its unigram)
    torch.testing.assert_close(bag(torch.tensor([[5]]), torch.tensor([1])), bag.table(torch.tensor([5])))


def test_temperature_in_the_graph_keeps_every_argmax(tmp_path: Path) -> None:
    net, _ = write_net_dir(tmp_path / "model")
    ids, lengths = torch.randint(4, 60, (64, 9)), torch.randint(1, 10, (64,))
    with torch.no_grad():
        hot = net(ids, lengths)
        net.temperature.fill_(0.3)
        cold = net(ids, lengths)
    assert torch.equal(hot.argmax(1), cold.argmax(1))
    assert not torch.allclose(hot, cold)
