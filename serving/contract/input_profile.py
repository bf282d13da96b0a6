"""The input length the service observes per text (tokens), counted over a whole data split.

Export writes this profile of the training split into the bundle's manifest (`data.inputs`); the demo page draws it
beside the live histograms of /metrics. Both sides count exactly the same way: the bundle's tokenizer through
`encode_ids` (cut to the model's token limit, an empty text is one [UNK]) and the buckets below (serving/metrics.py
exports its histogram with them), so a difference between the two is drift, not a change of definition. (The
unknown-token share is no longer counted: the tokenizer is byte-level BPE, so it was 0 for every text. The drift
signals that can move are in the bundle's drift profile: serving/contract/drift_profile.py.)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer

from serving.contract.text import encode_ids

TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def histogram(values: Sequence[float], bounds: Sequence[float]) -> dict[str, list[Any]]:
    """Counts per bucket (not cumulative), Prometheus' rule: a value lands in the first bucket whose bound `le` it
    does not exceed; the last bucket, "+Inf", takes the rest."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    return {"le": [*bounds, "+Inf"], "counts": counts}


def input_profile(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    ids = encode_ids(tokenizer, texts, max_tokens)
    tokens = [len(seq) for seq in ids]
    n = max(len(ids), 1)
    return {
        "texts": len(ids),
        "mean_tokens": round(sum(tokens) / n, 3),
        "tokens": histogram(tokens, TOKEN_BUCKETS),
    }
