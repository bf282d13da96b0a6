"""Translation export: encoder + decoder-step graphs match PyTorch for every cell type at shapes other than the
export example, greedy outputs are identical, tampered graphs are refused, and the bundle serves."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from serving.contract.bundle import load_bundle
from serving.contract.text import encode_batch
from serving.translation import TranslationPredictor
from tests.conftest import FIXTURES
from training.config import RecurrentConfig, TokenizerConfig, to_dict
from training.export.onnx import EXPORT_EXAMPLE, PARITY_SHAPES, ParityError
from training.export.translation import export_graphs, translation_parity
from training.models.seq2seq import Seq2Seq, greedy_decode
from training.tasks import export_model_folder, preset
from training.text import fit_tokenizer, save_tokenizer

FIXTURE = FIXTURES / "seq2seq" / "pairs-es-en.tsv"
PAIRS = [line.split("\t") for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
TEXTS = ["El perro come pan.", "Mi hermano busca un libro.", "La mujer ve la casa y el camino.", ""]

# (encoder cell, decoder cell, bidirectional encoder, layers): every cell on both sides, both directions.
CASES = [
    ("rnn", "rnn", False, 1),
    ("lstm", "lstm", True, 1),
    ("peephole", "peephole", True, 1),
    ("gru", "gru", True, 2),
    ("peephole", "gru", False, 2),
    ("gru", "lstm", True, 1),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster and immune to OpenMP spin-waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_model_dir(
    path: Path,
    encoder: str,
    decoder: str,
    bidirectional: bool,
    layers: int,
    seed: int = 0,
    shared: bool = False,
    attention_score: str = "additive",
) -> tuple[Seq2Seq, dict, Path]:
    """What a training run logs as its `model/` artifact, with random weights (`shared`: one vocabulary and one
    embedding table for both languages, `model.shared_vocabulary`; `attention_score`: `model.attention_score`)."""
    torch.manual_seed(seed)
    cfg = preset("translation", "smoke")
    cfg = replace(
        cfg,
        model=replace(
            cfg.model,
            encoder=RecurrentConfig(
                cell=encoder,
                embedding_dim=8,
                hidden_size=8,
                num_layers=layers,
                bidirectional=bidirectional,
                dropout=0.0,
            ),
            decoder_cell=decoder,
            decoder_hidden_size=8,
            decoder_layers=layers,
            target_embedding_dim=8,
            attention_dim=8,
            shared_vocabulary=shared,
            attention_score=attention_score,
        ),
        decoding=replace(cfg.decoding, max_output_tokens=12, beam_size=3, no_repeat_ngram=3),
    )
    tokens = TokenizerConfig(vocab_size=120, min_frequency=1)
    if shared:
        source = target = fit_tokenizer([text for pair in PAIRS for text in pair], tokens, lowercase=False)
    else:
        source = fit_tokenizer([es for es, _ in PAIRS], tokens, lowercase=False)
        target = fit_tokenizer([en for _, en in PAIRS], tokens, lowercase=False)
    model = Seq2Seq(source.get_vocab_size(), target.get_vocab_size(), cfg.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.uniform_(-0.5, 0.5)
    path.mkdir(parents=True)
    torch.save(model.state_dict(), path / "state_dict.pt")
    save_tokenizer(source, path / "source_tokenizer.json")
    save_tokenizer(target, path / "target_tokenizer.json")
    spec = {
        "task": "translation",
        "source_vocab_size": source.get_vocab_size(),
        "target_vocab_size": target.get_vocab_size(),
        "config": to_dict(cfg),
        "tokenizers": {"source": "source_tokenizer.json", "target": "target_tokenizer.json"},
    }
    (path / "spec.json").write_text(json.dumps(spec))
    return model.eval(), spec, path


@pytest.mark.parametrize(("encoder", "decoder", "bidirectional", "layers"), CASES)
def test_export_matches_pytorch(tmp_path: Path, encoder: str, decoder: str, bidirectional: bool, layers: int) -> None:
    model, _, model_dir = write_model_dir(tmp_path / "model", encoder, decoder, bidirectional, layers)
    assert_exports_and_serves_pytorch_greedy(model, model_dir, tmp_path)


def test_shared_vocabulary_exports_and_serves(tmp_path: Path) -> None:
    """One table for the encoder's input and the decoder's input and output: the graphs match PyTorch, and the
    bundle's two tokenizer files are the one tokenizer."""
    model, spec, model_dir = write_model_dir(tmp_path / "model", "gru", "gru", True, 1, shared=True)
    assert model.encoder.embedding.weight is model.decoder.embedding.weight is model.decoder.output.weight
    assert spec["source_vocab_size"] == spec["target_vocab_size"]
    bundle_dir = assert_exports_and_serves_pytorch_greedy(model, model_dir, tmp_path)
    assert (bundle_dir / "source_tokenizer.json").read_bytes() == (bundle_dir / "target_tokenizer.json").read_bytes()


