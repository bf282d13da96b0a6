"""Translation model directory -> `encoder.onnx` + `decoder_step.onnx`, verified against PyTorch.

Two graphs, the decoding loop in the runtime (serving/decoding.py): greedy or beam search stop each sentence at
its EOS, which an in-graph unrolled loop cannot. Parity is checked two ways before a bundle may be written:

1. numbers: at PARITY_SHAPES (batch, source length; all different from the export example) the encoder outputs and
   DECODER_STEPS chained decoder steps (log-probs, state, attention) match PyTorch within PARITY_TOLERANCE; the
   graph's attention rows (what /translate/explain serves) also sum to 1 and give padded source positions no
   weight, within the same tolerance;
2. behaviour: PyTorch's greedy decoder and serving's numpy greedy search over onnxruntime produce the same token
   sequences for GREEDY_SENTENCES random sentences. Where they part, the step is accepted only if PyTorch itself
   scores both tokens within PARITY_TOLERANCE (an exact tie that rounding may break either way); the count of such
   ties is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from serving.contract.text import BOS_ID
from serving.translation import Seq2SeqRuntime
from training.config import TranslationConfig, Workspace
from training.export.onnx import EXPORT_EXAMPLE, PARITY_SHAPES, PARITY_TOLERANCE, ParityError, export_onnx, random_batch
from training.model_folder import RunModel
from training.models.seq2seq import Seq2Seq, greedy_decode

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder_step.onnx"
DECODER_STEPS = 6  # chained decoder steps compared per parity shape
GREEDY_SENTENCES = 8
GREEDY_MAX_SOURCE = 12
LENGTH_PENALTY = 1.0  # beam search ranks finished outputs by score / length**LENGTH_PENALTY (1.0 = per-token mean)


class EncoderGraph(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.encode(input_ids, lengths)


class DecoderStepGraph(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, tokens: torch.Tensor, state: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return self.model.decode_step(tokens, state, memory, keys, lengths)


def load_model(folder: RunModel) -> Seq2Seq:
    """The trained model of a run's model folder (training/model_folder.py), in eval mode."""
    model = Seq2Seq(folder.vocab_sizes["source"], folder.vocab_sizes["target"], folder.config.model)
    model.load_state_dict(folder.state_dict())
    return model.eval()


def export_graphs(model: Seq2Seq, source_vocab_size: int, out_dir: Path) -> tuple[Path, Path]:
    """Write both graphs with dynamic batch and source-length axes; returns their paths."""
    model.eval()
    ids, lengths = random_batch(source_vocab_size, *EXPORT_EXAMPLE, np.random.default_rng(0))
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    encoder_path, decoder_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE
    export_onnx(
        EncoderGraph(model),
        (ids_t, lengths_t),
        encoder_path,
        ["input_ids", "lengths"],
        ["memory", "keys", "state"],
        {
            "input_ids": {0: "batch", 1: "source"},
            "lengths": {0: "batch"},
            "memory": {0: "batch", 1: "source"},
            "keys": {0: "batch", 1: "source"},
            "state": {1: "batch"},
        },
    )
    with torch.no_grad():
        memory, keys, state = model.encode(ids_t, lengths_t)
    tokens = torch.full((ids.shape[0],), BOS_ID, dtype=torch.long)
    export_onnx(
        DecoderStepGraph(model),
        (tokens, state, memory, keys, lengths_t),
        decoder_path,
        ["tokens", "state", "memory", "keys", "lengths"],
        ["log_probs", "next_state", "attention"],
        {
            "tokens": {0: "batch"},
            "state": {1: "batch"},
            "memory": {0: "batch", 1: "source"},
            "keys": {0: "batch", 1: "source"},
            "lengths": {0: "batch"},
            "log_probs": {0: "batch"},
            "next_state": {1: "batch"},
            "attention": {0: "batch", 1: "source"},
        },
    )
    return encoder_path, decoder_path


