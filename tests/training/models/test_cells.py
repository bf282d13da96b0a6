"""Recurrent cells: forward/backward, the peephole equations, init schemes, padding, gradient clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.config import RecurrentConfig
from training.models.cells import (
    CELL_TYPES,
    PeepholeLSTMLayer,
    RecurrentStack,
    expected_std,
    recurrent_weight_blocks,
)
from training.models.classifier import RecurrentClassifier


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def peephole_reference(x, w_ih, w_hh, b, p, h, c):
    """The peephole LSTM equations, written out in numpy step by step (torch gate order i, f, g, o)."""
    hidden = h.shape[1]
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w_ih.T + h @ w_hh.T + b
        zi, zf, zg, zo = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
        i = sigmoid(zi + p[0] * c)
        f = sigmoid(zf + p[1] * c)
        c = f * c + i * np.tanh(zg)
        o = sigmoid(zo + p[2] * c)  # output gate looks at the NEW cell state
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def test_peephole_layer_matches_its_equations() -> None:
    torch.manual_seed(0)
    layer = PeepholeLSTMLayer(5, 4)
    with torch.no_grad():
        layer.bias.uniform_(-0.5, 0.5)
        layer.peephole.uniform_(-1, 1)  # non-zero, or the peephole terms would not be tested
    x = torch.randn(3, 6, 5)
    h0, c0 = torch.randn(3, 4), torch.randn(3, 4)
    mask = torch.ones(3, 6, dtype=torch.bool)
    out, h, c = layer(x, mask, h0, c0)
    ref_out, ref_h, ref_c = peephole_reference(
        x.numpy(),
        *(t.detach().numpy() for t in (layer.weight_ih, layer.weight_hh, layer.bias, layer.peephole)),
        h0.numpy(),
        c0.numpy(),
    )
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-6)
    np.testing.assert_allclose(h.detach().numpy(), ref_h, atol=1e-6)
    np.testing.assert_allclose(c.detach().numpy(), ref_c, atol=1e-6)


def test_peephole_weights_change_the_output() -> None:
    torch.manual_seed(0)
    layer = PeepholeLSTMLayer(3, 4)
    x, mask = torch.randn(2, 5, 3), torch.ones(2, 5, dtype=torch.bool)
    zeros = torch.zeros(2, 4)
    before, _, _ = layer(x, mask, zeros, zeros)
    with torch.no_grad():
        layer.peephole.fill_(2.0)
    after, _, _ = layer(x, mask, zeros, zeros)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("cell", CELL_TYPES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_each_cell_runs_forward_and_backward(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 6, 8, num_layers=2, bidirectional=bidirectional, dropout=0.1)
    x = torch.randn(4, 7, 6, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    out, state = stack(x, lengths)
    directions = 2 if bidirectional else 1
    assert out.shape == (4, 7, 8 * directions)
    assert state.shape == (2 * directions, 4, stack.state_size)
    assert torch.all(out[1, 3:] == 0), "outputs past a sequence's length must be zero"
    (out.sum() + state.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in stack.named_parameters():
        assert p.grad is not None, f"{cell}: no gradient for {name}"


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_padding_does_not_change_a_prediction(cell: str) -> None:
    torch.manual_seed(0)
    cfg = RecurrentConfig(cell=cell, embedding_dim=8, hidden_size=8, num_layers=2, bidirectional=True, dropout=0.0)
    model = RecurrentClassifier(vocab_size=30, num_labels=3, cfg=cfg).eval()
    ids = torch.randint(4, 30, (1, 5))
    alone = model(ids, torch.tensor([5]))
    padded_ids = torch.zeros(3, 12, dtype=torch.long)
    padded_ids[0, :5] = ids
    padded_ids[1:, :] = torch.randint(4, 30, (2, 12))  # longer neighbours force padding on row 0
    batched = model(padded_ids, torch.tensor([5, 12, 9]))
    torch.testing.assert_close(batched[0:1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_xavier_sets_glorot_scale_on_every_gate_block(cell: str) -> None:
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 256, 256, init="xavier")
    for name, weight, gates in recurrent_weight_blocks(stack):
        for block in weight.chunk(gates, dim=0):
            std = block.std().item()
            assert std == pytest.approx(expected_std("xavier", 256, 256), rel=0.05), name
            bound = (6 / (256 + 256)) ** 0.5
            assert block.abs().max().item() <= bound + 1e-6, "Glorot uniform stays within its bound"


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_kaiming_sets_he_scale_with_tanh_gain(cell: str) -> None:
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 128, 256, init="kaiming")
    for name, weight, gates in recurrent_weight_blocks(stack):
        fan_in = weight.shape[1]
        for block in weight.chunk(gates, dim=0):
            assert block.std().item() == pytest.approx(expected_std("kaiming", fan_in, 256), rel=0.05), name


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_orthogonal_makes_every_recurrent_block_orthogonal(cell: str) -> None:
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 16, 32, num_layers=2, bidirectional=True, init="orthogonal")
    checked = 0
    for name, weight, gates in recurrent_weight_blocks(stack):
        if "weight_hh" not in name:
            continue
        for block in weight.detach().chunk(gates, dim=0):
            torch.testing.assert_close(block @ block.T, torch.eye(32), atol=1e-5, rtol=0)
            checked += 1
    assert checked == 2 * 2 * {"rnn": 1, "gru": 3, "lstm": 4, "peephole": 4}[cell]


@pytest.mark.parametrize("cell", ["lstm", "peephole"])
def test_lstm_forget_gate_bias_starts_at_one(cell: str) -> None:
    stack = RecurrentStack(cell, 4, 6)
    biases = [p for n, p in stack.named_parameters() if p.dim() == 1 and "bias_hh" not in n and "peephole" not in n]
    assert biases
    for b in biases:
        assert torch.all(b[6:12] == 1) and torch.all(b[:6] == 0) and torch.all(b[12:] == 0)


def test_unknown_cell_and_init_are_refused() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        RecurrentStack("transformer", 4, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init must be one of"):
        RecurrentStack("gru", 4, 4, init="zeros")  # type: ignore[arg-type]


@torch.no_grad()
def test_the_sentiment_classifier_takes_its_embedding_start_from_the_config() -> None:
    cfg = RecurrentConfig(cell="gru", embedding_dim=16, hidden_size=8, dropout=0.0)
    torch.manual_seed(0)
    unit = RecurrentClassifier(50, 3, cfg)
    torch.manual_seed(0)
    scaled = RecurrentClassifier(50, 3, RecurrentConfig(**{**cfg.__dict__, "embedding_init": "scaled"}))
    assert 0.8 < unit.embedding.weight[1:].std() < 1.2  # torch's N(0, 1)
    assert 0.8 < scaled.embedding.weight[1:].std() * 16**0.5 < 1.2  # N(0, 1/E)
    assert scaled.embedding.weight[0].abs().sum() == 0  # the padding row
    # the stack's weights are the same draw: only the table differs
    torch.testing.assert_close(unit.encoder.state_dict(), scaled.encoder.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_on_the_padded_batch_gives_the_packed_numbers(cell: str, bidirectional: bool) -> None:
    # Given a one-layer stack in training and a batch of texts of different lengths (1 to 9), padding at the end
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 6, 5, bidirectional=bidirectional).train()
    lengths = torch.tensor([9, 4, 1, 7, 9])
    x = torch.randn(5, 9, 6)
    x[torch.arange(9).unsqueeze(0) >= lengths.unsqueeze(1)] = 0.0
    # When the padded path (run_from_zero in training) and the packed one (forward) read it
    fast_x, packed_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast_out, fast_h = stack.run_from_zero(fast_x, lengths)
    packed_out, state = stack(packed_x, lengths)
    packed_h = state[..., : stack.hidden_size]
    # Then outputs (zero at padding) and final hidden states are the same numbers
    torch.testing.assert_close(fast_out, packed_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(fast_h, packed_h, atol=1e-6, rtol=0)
    assert torch.all(fast_out[torch.arange(9).unsqueeze(0).expand(5, -1) >= lengths.unsqueeze(1)] == 0.0)
    # and so are the gradients of any loss of them, for the inputs and every weight
    weights = torch.randn_like(fast_out)
    fast_grads = torch.autograd.grad((fast_out * weights).sum() + fast_h.pow(2).sum(), [fast_x, *stack.parameters()])
    packed_grads = torch.autograd.grad(
        (packed_out * weights).sum() + packed_h.pow(2).sum(), [packed_x, *stack.parameters()]
    )
    for fast_grad, packed_grad in zip(fast_grads, packed_grads, strict=True):
        torch.testing.assert_close(fast_grad, packed_grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "layers", "training"), [("lstm", 1, False), ("gru", 2, True), ("peephole", 1, True)])
def test_run_from_zero_is_forward_where_it_has_no_padded_path(cell: str, layers: int, training: bool) -> None:
    # Given a stack in evaluation (what export traces), of two layers, or of peephole cells
    torch.manual_seed(0)
    stack = RecurrentStack(cell, 6, 5, num_layers=layers, bidirectional=True).train(training)
    lengths = torch.tensor([3, 5])
    x = torch.randn(2, 5, 6)
    # When it runs from a zero state
    out, h = stack.run_from_zero(x, lengths)
    # Then it is forward's outputs and the hidden part of forward's state, every layer's
    expected_out, state = stack(x, lengths)
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(h, state[..., : stack.hidden_size])
    assert h.shape == (layers * 2, 2, 5)


def test_the_padded_path_refuses_an_input_of_the_wrong_width() -> None:
    stack = RecurrentStack("gru", 6, 5).train()
    with pytest.raises(ValueError, match="reads 6 inputs per step, got 5"):
        stack.run_from_zero(torch.randn(2, 3, 5), torch.tensor([3, 2]))
