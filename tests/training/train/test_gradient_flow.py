"""Gradient flow through time (training/train/gradient_flow.py): the step-by-step forward is the model's own, the
gradient
it measures is the total dL/dh_t, and it shows what the course teaches: a vanilla RNN with small recurrent weights
loses the gradient with distance, an LSTM whose forget gate is open keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from training.config import RecurrentConfig, SentimentConfig, Seq2SeqConfig
from training.models.cells import CELL_TYPES
from training.models.classifier import RecurrentClassifier, SentimentNet
from training.models.seq2seq import Seq2Seq
from training.plots import close, gradient_flow_figure
from training.train.gradient_flow import (
    GradientFlow,
    classifier_logits,
    probe_rows,
    sentiment_gradient_flow,
    translation_gradient_flow,
    unroll,
)

VOCAB = 60


def classifier(cell: str, hidden: int = 16, bidirectional: bool = False, layers: int = 1) -> RecurrentClassifier:
    cfg = RecurrentConfig(
        cell=cell, embedding_dim=8, hidden_size=hidden, num_layers=layers, bidirectional=bidirectional, dropout=0.0
    )
    return RecurrentClassifier(VOCAB, 3, cfg).double().eval()


def input_gradient(member: RecurrentClassifier, logits_of) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, dL/d embedding output) for the summed cross-entropy against fixed labels."""
    captured = {}

    def keep(module, args, out):
        out.retain_grad()
        captured["x"] = out

    hook = member.embedding.register_forward_hook(keep)
    try:
        logits = logits_of()
    finally:
        hook.remove()
    labels = torch.arange(logits.shape[0]) % 3
    F.cross_entropy(logits, labels, reduction="sum").backward()
    return logits.detach(), captured["x"].grad


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_the_unrolled_forward_is_the_models_own(cell: str) -> None:
    # given a 2-layer bidirectional member and unpadded inputs
    torch.manual_seed(0)
    member = classifier(cell, hidden=8, bidirectional=True, layers=2)
    ids = torch.randint(4, VOCAB, (3, 11))
    lengths = torch.full((3,), 11)
    # when the logits and the input gradients come from the fused model and from the step-by-step one
    fused, fused_grad = input_gradient(member, lambda: member(ids, lengths))
    member.zero_grad()
    unrolled, unrolled_grad = input_gradient(member, lambda: classifier_logits(member, ids)[0])
    # then both graphs compute the same function and the same backward pass
    torch.testing.assert_close(unrolled, fused, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(unrolled_grad, fused_grad, atol=1e-10, rtol=1e-9)


def test_the_measured_gradient_is_the_total_derivative_at_h_t() -> None:
    # h_t = tanh(W_ih x_t + b + W_hh h_{t-1}), so dL/dx_t = W_ih^T ((1 - h_t^2) * dL/dh_t) holds only for the TOTAL
    # dL/dh_t (every later use of h_t, the next step included), not for a gradient of the layer's output alone.
    torch.manual_seed(1)
    member = classifier("rnn")
    ids = torch.randint(4, VOCAB, (4, 15))
    x = member.embedding(ids).detach().requires_grad_(True)
    outputs, finals, probes = unroll(member.encoder, x)
    logits = member.head(torch.cat([finals[-1], outputs.max(dim=1).values], dim=1))
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 2, 0]), reduction="sum")
    dx, *dh = torch.autograd.grad(loss, [x, *probes])
    w_ih = member.encoder.rnn.weight_ih_l0
    for t, (h, g) in enumerate(zip(probes, dh, strict=True)):
        torch.testing.assert_close(dx[:, t], ((1 - h.detach() ** 2) * g) @ w_ih, atol=1e-12, rtol=1e-9)


def small_recurrent_weights(member: RecurrentClassifier, scale: float, forget_bias: float | None = None) -> None:
    with torch.no_grad():
        for name, p in member.encoder.named_parameters():
            if "weight_hh" in name:
                p.mul_(scale)  # orthogonal at init: the spectral norm becomes `scale`
            if forget_bias is not None and name == "rnn.bias_ih_l0":
                p[member.encoder.hidden_size : 2 * member.encoder.hidden_size] = forget_bias


