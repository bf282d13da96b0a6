"""Translation scores with sacrebleu, the same way for the recurrent model and every peer.

Single reference: the target version (World English Bible by default). Multi-reference: the target plus the
other English versions of the same verse (Basic English, King James); sacrebleu takes `None` for a missing
reference, so verses with fewer versions are scored fairly.
"""

from __future__ import annotations

from collections import defaultdict
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


def scores_by_domain(hypotheses: Sequence[str], rows: Sequence[dict], prefix: str = "") -> dict[str, float]:
    """`translation_scores` over all rows, and over each domain's rows (`{prefix}{domain}/bleu`, ...): a mixed test
    set's single score hides a model that knows one domain only."""
    scores = translation_scores(hypotheses, rows, prefix)
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_domain[row.get("domain") or "all"].append(i)
    if len(by_domain) > 1:
        for domain, idx in sorted(by_domain.items()):
            scores |= translation_scores([hypotheses[i] for i in idx], [rows[i] for i in idx], f"{prefix}{domain}/")
    return scores


def sacrebleu_signatures() -> dict[str, str]:
    """sacrebleu's signatures of the single-reference BLEU and chrF reported everywhere (README, MLflow)."""
    signatures = {}
    for name, metric in (("bleu", sacrebleu.metrics.BLEU()), ("chrf", sacrebleu.metrics.CHRF())):
        metric.corpus_score(["a"], [["a"]])  # the signature names the reference count, known once it has scored
        signatures[name] = str(metric.get_signature())
    return signatures
