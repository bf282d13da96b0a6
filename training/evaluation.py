"""Translation scores with sacrebleu, the same way for the recurrent model and every peer.

Single reference: the target version (World English Bible by default). Multi-reference: the target plus the
other English versions of the same verse (Basic English, King James); sacrebleu takes `None` for a missing
reference, so verses with fewer versions are scored fairly.
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu


def reference_streams(rows: Sequence[dict]) -> list[list[str | None]]:
    """sacrebleu layout: one stream per reference slot, each as long as the test set."""
    width = 1 + max((len(r.get("references", [])) for r in rows), default=0)
    streams: list[list[str | None]] = [[] for _ in range(width)]
    for r in rows:
        refs = [r["target"], *r.get("references", [])]
        for k in range(width):
            streams[k].append(refs[k] if k < len(refs) else None)
    return streams


def translation_scores(hypotheses: Sequence[str], rows: Sequence[dict], prefix: str = "") -> dict[str, float]:
    """BLEU and chrF, single- and multi-reference."""
    hyps = list(hypotheses)
    single = [[r["target"] for r in rows]]
    multi = reference_streams(rows)
    return {
        f"{prefix}bleu": sacrebleu.corpus_bleu(hyps, single).score,
        f"{prefix}chrf": sacrebleu.corpus_chrf(hyps, single).score,
        f"{prefix}bleu_multi_ref": sacrebleu.corpus_bleu(hyps, multi).score,
        f"{prefix}chrf_multi_ref": sacrebleu.corpus_chrf(hyps, multi).score,
    }