def export_translation(
    folder: RunModel, out_dir: Path, ws: Workspace | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export and verify; returns (manifest extras, parity report). Raises ParityError on a mismatch. (`ws`: unused,
    the graphs need no data; every task's exporter takes it.)"""
    cfg: TranslationConfig = folder.config
    source_vocab_size, target_vocab_size = folder.vocab_sizes["source"], folder.vocab_sizes["target"]
    model = load_model(folder)
    encoder_path, decoder_path = export_graphs(model, source_vocab_size, out_dir)
    parity = translation_parity(
        model,
        encoder_path,
        decoder_path,
        source_vocab_size,
        target_vocab_size,
        cfg.decoding.max_output_tokens,
        np.random.default_rng(1),
    )
    manifest = {
        "graphs": {"encoder": encoder_path.name, "decoder_step": decoder_path.name},
        "max_input_tokens": cfg.source_tokenizer.max_tokens,
        "max_output_tokens": cfg.decoding.max_output_tokens,
        "default_beam_size": cfg.decoding.beam_size,
        "max_beam_size": cfg.decoding.max_beam_size,
        "length_penalty": LENGTH_PENALTY,
        "no_repeat_ngram": cfg.decoding.no_repeat_ngram,
        "source_vocab_size": source_vocab_size,
        "target_vocab_size": target_vocab_size,
        "cells": {"encoder": cfg.model.encoder.cell, "decoder": cfg.model.decoder_cell},
    }
    return manifest, parity


def translation_parity(
    model: Seq2Seq,
    encoder_path: Path,
    decoder_path: Path,
    source_vocab_size: int,
    target_vocab_size: int,
    max_output_tokens: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Numbers at PARITY_SHAPES, then greedy outputs; raises ParityError on any mismatch (see module docstring)."""
    model.eval()
    runtime = Seq2SeqRuntime(encoder_path, decoder_path, ["CPUExecutionProvider"])
    checked = [
        _numeric_parity(model, runtime, source_vocab_size, target_vocab_size, b, s, rng) for b, s in PARITY_SHAPES
    ]
    greedy = _greedy_parity(model, runtime, source_vocab_size, max_output_tokens, rng)
    return {
        "tolerance": PARITY_TOLERANCE,
        "max_abs_diff": max(c["max_abs_diff"] for c in checked),
        "shapes": checked,
        "decoder_steps": DECODER_STEPS,
        "attention": {
            "max_abs_diff": max(c["diffs"]["attention"] for c in checked),
            "max_row_sum_error": max(c["attention_row_sum_error"] for c in checked),
        },
        "greedy": greedy,
    }


def check_attention_rows(attention: np.ndarray, lengths: np.ndarray, where: str) -> float:
    """attention [B, S] of one decoder step: each row a distribution over the row's real source positions.
    Returns the largest deviation (|row sum - 1| or weight on padding); raises ParityError beyond tolerance."""
    padded = np.arange(attention.shape[1])[None, :] >= lengths[:, None]
    row_error = float(np.abs(attention.sum(axis=1) - 1.0).max()) if attention.size else 0.0
    padding_weight = float(np.abs(attention[padded]).max()) if padded.any() else 0.0
    if not row_error <= PARITY_TOLERANCE:  # also catches NaN
        raise ParityError(f"attention rows sum to 1 +- {row_error:.2e} > {PARITY_TOLERANCE} at {where}")
    if not padding_weight <= PARITY_TOLERANCE:
        raise ParityError(f"attention puts {padding_weight:.2e} > {PARITY_TOLERANCE} on padding at {where}")
    return max(row_error, padding_weight)


def _compare(name: str, actual: np.ndarray, expected: torch.Tensor, where: str) -> float:
    expected_np = expected.numpy()
    if actual.shape != expected_np.shape:
        raise ParityError(f"{name}: onnx shape {actual.shape} != torch {expected_np.shape} at {where}")
    diff = float(np.abs(actual - expected_np).max()) if actual.size else 0.0
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        raise ParityError(f"{name} differs by {diff:.2e} > {PARITY_TOLERANCE} at {where}")
    return diff


@torch.no_grad()
def _numeric_parity(
    model: Seq2Seq,
    runtime: Seq2SeqRuntime,
    source_vocab_size: int,
    target_vocab_size: int,
    batch: int,
    max_len: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    ids, lengths = random_batch(source_vocab_size, batch, max_len, rng)
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    where = f"batch {batch}, source length {max_len}"
    diffs: dict[str, float] = {}
    memory_t, keys_t, state_t = model.encode(ids_t, lengths_t)
    memory, keys, state = runtime.encode(ids, lengths)
    for name, actual, expected in (("memory", memory, memory_t), ("keys", keys, keys_t), ("state", state, state_t)):
        diffs[name] = _compare(name, actual, expected, where)
    # Chained steps: each side carries its own state, as decoding does. Tokens are random (not argmax), so a
    # near-tie cannot send the two sides down different paths.
    tokens = np.full(batch, BOS_ID, dtype=np.int64)
    row_error = 0.0
    for step in range(DECODER_STEPS):
        log_probs_t, state_t, attention_t = model.decode_step(
            torch.from_numpy(tokens), state_t, memory_t, keys_t, lengths_t
        )
        log_probs, state, attention = runtime.step(tokens, state, (memory, keys, lengths))
        at = f"{where}, decoder step {step}"
        row_error = max(row_error, check_attention_rows(attention, lengths, at))
        for name, actual, expected in (
            ("log_probs", log_probs, log_probs_t),
            ("next_state", state, state_t),
            ("attention", attention, attention_t),
        ):
            diffs[name] = max(diffs.get(name, 0.0), _compare(name, actual, expected, at))
        tokens = rng.integers(4, target_vocab_size, size=batch).astype(np.int64)
    return {
        "batch": batch,
        "max_length": max_len,
        "max_abs_diff": max(diffs.values()),
        "diffs": diffs,
        "attention_row_sum_error": row_error,
    }


@torch.no_grad()
def _greedy_parity(
    model: Seq2Seq, runtime: Seq2SeqRuntime, source_vocab_size: int, max_output_tokens: int, rng: np.random.Generator
) -> dict[str, Any]:
    ids, lengths = random_batch(source_vocab_size, GREEDY_SENTENCES, GREEDY_MAX_SOURCE, rng)
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    tokens_t, out_len_t, _ = greedy_decode(model, ids_t, lengths_t, max_output_tokens)
    expected = [tokens_t[i, : int(out_len_t[i])].tolist() for i in range(len(ids))]
    actual = runtime.decode(ids, lengths, max_output_tokens, beam_size=1).sequences()
    ties = 0
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        if want == got:
            continue
        at = next((p for p, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
        if at >= min(len(want), len(got)):
            raise ParityError(f"greedy outputs of sentence {i} differ in length: torch {len(want)}, onnx {len(got)}")
        gap = _torch_gap(model, ids_t[i : i + 1], lengths_t[i : i + 1], want[:at], want[at], got[at])
        if gap > PARITY_TOLERANCE:
            raise ParityError(
                f"greedy outputs of sentence {i} part at token {at}: torch {want[at]}, onnx {got[at]} "
                f"(torch log-prob gap {gap:.2e} > {PARITY_TOLERANCE})"
            )
        ties += 1
    return {
        "sentences": len(expected),
        "identical": len(expected) - ties,
        "near_ties": ties,
        "max_output_tokens": max_output_tokens,
    }


def _torch_gap(
    model: Seq2Seq, ids: torch.Tensor, lengths: torch.Tensor, prefix: list[int], token_a: int, token_b: int
) -> float:
    """|log p(a) - log p(b)| of PyTorch at the step after `prefix`."""
    memory, keys, state = model.encode(ids, lengths)
    token = torch.tensor([BOS_ID])
    for next_token in [*prefix, None]:
        log_probs, state, _ = model.decode_step(token, state, memory, keys, lengths)
        if next_token is None:
            return float((log_probs[0, token_a] - log_probs[0, token_b]).abs())
        token = torch.tensor([next_token])
    raise AssertionError("unreachable")
