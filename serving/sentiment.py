"""Sentiment inference with onnxruntime: texts -> label + class probabilities."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.contract.bundle import Bundle, listed_sha256, read_verified
from serving.contract.text import UNK_ID, encode_ids, load_tokenizer, pad_batch
from serving.runtime import CPU, CUDA, Provider, create_session, provider_name

# Texts are run in length-sorted chunks of this many: a recurrent graph computes every row up to the longest row
# of its call, and the per-text cost on the CPU does not fall with larger calls. Measured on merged batches of 128
# real texts (python -m tests.benchmarks.bench_bucketing): 16 per call is 1.6x faster per text than 128.
CHUNK = 16


def activations_quantized(manifest: dict) -> bool:
    """Whether the served classifier is the int8 one (training/export/quantize.py). Dynamic quantisation takes each
    activation's range from the whole call, so a text's scores would move (by ~4e-4) with its batch-mates; such a
    graph gets one call per text, which keeps every answer the same whoever else asked at the same moment
    (0.39 vs 0.26 ms per text at calls of 16 on one core, still 1.4x faster than fp32)."""
    return manifest.get("quantization", {}).get("served") == "int8"


class SentimentPredictor:
    def __init__(
        self,
        bundle: Bundle,
        providers: list[Provider] | None = None,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        """`threads`: onnxruntime's threads per session (None: MEMORIA_ORT_THREADS; export's scoring runs one-thread
        predictors side by side)."""
        self.bundle = bundle
        self._threads = threads
        self.labels: list[str] = list(bundle.manifest["labels"])
        self.max_tokens = int(bundle.manifest["max_input_tokens"])
        text_tokenizer = bundle.tokenizer("text")
        self.tokenizer = load_tokenizer(text_tokenizer, read_verified(bundle, text_tokenizer))
        graph = "classifier"
        on_cuda = provider_name((providers or [CPU])[0]) == CUDA
        if on_cuda and "classifier_fp32" in bundle.manifest["graphs"]:
            graph = "classifier_fp32"  # onnxruntime has no CUDA kernel for DynamicQuantizeLSTM: int8 would run on CPU
        self.session = self._open(graph, providers, device)
        self._graph, self._where = graph, (providers, device)
        self._fp32: Any = None
        self._fp32_lock = threading.Lock()
        self.chunk = 1 if graph == "classifier" and activations_quantized(bundle.manifest) else CHUNK
        self.bucketing = True  # sort by length before chunking (make bench measures both)

    @property
    def fp32_session(self) -> Any:
        """The session explanations (serving/explain.py) use: they run many variants of one text in one call, which
        only a graph without batch-dependent numbers allows. The served one unless that is int8; then the bundle's
        fp32 graph, opened on the first explanation (not at start-up: most deployments never explain), and hashed
        as it is opened, so a file altered since `load_bundle` is refused then rather than run."""
        if self._fp32 is None:
            with self._fp32_lock:  # two first explanations at once open it once
                if self._fp32 is None:
                    graphs = self.bundle.manifest["graphs"]
                    fp32 = "classifier_fp32" if "classifier_fp32" in graphs else self._graph
                    same = self.bundle.graph(fp32) == self.bundle.graph(self._graph)
                    self._fp32 = self.session if same else self._open(fp32, *self._where)
        return self._fp32

    def _open(self, graph: str, providers: list[Provider] | None, device: str | None) -> Any:
        path = self.bundle.graph(graph)
        return create_session(path, providers, device, sha256=listed_sha256(self.bundle, path), threads=self._threads)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), n_labels] class probabilities, in input order."""
        return self._probabilities(encode_ids(self.tokenizer, texts, self.max_tokens))

    def _probabilities(self, ids: list[list[int]]) -> np.ndarray:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if self.bucketing else list(range(len(ids)))
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), self.chunk):
            chunk = order[start : start + self.chunk]
            batch, lengths = pad_batch([ids[i] for i in chunk])
            (probs,) = self.session.run(["probabilities"], {"input_ids": batch, "lengths": lengths})
            out[chunk] = probs
        return out

    def predict(self, texts: Sequence[str]) -> list[dict]:
        """Per text: `label`, `scores` (probability per label) and `tokens`/`unknown` (input counts, for the
        drift metrics)."""
        ids = encode_ids(self.tokenizer, texts, self.max_tokens)
        probs = self._probabilities(ids)
        return [
            {
                "label": self.labels[int(row.argmax())],
                "scores": {label: float(p) for label, p in zip(self.labels, row, strict=True)},
                "tokens": len(seq),
                "unknown": seq.count(UNK_ID),
            }
            for row, seq in zip(probs, ids, strict=True)
        ]
