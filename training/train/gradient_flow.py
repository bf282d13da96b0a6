"""Gradient flow through time: how much of the loss's gradient reaches the hidden state at each step of a long input.

The course's picture of vanishing gradients, measured on a trained model: a vanilla RNN's gradient shrinks with the
distance from the loss, an LSTM's or GRU's much less. What exactly is measured:

- the batch: the `PROBE_ROWS` longest validation inputs (first in split order on ties), each cut to the length they
  all reach, so there is no padding and every row has the same T steps;
- the hidden state: h_t of the FIRST recurrent layer, FORWARD direction, t = 0..T-1 (for LSTMs the hidden state,
  not the cell state c_t). The stack is run one step at a time with its own weights (`unroll`, checked equal to the
  fused forward in tests/training/train/test_gradient_flow.py), so each h_t is one node of the graph that feeds both
  the next step and the layer's output; the gradient is then the total derivative dL/dh_t;
- the loss: the per-example loss summed over the batch (cross-entropy for sentiment, the plain NLL of the reference
  translation, teacher-forced, for translation), the model in eval mode (no dropout), on a float64 CPU copy of it;
- two gradients: `through_time`, where the loss reaches h_t only through the final state (the classifier's max
  pooling over time and the decoder's attention memory are detached), the recurrence's own gradient flow; and
  `all_paths`, the model as trained, where pooling or attention give every step a direct path to the loss;
- the number per step: the mean over the batch's rows of ||dL_row/dh_t|| (L2 over the hidden units). Plots and the
  json index it by distance from the loss end, T-1-t (0 = the last step, which the loss reads directly).

`gradient_flow/ratio_first_last` is the through-time norm at the farthest step (t = 0) over the norm at the nearest
one (t = T-1): near 1 the gradient survives the whole input, far below 1 it fades (1e-6 and less for a vanilla RNN
with small recurrent weights). `gradient_flow/decay_per_step` is the fitted share that survives each step back
(its half-life is ln 0.5 / ln decay steps), less thrown by the two ends of the curve than the ratio.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import mlflow
import numpy as np
import torch
from torch.nn import functional as F

from serving.contract.text import BOS_ID, PAD_ID
from training.data.batching import pad_tensor
from training.models.cells import RecurrentStack
from training.models.classifier import RecurrentClassifier, SentimentNet
from training.models.seq2seq import Seq2Seq, source_mask
from training.plots import close, gradient_flow_figure

PROBE_ROWS = 32  # enough rows for a stable mean, one cheap backward pass (well under a second on a CPU)
PLOT = "plots/gradient_flow.png"
DATA = "gradient_flow/gradient_flow.json"
METRIC_PREFIX = "gradient_flow/"

ModelT = TypeVar("ModelT", bound=torch.nn.Module)
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GradientFlow:
    """Mean per-example ||dL/dh_t|| of one recurrent stack over a batch, indexed by time step t."""

    label: str  # which stack, e.g. "rnn" or "member 1: gru"
    through_time: np.ndarray  # [T], the loss reaching h_t only through the final state
    all_paths: np.ndarray  # [T], the model as trained (pooling / attention included)
    rows: int

    @property
    def steps(self) -> int:
        return len(self.through_time)

    def ratios(self) -> dict[str, float]:
        """Farthest step over nearest step, for each gradient, and the through-time decay per step."""
        return {
            "ratio_first_last": _ratio(self.through_time),
            "ratio_first_last_all_paths": _ratio(self.all_paths),
            "decay_per_step": _decay_per_step(self.through_time),
        }

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "through_time": self.through_time.tolist(),
            "all_paths": self.all_paths.tolist(),
            **self.ratios(),
        }


def _ratio(norms: np.ndarray) -> float:
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


def _decay_per_step(norms: np.ndarray) -> float:
    """exp of the least-squares slope of log norm against the distance from the loss, over every step but the last
    one: the share of the gradient that survives one step back. The last step is left out because the loss reads it
    directly (an LSTM's gradient drops there once, by the gates, before the recurrence starts), and a fit over all
    the others is not thrown by the few first tokens, where a zero initial state lets more gradient through."""
    by_distance = norms[::-1][1:]
    distance = np.arange(1, len(norms))
    keep = by_distance > 0
    if keep.sum() < 2:
        return float("nan")
    return float(np.exp(np.polyfit(distance[keep], np.log(by_distance[keep]), 1)[0]))


# --- the probe batch -------------------------------------------------------------------------------------------


def probe_rows(lengths: Sequence[int], size: int = PROBE_ROWS) -> tuple[list[int], int]:
    """Indices of the `size` longest sequences (ties: first in order) and the length all of them reach."""
    if not lengths:
        raise ValueError("no sequences to measure gradient flow on")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))[:size]
    steps = min(lengths[i] for i in order)
    if steps < 2:
        raise ValueError("gradient flow needs inputs of at least 2 tokens")
    return sorted(order), steps


# --- one step at a time ----------------------------------------------------------------------------------------


def _step_function(stack: RecurrentStack, layer: int, direction: int) -> Step:
    """(x_t [B, in], h, c) -> (h, c) of one layer and direction, with the stack's own weights (c unused by RNN/GRU)."""
    if stack.cell == "peephole":
        cell = stack.rnn.layers[layer][direction]
        return lambda x_t, h, c: cell.step(F.linear(x_t, cell.weight_ih, cell.bias), h, c)
    rnn = stack.rnn
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    w_ih, w_hh = getattr(rnn, f"weight_ih{suffix}"), getattr(rnn, f"weight_hh{suffix}")
    b_ih, b_hh = getattr(rnn, f"bias_ih{suffix}"), getattr(rnn, f"bias_hh{suffix}")
    if stack.cell == "lstm":
        return lambda x_t, h, c: torch.lstm_cell(x_t, (h, c), w_ih, w_hh, b_ih, b_hh)
    if stack.cell == "rnn" and rnn.nonlinearity != "tanh":
        raise ValueError("gradient flow expects the tanh RNN that RecurrentStack builds")
    cell_fn = torch.gru_cell if stack.cell == "gru" else torch.rnn_tanh_cell
    return lambda x_t, h, c: (cell_fn(x_t, h, w_ih, w_hh, b_ih, b_hh), c)


def unroll(stack: RecurrentStack, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """`stack(x, lengths=T)` for a batch without padding, one step at a time from a zero state.

    Returns (outputs [B, T, D*H] as the stack's, final hidden state of every layer and direction in the stack's
    state order [L*D] x [B, H], the hidden states h_t [T] x [B, H] of layer 0's forward direction)."""
    batch, steps, _ = x.shape
    inputs, finals, probes = x, [], []
    for layer in range(stack.num_layers):
        outputs = []
        for direction in range(stack.num_directions):
            step = _step_function(stack, layer, direction)
            h = c = x.new_zeros(batch, stack.hidden_size)
            states: list[torch.Tensor] = [h] * steps
            for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                h, c = step(inputs[:, t], h, c)
                states[t] = h
            if layer == 0 and direction == 0:
                probes = states
            outputs.append(torch.stack(states, dim=1))
            finals.append(h)
        inputs = torch.cat(outputs, dim=2)
        # (inter-layer dropout is off: the measurement runs in eval mode)
    return inputs, finals, probes


def _measured_copy(model: ModelT) -> ModelT:
    """A float64 CPU copy in eval mode: the trained model is left as it is (device, dtype, mode), no cuDNN kernel
    needs training mode for its backward, and a gradient that fades to 1e-40 over a long input is still a number."""
    return copy.deepcopy(model).cpu().double().eval()


def _mean_norms(loss: torch.Tensor, probes: list[torch.Tensor], retain: bool) -> np.ndarray:
    grads = torch.autograd.grad(loss, probes, retain_graph=retain, allow_unused=True)
    return np.array(
        [0.0 if g is None else float(torch.linalg.vector_norm(g, dim=1).mean()) for g in grads], dtype=np.float64
    )


# --- sentiment -------------------------------------------------------------------------------------------------


def classifier_logits(
    member: RecurrentClassifier, ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The member's logits for unpadded `ids` [B, T], computed through `unroll`: (as trained, with the max-pooled
    features detached, layer 0 forward hidden states)."""
    x = member.inputs(ids)  # the embedding and, where the model has them, the lexicon features
    outputs, finals, probes = unroll(member.encoder, x)
    last = torch.cat(finals[-member.encoder.num_directions :], dim=1)  # top layer, directions side by side
    pooled = outputs.max(dim=1).values
    lengths = torch.full_like(ids[:, 0], ids.shape[1])
    as_trained = member.head_logits(last, pooled, ids, lengths)
    through_time = member.head_logits(last, pooled.detach(), ids, lengths)
    return as_trained, through_time, probes


def sentiment_gradient_flow(
    net: SentimentNet, items: Sequence[tuple[Sequence[int], int]], size: int = PROBE_ROWS
) -> list[GradientFlow]:
    """One `GradientFlow` per ensemble member, on the longest of `items` ((token ids, label) pairs, e.g. the
    encoded validation split), each member on its own loss as it was trained."""
    rows, steps = probe_rows([len(ids) for ids, _ in items], size)
    ids = torch.tensor([list(items[i][0][:steps]) for i in rows], dtype=torch.long)
    labels = torch.tensor([items[i][1] for i in rows], dtype=torch.long)
    net = _measured_copy(net)
    flows = []
    for k, member in enumerate(net.members):
        as_trained, through_time, probes = classifier_logits(member, ids)
        label = member.encoder.cell if len(net.members) == 1 else f"member {k}: {member.encoder.cell}"
        flows.append(
            GradientFlow(
                label,
                _mean_norms(F.cross_entropy(through_time, labels, reduction="sum"), probes, retain=True),
                _mean_norms(F.cross_entropy(as_trained, labels, reduction="sum"), probes, retain=False),
                len(rows),
            )
        )
    return flows


# --- translation -----------------------------------------------------------------------------------------------


def translation_gradient_flow(
    model: Seq2Seq, items: Sequence[tuple[Sequence[int], Sequence[int]]], size: int = PROBE_ROWS
) -> list[GradientFlow]:
    """The encoder's gradient flow on the longest sources of `items` ((source ids, target ids ending in EOS) pairs,
    e.g. the encoded validation split): the loss is the reference's NLL under teacher forcing; `through_time` detaches
    the attention memory, so the gradient reaches the encoder only through its final states (the bridge)."""
    rows, steps = probe_rows([len(src) for src, _ in items], size)
    src = torch.tensor([list(items[i][0][:steps]) for i in rows], dtype=torch.long)
    tgt_in, _ = pad_tensor([[BOS_ID, *items[i][1][:-1]] for i in rows])
    tgt_out, _ = pad_tensor([list(items[i][1]) for i in rows])
    model = _measured_copy(model)
    encoder = model.encoder
    memory, finals, probes = unroll(encoder.rnn, encoder.embedding(src))
    init = torch.tanh(encoder.bridge(torch.cat(finals, dim=1)))  # every layer and direction, as Seq2SeqEncoder
    init = init.reshape(-1, encoder.decoder_layers, encoder.decoder_state_size).transpose(0, 1).contiguous()
    mask = source_mask(torch.full((len(rows),), steps, dtype=torch.long), steps)

    def nll(memory: torch.Tensor) -> torch.Tensor:
        log_probs = model.decoder.teacher_forced(tgt_in, init, memory, encoder.keys(memory), mask)
        picked = log_probs.gather(2, tgt_out.unsqueeze(2)).squeeze(2)
        return -(picked * (tgt_out != PAD_ID)).sum()

    label = f"encoder: {encoder.rnn.cell}"
    through_time = _mean_norms(nll(memory.detach()), probes, retain=True)
    return [GradientFlow(label, through_time, _mean_norms(nll(memory), probes, retain=False), len(rows))]


# --- logging ---------------------------------------------------------------------------------------------------


def flow_metrics(flows: Sequence[GradientFlow]) -> dict[str, float]:
    """gradient_flow/ratio_first_last(_all_paths), /decay_per_step and /steps of the first stack; with several (an
    ensemble), each member's too, under gradient_flow/member_<k>/."""
    metrics = {f"{METRIC_PREFIX}{k}": v for k, v in flows[0].ratios().items()}
    metrics[f"{METRIC_PREFIX}steps"] = float(flows[0].steps)
    if len(flows) > 1:
        for k, flow in enumerate(flows):
            metrics.update({f"{METRIC_PREFIX}member_{k}/{name}": v for name, v in flow.ratios().items()})
    return metrics


def log_gradient_flow(flows: Sequence[GradientFlow], what: str) -> dict[str, float]:
    """Log the plot (plots/gradient_flow.png) and the numbers (gradient_flow/gradient_flow.json) to the active run;
    return the summary metrics for the caller to log with the run's others."""
    first = flows[0]
    title = f"Gradient flow through time: {first.rows} {what}, {first.steps} steps"
    fig = gradient_flow_figure({f.label: (f.through_time, f.all_paths) for f in flows}, title)
    mlflow.log_figure(fig, PLOT)
    close(fig)
    mlflow.log_dict(
        {
            "measured": "mean over the batch's rows of ||dL_row/dh_t||, h_t = layer 0 forward hidden state; "
            "through_time: pooling/attention detached; see training/train/gradient_flow.py",
            "what": what,
            "rows": first.rows,
            "steps": first.steps,
            "index": "time step t; distance from the loss end = steps - 1 - t",
            "flows": [f.to_json() for f in flows],
        },
        DATA,
    )
    return flow_metrics(flows)