def test_dot_attention_exports_and_serves(tmp_path: Path) -> None:
    """The dot score's keys are the decoder's width: the graphs carry them through and match PyTorch."""
    model, spec, model_dir = write_model_dir(tmp_path / "model", "gru", "gru", True, 1, attention_score="dot")
    assert spec["config"]["model"]["attention_score"] == "dot"
    assert_exports_and_serves_pytorch_greedy(model, model_dir, tmp_path)


def test_shared_vocabulary_needs_one_size() -> None:
    cfg = replace(preset("translation", "smoke").model, shared_vocabulary=True)
    with pytest.raises(ValueError, match="one size"):
        Seq2Seq(100, 120, cfg)


def assert_exports_and_serves_pytorch_greedy(model: Seq2Seq, model_dir: Path, tmp_path: Path) -> Path:
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={"selection_score": 1.0})

    parity = report.parity
    shapes = [(s["batch"], s["max_length"]) for s in parity["shapes"]]
    assert shapes == list(PARITY_SHAPES) and EXPORT_EXAMPLE not in shapes
    assert parity["max_abs_diff"] <= 1e-4 and parity["decoder_steps"] >= 3
    assert parity["greedy"]["identical"] + parity["greedy"]["near_ties"] == parity["greedy"]["sentences"] >= 8

    # The bundle re-opens with serving's loader; served greedy translations are PyTorch's greedy translations.
    bundle = load_bundle(report.bundle_dir, "translation")
    assert bundle.manifest["max_beam_size"] == 8 and bundle.manifest["default_beam_size"] == 3
    predictor = TranslationPredictor(bundle)
    assert (
        bundle.manifest["no_repeat_ngram"] == predictor.no_repeat_ngram == 3
    )  # the config's (off in the presets), served
    predictor.no_repeat_ngram = 0  # PyTorch's greedy decoding has no n-gram ban: compare the graphs alone
    served = predictor.translate(TEXTS, beam_size=1)
    ids, lengths = encode_batch(predictor.source_tokenizer, TEXTS, predictor.max_input_tokens)
    tokens, out_len, _ = greedy_decode(model, torch.from_numpy(ids), torch.from_numpy(lengths), 12)
    expected = [
        predictor.target_tokenizer.decode([t for t in tokens[i, : out_len[i]].tolist() if t > 3]).strip()
        for i in range(len(TEXTS))
    ]
    assert served == expected
    assert len(predictor.translate(TEXTS)) == len(TEXTS)  # default beam (3)
    return Path(report.bundle_dir)


def test_tampered_decoder_graph_is_refused(tmp_path: Path) -> None:
    model, spec, _ = write_model_dir(tmp_path / "model", "gru", "gru", True, 1)
    encoder_path, decoder_path = export_graphs(model, spec["source_vocab_size"], tmp_path)
    # Given a decoder graph whose largest weight matrix is off by 1%
    graph = onnx.load(str(decoder_path))
    weight = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weight) * 1.01
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(graph, str(decoder_path))
    # Then parity fails on the numbers, before any decoding
    with pytest.raises(ParityError, match="differs by"):
        translation_parity(
            model,
            encoder_path,
            decoder_path,
            spec["source_vocab_size"],
            spec["target_vocab_size"],
            12,
            np.random.default_rng(0),
        )