def test_a_vanilla_rnn_loses_the_gradient_with_distance_and_an_open_lstm_keeps_it() -> None:
    torch.manual_seed(2)
    steps, scale = 40, 0.3
    items = [([int(t) for t in torch.randint(4, VOCAB, (steps,))], i % 3) for i in range(8)]
    rnn, lstm = SentimentNet(VOCAB, 3, _one_member("rnn")), SentimentNet(VOCAB, 3, _one_member("lstm"))
    small_recurrent_weights(rnn.members[0], scale)
    small_recurrent_weights(lstm.members[0], scale, forget_bias=5.0)  # f_t ~ 0.99: the cell state is carried over

    (rnn_flow,) = sentiment_gradient_flow(rnn, items)
    (lstm_flow,) = sentiment_gradient_flow(lstm, items)

    for flow in (rnn_flow, lstm_flow):
        assert flow.steps == steps and flow.rows == 8
        assert np.all(np.isfinite(flow.through_time)) and np.all(flow.through_time > 0)
        assert np.all(np.isfinite(flow.all_paths)) and np.all(flow.all_paths > 0)
    # Back through time each step multiplies the gradient by W_hh^T diag(1 - h^2): at most the spectral norm.
    per_step = rnn_flow.through_time[:-1] / rnn_flow.through_time[1:]
    assert per_step.max() <= scale * (1 + 1e-9)
    assert rnn_flow.ratios()["ratio_first_last"] < 1e-15  # 0.3^39 ~ 4e-21 at most
    assert lstm_flow.ratios()["ratio_first_last"] > 1e-3
    assert rnn_flow.ratios()["decay_per_step"] <= scale < 0.9 < lstm_flow.ratios()["decay_per_step"]
    # Max pooling gives every step a direct path to the loss: the far end gets a gradient after all.
    assert rnn_flow.ratios()["ratio_first_last_all_paths"] > 1e-3
    # The model measured is a copy: the trained one keeps its dtype and its mode.
    assert rnn.members[0].head.weight.dtype == torch.float32 and rnn.training


def _one_member(cell: str) -> SentimentConfig:
    return SentimentConfig(model=RecurrentConfig(cell=cell, embedding_dim=8, hidden_size=16, bidirectional=False))


def test_translation_gradient_flow_reaches_the_encoders_first_step() -> None:
    torch.manual_seed(3)
    cfg = Seq2SeqConfig(
        encoder=RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8, bidirectional=True, dropout=0.0),
        decoder_cell="lstm",
        decoder_hidden_size=8,
        target_embedding_dim=8,
        attention_dim=8,
        dropout=0.0,
    )
    model = Seq2Seq(40, 30, cfg).double().eval()
    src = torch.randint(4, 40, (3, 9))
    memory, _, state = model.encode(src, torch.full((3,), 9))
    unrolled, finals, probes = unroll(model.encoder.rnn, model.encoder.embedding(src))
    torch.testing.assert_close(unrolled, memory, atol=1e-10, rtol=1e-9)
    assert len(probes) == 9 and len(finals) == 2  # one layer, two directions
    bridged = torch.tanh(model.encoder.bridge(torch.cat(finals, dim=1)))  # the decoder's initial state
    torch.testing.assert_close(bridged, state[0], atol=1e-10, rtol=1e-9)

    lengths = [5, 12, 7, 12, 3, 12]
    items = [([4 + (i + t) % 30 for t in range(n)], [5, 6, 7, 3]) for i, n in enumerate(lengths)]
    (flow,) = translation_gradient_flow(model, items, size=3)
    assert flow.label == "encoder: gru" and flow.steps == 12 and flow.rows == 3
    assert np.all(flow.through_time > 0) and np.all(np.isfinite(flow.all_paths))


def test_the_decay_per_step_is_fitted_past_the_step_the_loss_reads() -> None:
    by_time = 0.5 ** np.arange(10.0)[::-1]  # halves with each step back from the end
    by_time[-1] = 40.0  # the last step, which the loss reads directly, stands out
    flow = GradientFlow("x", by_time, by_time, rows=1)
    assert flow.ratios()["decay_per_step"] == pytest.approx(0.5)
    assert flow.ratios()["ratio_first_last"] == pytest.approx(0.5**9 / 40.0)


def test_the_probe_batch_is_the_longest_rows_cut_to_a_common_length() -> None:
    assert probe_rows([3, 9, 5, 9, 7], size=3) == ([1, 3, 4], 7)
    assert probe_rows([4, 4, 4], size=2) == ([0, 1], 4)  # ties: first in order
    with pytest.raises(ValueError):
        probe_rows([])


def test_the_gradient_flow_figure_is_on_a_log_scale() -> None:
    curves = {"rnn": ([1e-9, 1e-5, 1e-1], [1e-2, 1e-2, 1e-1]), "lstm": ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])}
    fig = gradient_flow_figure(curves, "test")
    try:
        assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
        assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
        # plotted against the distance from the loss: the last step (1e-1) at x = 0
        x, y = fig.axes[0].get_lines()[0].get_data()
        assert list(x) == [0, 1, 2] and list(y) == [1e-1, 1e-5, 1e-9]
    finally:
        close(fig)


def test_the_unrolled_forward_keeps_the_lexicon_features_and_score() -> None:
    # given a member with lexicon features and VADER's score in its head
    torch.manual_seed(0)
    cfg = RecurrentConfig(cell="lstm", embedding_dim=8, hidden_size=8, dropout=0.0)
    member = RecurrentClassifier(VOCAB, 3, cfg, lexicon_features=4, lexicon_score=True).double().eval()
    member.lexicon.copy_(torch.randn(VOCAB, 4, dtype=torch.float64).clamp(-1, 1))
    ids = torch.randint(4, VOCAB, (3, 9))
    # then the step-by-step forward the gradient flow measures computes the model's own logits
    torch.testing.assert_close(classifier_logits(member, ids)[0], member(ids, torch.full((3,), 9)))
