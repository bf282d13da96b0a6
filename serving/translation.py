"""Translation inference with onnxruntime: Spanish texts -> English texts (greedy or beam search).

`Seq2SeqRuntime` runs the two graphs of a bundle on token ids (export parity uses it directly, so the decoder
checked at export is the one served); `TranslationPredictor` adds the tokenizers and the bundle's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.contract.bundle import Bundle, listed_sha256, read_verified
from serving.contract.text import EOS_ID, SPECIAL_TOKENS, UNK_ID, decode_ids, encode_ids, load_tokenizer, pad_batch
from serving.decoding import Decoded, beam_search, greedy_search
from serving.runtime import Provider, create_session

# Sentences are decoded in length-sorted chunks of this many (times the beam size in rows): enough rows to keep
# the matrix products efficient, few enough that one long sentence doesn't make many short ones pay for padding.
CHUNK = 64
DECODER_OUTPUTS = ["log_probs", "next_state", "attention"]


class Seq2SeqRuntime:
    """The encoder and decoder-step graphs, and decoding over them, on token ids."""

    def __init__(
        self,
        encoder: Path,
        decoder_step: Path,
        providers: list[Provider] | None = None,
        device: str | None = None,
        sha256: tuple[str | None, str | None] = (None, None),
    ) -> None:
        """`sha256`: the graphs' hashes from a bundle's manifest, checked on the bytes the sessions load."""
        self.encoder = create_session(encoder, providers, device, sha256=sha256[0])
        self.decoder = create_session(decoder_step, providers, device, sha256=sha256[1])

    def encode(self, ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        memory, keys, state = self.encoder.run(["memory", "keys", "state"], {"input_ids": ids, "lengths": lengths})
        return memory, keys, state

    def step(
        self, tokens: np.ndarray, state: np.ndarray, context: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        memory, keys, lengths = context
        log_probs, next_state, attention = self.decoder.run(
            DECODER_OUTPUTS, {"tokens": tokens, "state": state, "memory": memory, "keys": keys, "lengths": lengths}
        )
        return log_probs, next_state, attention

    def decode(
        self,
        ids: np.ndarray,
        lengths: np.ndarray,
        max_output_tokens: int,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        with_attention: bool = False,
        no_repeat_ngram: int = 0,
    ) -> Decoded:
        """ids [B, S] int64, lengths [B] -> outputs of all B sentences, decoded together."""
        memory, keys, state = self.encode(ids, lengths)
        context = (memory, keys, lengths)
        if beam_size == 1:
            return greedy_search(
                self.step,
                state,
                context,
                max_output_tokens,
                with_attention=with_attention,
                length_penalty=length_penalty,
                no_repeat_ngram=no_repeat_ngram,
            )
        return beam_search(
            self.step,
            state,
            context,
            max_output_tokens,
            beam_size,
            with_attention=with_attention,
            length_penalty=length_penalty,
            no_repeat_ngram=no_repeat_ngram,
        )


@dataclass(frozen=True)
class Translation:
    """One translation with what a heatmap needs: tokens on both sides and attention [output, source]."""

    text: str
    source_tokens: list[str]
    output_tokens: list[str]
    attention: np.ndarray
    score: float


class TranslationPredictor:
    def __init__(self, bundle: Bundle, providers: list[Provider] | None = None, device: str | None = None) -> None:
        manifest = bundle.manifest
        self.bundle = bundle
        graphs = (bundle.graph("encoder"), bundle.graph("decoder_step"))
        hashes = (listed_sha256(bundle, graphs[0]), listed_sha256(bundle, graphs[1]))
        self.runtime = Seq2SeqRuntime(*graphs, providers, device, sha256=hashes)
        source, target = bundle.tokenizer("source"), bundle.tokenizer("target")
        self.source_tokenizer = load_tokenizer(source, read_verified(bundle, source))
        self.target_tokenizer = load_tokenizer(target, read_verified(bundle, target))
        self.max_input_tokens = int(manifest["max_input_tokens"])
        self.max_output_tokens = int(manifest["max_output_tokens"])
        self.default_beam_size = int(manifest["default_beam_size"])
        self.max_beam_size = int(manifest["max_beam_size"])
        self.length_penalty = float(manifest.get("length_penalty", 1.0))
        # bundles exported before the ban existed decode as they were measured: without it
        self.no_repeat_ngram = int(manifest.get("no_repeat_ngram", 0))

    def _beam(self, beam_size: int | None) -> int:
        beam = self.default_beam_size if beam_size is None else int(beam_size)
        if not 1 <= beam <= self.max_beam_size:
            raise ValueError(f"beam_size must be between 1 and {self.max_beam_size}, got {beam}")
        return beam

    def _decode_all(self, texts: Sequence[str], beam: int, with_attention: bool) -> tuple[list[list[int]], list]:
        """Source ids and the Decoded output row of each text, decoded in length-sorted chunks."""
        ids = encode_ids(self.source_tokenizer, texts, self.max_input_tokens)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        rows: list = [None] * len(ids)
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            batch, lengths = pad_batch([ids[i] for i in chunk])
            decoded = self.runtime.decode(
                batch, lengths, self.max_output_tokens, beam, self.length_penalty, with_attention, self.no_repeat_ngram
            )
            for row, i in enumerate(chunk):
                rows[i] = (decoded, row)
        return ids, rows

    def translate(self, texts: Sequence[str], beam_size: int | None = None) -> list[str]:
        """English translation of each text, in input order."""
        return [text for text, _, _ in self.translate_with_stats(texts, beam_size)]

    def translate_with_stats(self, texts: Sequence[str], beam_size: int | None = None) -> list[tuple[str, int, int]]:
        """(translation, input tokens, unknown input tokens) per text: the counts feed the drift metrics."""
        beam = self._beam(beam_size)
        if not texts:
            return []
        ids, rows = self._decode_all(texts, beam, with_attention=False)
        return [
            (decode_ids(self.target_tokenizer, d.tokens[r, : d.lengths[r]]), len(seq), seq.count(UNK_ID))
            for seq, (d, r) in zip(ids, rows, strict=True)
        ]

    def translate_with_attention(self, texts: Sequence[str], beam_size: int | None = None) -> list[Translation]:
        """Translations with their attention weights (one row per output token, EOS included)."""
        beam = self._beam(beam_size)
        if not texts:
            return []
        ids, rows = self._decode_all(texts, beam, with_attention=True)
        out = []
        for source_ids, (d, r) in zip(ids, rows, strict=True):
            output = d.tokens[r, : d.lengths[r]].tolist()
            out.append(
                Translation(
                    text=decode_ids(self.target_tokenizer, output),
                    source_tokens=[self.source_tokenizer.id_to_token(i) for i in source_ids],
                    output_tokens=[self._target_token(i) for i in output],
                    attention=d.attention[r, : len(output), : len(source_ids)],
                    score=float(d.normalized_scores[r]),
                )
            )
        return out

    def _target_token(self, token_id: int) -> str:
        return SPECIAL_TOKENS[token_id] if token_id == EOS_ID else self.target_tokenizer.id_to_token(token_id)