def test_graphs_of_another_model_are_refused(tmp_path: Path) -> None:
    model, spec, _ = write_model_dir(tmp_path / "a", "lstm", "lstm", True, 1, seed=0)
    other, _, _ = write_model_dir(tmp_path / "b", "lstm", "lstm", True, 1, seed=1)
    encoder_path, decoder_path = export_graphs(other, spec["source_vocab_size"], tmp_path)
    with pytest.raises(ParityError):
        translation_parity(
            model,
            encoder_path,
            decoder_path,
            spec["source_vocab_size"],
            spec["target_vocab_size"],
            12,
            np.random.default_rng(0),
        )


def test_predictor_limits_and_attention(tmp_path: Path) -> None:
    _, _, model_dir = write_model_dir(tmp_path / "model", "gru", "peephole", True, 1)
    report = export_model_folder(model_dir, tmp_path / "bundle", run_id="r1", metrics={})
    predictor = TranslationPredictor(load_bundle(report.bundle_dir, "translation"))
    with pytest.raises(ValueError, match="beam_size"):
        predictor.translate(TEXTS, beam_size=9)
    assert predictor.translate([]) == []
    detailed = predictor.translate_with_attention(TEXTS[:3], beam_size=2)
    for t in detailed:
        assert t.attention.shape == (len(t.output_tokens), len(t.source_tokens))
        np.testing.assert_allclose(t.attention.sum(axis=1), 1.0, atol=1e-5)
    assert [t.text for t in detailed] == predictor.translate(TEXTS[:3], beam_size=2)


def rewrite_attention_output(decoder_path: Path, op: str, scale: float = 1.0) -> None:
    """Route the decoder graph's `attention` output (and nothing else) through one more node: `Mul` by `scale`,
    or `Softmax`. The nodes inside that read the weights (the context vector) keep reading the originals."""
    graph = onnx.load(str(decoder_path))
    for node in graph.graph.node:
        node.input[:] = ["attention_raw" if name == "attention" else name for name in node.input]
        node.output[:] = ["attention_raw" if name == "attention" else name for name in node.output]
    if op == "Mul":
        graph.graph.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), "attention_scale"))
        graph.graph.node.append(onnx.helper.make_node("Mul", ["attention_raw", "attention_scale"], ["attention"]))
    else:
        graph.graph.node.append(onnx.helper.make_node("Softmax", ["attention_raw"], ["attention"], axis=1))
    onnx.save(graph, str(decoder_path))


def test_parity_covers_the_attention_the_explain_endpoint_serves(tmp_path: Path) -> None:
    model, spec, _ = write_model_dir(tmp_path / "model", "gru", "lstm", True, 1)
    encoder_path, decoder_path = export_graphs(model, spec["source_vocab_size"], tmp_path)
    args = (model, encoder_path, decoder_path, spec["source_vocab_size"], spec["target_vocab_size"], 12)

    # Given the exported graphs: attention matches PyTorch and every row is a distribution over the real source
    parity = translation_parity(*args, np.random.default_rng(0))
    assert 0 <= parity["attention"]["max_abs_diff"] <= 1e-4
    assert 0 <= parity["attention"]["max_row_sum_error"] <= 1e-4
    assert all("attention" in shape["diffs"] for shape in parity["shapes"])

    # When only the attention output is scaled by 1.01 (log-probs and state untouched), its rows no longer sum to 1
    rewrite_attention_output(decoder_path, "Mul", 1.01)
    with pytest.raises(ParityError, match="attention rows sum to 1"):
        translation_parity(*args, np.random.default_rng(0))

    # When it is replaced by another distribution (softmax of the weights: rows still sum to 1), the values differ
    export_graphs(model, spec["source_vocab_size"], tmp_path)
    rewrite_attention_output(decoder_path, "Softmax")
    with pytest.raises(ParityError, match="attention"):
        translation_parity(*args, np.random.default_rng(0))
