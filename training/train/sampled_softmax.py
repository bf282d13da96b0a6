"""Sampled softmax for translation training: the loss over a few candidate tokens instead of the whole vocabulary.

The vocabulary projection and its log-softmax are the largest part of a translation training step on a CPU
(docs/measured.md, "Learning per minute"). Here each batch scores only:
- every token that is a target somewhere in the batch (the targets need their own logit), and
- `candidates - u` other tokens drawn uniformly without replacement from the `V - u` that are not (negatives that
  push the rest of the vocabulary down).

The partition function is then estimated by importance sampling (Jean et al., 2015, "On Using Very Large Target
Vocabulary for Neural Machine Translation"; Bengio & Senécal, 2008): a sampled negative stands for
(V - u) / (candidates - u) tokens, so its exp(logit) is weighted by that (log: added to its logit), and
Z ~ sum over batch tokens + (V - u) / k * sum over sampled. The label-smoothing term (the mean of -log p over the
vocabulary) is estimated with the same weights. Validation, export and serving use the full softmax: only the
training loss changes, and the model it trains is an ordinary model.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from serving.contract.text import PAD_ID


def candidate_tokens(targets: torch.Tensor, vocab_size: int, candidates: int) -> tuple[torch.Tensor, int]:
    """(candidate ids [C], u): the u distinct real targets of the batch first, then up to `candidates - u` other
    tokens drawn uniformly without replacement (torch's global generator: seeded runs repeat)."""
    in_batch = torch.unique(targets[targets != PAD_ID])
    u = int(in_batch.numel())
    others = torch.ones(vocab_size, dtype=torch.bool, device=targets.device)
    others[in_batch] = False
    pool = others.nonzero().squeeze(1)
    k = max(0, min(candidates - u, int(pool.numel())))
    sampled = pool[torch.randperm(int(pool.numel()), device=targets.device)[:k]]
    return torch.cat([in_batch, sampled]), u


def sampled_smoothed_nll(
    features: torch.Tensor, output: torch.nn.Linear, targets: torch.Tensor, smoothing: float, candidates: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The label-smoothed NLL of `smoothed_nll`, with the softmax over sampled candidates (module docstring).

    features [B, T, E] (the decoder's readout), `output` the vocabulary projection, targets [B, T] (PAD where there
    is none). Returns (loss, summed plain NLL, token count), the NLL under the estimated partition function. Where
    the candidates would cover the whole vocabulary it is the exact full-softmax loss.
    """
    vocab = output.out_features
    ids, u = candidate_tokens(targets, vocab, candidates)
    k = int(ids.numel()) - u
    # log of how many non-batch tokens each sampled one stands for (0 where nothing was left out)
    weight = math.log((vocab - u) / k) if k > 0 else 0.0
    correction = torch.zeros(int(ids.numel()), device=features.device, dtype=features.dtype)
    correction[u:] = weight
    logits = F.linear(features, output.weight[ids], output.bias[ids] if output.bias is not None else None)
    log_z = torch.logsumexp(logits + correction, dim=-1, keepdim=True)
    log_probs = logits - log_z  # [B, T, C]: log p of each candidate under the estimated partition function
    position = torch.full((vocab,), 0, dtype=torch.long, device=targets.device)
    position[ids] = torch.arange(int(ids.numel()), device=targets.device)
    mask = targets != PAD_ID
    nll = -log_probs.gather(2, position[targets].unsqueeze(2)).squeeze(2)
    tokens = mask.sum()
    if smoothing > 0:
        # mean over the vocabulary of log p: batch tokens count once, each sampled one for (V - u) / k tokens
        mean_log_p = (log_probs * correction.exp()).sum(dim=-1) / vocab
        per_token = (1.0 - smoothing) * nll - smoothing * mean_log_p
    else:
        per_token = nll
    loss = (per_token * mask).sum() / tokens.clamp(min=1)
    return loss, (nll.detach() * mask).sum(), tokens
