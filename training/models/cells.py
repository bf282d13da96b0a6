"""Recurrent stacks over the four cells memoria teaches: vanilla RNN, LSTM, peephole LSTM, GRU.

Every stack has the same interface, `RecurrentStack(x, lengths) -> (outputs, state)`, so the classifier and the
seq2seq model never care which cell they hold:

- RNN/LSTM/GRU wrap torch's fused modules and feed them packed sequences, so padded steps are never seen (an
  encoder in training, `run_from_zero`, gets the same numbers from the padded batch, faster).
- Peephole LSTM has no torch module: `PeepholeLSTM` implements it step by step with the same masking, and for
  ONNX export emits ONNX's own `LSTM` operator with its peephole input `P` (torch.onnx's TorchScript exporter
  calls `symbolic`), so the exported graph runs the fused kernel with `sequence_lens` as well.

State layout (what the decoder carries between steps): a tensor [num_layers * num_directions, B, H] for RNN/GRU,
and for the two LSTMs the hidden and cell states concatenated on the last axis, [L * D, B, 2H]. One tensor per
state keeps the exported decoder-step graph identical for every cell type.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CellType = Literal["rnn", "lstm", "peephole", "gru"]
InitScheme = Literal["xavier", "kaiming", "orthogonal"]
CELL_TYPES: tuple[str, ...] = ("rnn", "lstm", "peephole", "gru")
INIT_SCHEMES: tuple[str, ...] = ("xavier", "kaiming", "orthogonal")

# Number of gate blocks stacked in each weight matrix (torch layout).
GATES = {"rnn": 1, "gru": 3, "lstm": 4, "peephole": 4}


def is_lstm(cell: str) -> bool:
    return cell in ("lstm", "peephole")


class PeepholeLSTMLayer(nn.Module):
    """One direction of one layer of a peephole LSTM (Gers, Schraudolph & Schmidhuber, 2002).

    i_t = sigmoid(W_i x_t + R_i h_{t-1} + p_i * c_{t-1} + b_i)
    f_t = sigmoid(W_f x_t + R_f h_{t-1} + p_f * c_{t-1} + b_f)
    g_t = tanh(W_g x_t + R_g h_{t-1} + b_g)
    c_t = f_t * c_{t-1} + i_t * g_t
    o_t = sigmoid(W_o x_t + R_o h_{t-1} + p_o * c_t + b_o)      # the output gate peeks at the NEW cell state
    h_t = o_t * tanh(c_t)

    Weights use torch's gate order (i, f, g, o) so the same init code serves every cell; `onnx_weights` reorders
    them to ONNX's (i, o, f, c).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        # Peephole weights are diagonal (one per unit): p_i, p_f, p_o.
        self.peephole = nn.Parameter(torch.zeros(3, hidden_size))
        nn.init.xavier_uniform_(self.weight_ih)
        nn.init.orthogonal_(self.weight_hh)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, in] in processing order, mask [B, T] (1 = real step). Returns outputs [B, T, H], h, c."""
        xw = torch.nn.functional.linear(x, self.weight_ih, self.bias)  # all input projections at once
        outputs = []
        for t in range(x.shape[1]):
            h_new, c_new = self.step(xw[:, t], h, c)
            m = mask[:, t].unsqueeze(1)
            # Padded steps keep the previous state, so the final state is the state at the true last token.
            h = torch.where(m, h_new, h)
            c = torch.where(m, c_new, c)
            outputs.append(h_new * m)
        return torch.stack(outputs, dim=1), h, c

    def step(self, xw_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step from the input projection xw_t = W x_t + b [B, 4H] and the previous h, c [B, H]: the
        equations above (training/train/gradient_flow.py calls it too, to keep every step's state in the graph)."""
        gi, gf, gg, go = (xw_t + h @ self.weight_hh.t()).chunk(4, dim=1)
        p_i, p_f, p_o = self.peephole[0], self.peephole[1], self.peephole[2]
        i = torch.sigmoid(gi + p_i * c)
        f = torch.sigmoid(gf + p_f * c)
        c_new = f * c + i * torch.tanh(gg)
        o = torch.sigmoid(go + p_o * c_new)
        return o * torch.tanh(c_new), c_new

    def onnx_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """W [4H, in], R [4H, H], B [8H], P [3H] in ONNX LSTM layout (gates i, o, f, c; P = p_i, p_o, p_f)."""

        def reorder(w: torch.Tensor) -> torch.Tensor:
            i, f, g, o = w.chunk(4, dim=0)
            return torch.cat([i, o, f, g], dim=0)

        b = torch.cat([reorder(self.bias), torch.zeros_like(self.bias)])  # Wb then Rb; Rb unused
        p = torch.cat([self.peephole[0], self.peephole[2], self.peephole[1]])
        return reorder(self.weight_ih), reorder(self.weight_hh), b, p


def _reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays at the end. x [B, T, ...]."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
    lens = lengths.unsqueeze(1)
    idx = torch.where(t < lens, lens - 1 - t, t)  # [B, T]
    idx = idx.view(idx.shape[0], idx.shape[1], *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, idx)


def onnx_lstm_reference(
    x: torch.Tensor,
    seq_lens: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    p: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ONNX `LSTM` semantics (gates i, o, f, c; peepholes; sequence_lens) written out in torch.

    x [T, B, in], w [D, 4H, in], r [D, 4H, H], b [D, 8H], p [D, 3H], h0/c0 [D, B, H].
    Returns Y [T, D, B, H] (zeros past each length), Y_h, Y_c [D, B, H].
    """
    steps, hidden = x.shape[0], r.shape[2]
    lengths = seq_lens.long()
    ys, hs, cs = [], [], []
    for d in range(w.shape[0]):
        h, c = h0[d], c0[d]
        y = x.new_zeros(steps, x.shape[1], hidden)
        order = range(steps) if d == 0 else range(steps - 1, -1, -1)
        for t in order:
            gates = x[t] @ w[d].t() + h @ r[d].t() + b[d, : 4 * hidden] + b[d, 4 * hidden :]
            gi, go, gf, gc = gates.chunk(4, dim=1)
            p_i, p_o, p_f = p[d].chunk(3)
            i = torch.sigmoid(gi + p_i * c)
            f = torch.sigmoid(gf + p_f * c)
            c_new = f * c + i * torch.tanh(gc)
            o = torch.sigmoid(go + p_o * c_new)
            h_new = o * torch.tanh(c_new)
            m = (t < lengths).unsqueeze(1)
            h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
            y[t] = h_new * m
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return torch.stack(ys, dim=1), torch.stack(hs), torch.stack(cs)


class _PeepholeLSTMExport(torch.autograd.Function):
    """Export-only bridge: in the traced graph one peephole layer becomes ONNX `LSTM` with input P.

    `forward` computes the same values with `onnx_lstm_reference`, so tracing sees real shapes and numbers; the
    exporter then replaces the call by `symbolic`. Parity tests check the exported graph against the eager cells.
    """

    @staticmethod
    def forward(ctx, x, seq_lens, h0, c0, w, r, b, p):
        return onnx_lstm_reference(x, seq_lens, h0, c0, w, r, b, p)

    @staticmethod
    def symbolic(g, x, seq_lens, h0, c0, w, r, b, p):
        hidden = r.type().sizes()[2]
        direction = "bidirectional" if r.type().sizes()[0] == 2 else "forward"
        return g.op("LSTM", x, w, r, b, seq_lens, h0, c0, p, hidden_size_i=hidden, direction_s=direction, outputs=3)


class PeepholeLSTM(nn.Module):
    """Multi-layer, optionally bidirectional peephole LSTM with an nn.LSTM-like interface (batch first)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            self.layers.append(
                nn.ModuleList(PeepholeLSTMLayer(in_size, hidden_size) for _ in range(self.num_directions))
            )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, in]; h0/c0 [L*D, B, H]. Returns outputs [B, T, D*H], h_n, c_n [L*D, B, H]."""
        if torch.onnx.is_in_onnx_export():
            return self._forward_onnx(x, lengths, h0, c0)
        mask = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        hs, cs = [], []
        for li, directions in enumerate(self.layers):
            outs = []
            for d, layer in enumerate(directions):
                k = li * self.num_directions + d
                inp = x if d == 0 else _reverse_padded(x, lengths)
                y, h, c = layer(inp, mask, h0[k], c0[k])
                outs.append(y if d == 0 else _reverse_padded(y, lengths))
                hs.append(h)
                cs.append(c)
            x = torch.cat(outs, dim=2)
            if self.dropout > 0 and li < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, self.training)
        return x, torch.stack(hs), torch.stack(cs)

    def _forward_onnx(
        self, x: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seq_lens = lengths.to(torch.int32)
        x = x.transpose(0, 1)  # ONNX LSTM is time-major
        hs, cs = [], []
        d_count = self.num_directions
        for li, directions in enumerate(self.layers):
            ws, rs, bs, ps = zip(*(layer.onnx_weights() for layer in directions), strict=True)
            sl = slice(li * d_count, (li + 1) * d_count)
            y, h, c = _PeepholeLSTMExport.apply(
                x,
                seq_lens,
                h0[sl],
                c0[sl],
                torch.stack(ws),
                torch.stack(rs),
                torch.stack(bs),
                torch.stack(ps),
            )
            # Y [T, D, B, H] -> [T, B, D*H] for the next layer
            x = y.permute(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], d_count * self.hidden_size)
            hs.append(h)
            cs.append(c)
        return x.transpose(0, 1), torch.cat(hs), torch.cat(cs)


class RecurrentStack(nn.Module):
    """A stack of recurrent layers of one cell type that respects true sequence lengths.

    forward(x [B, T, in], lengths [B], state=None) -> (outputs [B, T, D*H] with zeros at padding, state).
    """

    def __init__(
        self,
        cell: CellType,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init: InitScheme = "orthogonal",
    ) -> None:
        super().__init__()
        if cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        layer_dropout = dropout if num_layers > 1 else 0.0
        if cell == "peephole":
            self.rnn: nn.Module = PeepholeLSTM(input_size, hidden_size, num_layers, bidirectional, layer_dropout)
        else:
            kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
            self.rnn = kind(
                input_size,
                hidden_size,
                num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=layer_dropout,
            )
        init_recurrent_weights(self, cell, init)

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    @property
    def state_size(self) -> int:
        """Size of the last axis of the state tensor (h, or h and c concatenated)."""
        return self.hidden_size * (2 if is_lstm(self.cell) else 1)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(self.num_layers * self.num_directions, batch, self.state_size)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_width(x)
        if state is None:
            state = self.initial_state(x.shape[0], x)
        if self.cell == "peephole":
            h0, c0 = state.split(self.hidden_size, dim=2)
            out, h, c = self.rnn(x, lengths, h0.contiguous(), c0.contiguous())
            return out, torch.cat([h, c], dim=2)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        if self.cell == "lstm":
            h0, c0 = state.split(self.hidden_size, dim=2)
            out, (h, c) = self.rnn(packed, (h0.contiguous(), c0.contiguous()))
            new_state = torch.cat([h, c], dim=2)
        else:
            out, new_state = self.rnn(packed, state.contiguous())
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, new_state

    def run_from_zero(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What an encoder reads: outputs [B, T, D*H] (zeros at padding) and every layer's final hidden state
        [L*D, B, H] (an LSTM's cell state left out), from a zero state.

        In training on a CPU, a one-layer RNN, LSTM or GRU runs on the padded batch instead of a packed one, with the
        same numbers (tested): torch's packed CPU kernel cuts each step's input out with `narrow`, whose backward writes
        a zero tensor of the whole input and adds it up once per step, work that grows with the square of the
        length (`python -m tests.benchmarks.bench_recurrent_layer`). The forward direction reads each text from its
        start, so its outputs up to the text's length are already right; the backward direction reads each text
        reversed within its own length, so the padding comes after the text for it too; outputs past a text's
        length are zeroed, and each direction's final hidden state is its output at the text's last step."""
        # cuDNN runs packed sequences without that cost, and takes its weights as one flat buffer: CUDA keeps the
        # packed path
        if not (self.training and self.num_layers == 1 and self.cell != "peephole" and x.device.type == "cpu"):
            outputs, state = self(x, lengths)
            return outputs, state[..., : self.hidden_size]
        self._check_width(x)
        steps = torch.arange(x.shape[1], device=x.device)
        lengths = lengths.to(x.device)
        valid = steps.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        # position t of the reversed text is position length - 1 - t; padding stays where it is (its own inverse)
        reverse = torch.where(valid, lengths.unsqueeze(1) - 1 - steps.unsqueeze(0), steps.unsqueeze(0))
        forward = self._one_direction(x, "")
        outputs, finals = [forward], [forward.gather(1, _at(lengths - 1, forward)).squeeze(1)]
        if self.num_directions == 2:
            backward = self._one_direction(x.gather(1, _at(reverse, x)), "_reverse")
            backward = backward.gather(1, _at(reverse, backward))
            outputs.append(backward)
            finals.append(backward[:, 0])
        return torch.cat(outputs, dim=2) * valid.unsqueeze(2), torch.stack(finals)

    def _check_width(self, x: torch.Tensor) -> None:
        # torch checks the width of a padded input but not of a packed one (torch 2.13: an LSTM built for 21 inputs
        # runs on 20 and returns numbers), nor does its kernel called directly, so a caller that builds the wrong
        # input would train silently
        if x.shape[-1] != self.input_size:
            raise ValueError(f"the recurrent stack reads {self.input_size} inputs per step, got {x.shape[-1]}")

    def _one_direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        """One direction of the one-layer torch module over x [B, T, in] from a zero state, through the fused kernel
        nn.RNN / nn.LSTM / nn.GRU call (torch._VF, what their forward runs), with that direction's weights."""
        weights = [getattr(self.rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zero = x.new_zeros(1, x.shape[0], self.hidden_size)
        if self.cell == "lstm":
            return torch._VF.lstm(x, (zero, zero), weights, True, 1, 0.0, True, False, True)[0]
        kernel = torch._VF.gru if self.cell == "gru" else torch._VF.rnn_tanh
        return kernel(x, zero, weights, True, 1, 0.0, True, False, True)[0]

    def last_hidden(self, state: torch.Tensor) -> torch.Tensor:
        """Top layer's final hidden state, directions concatenated: [B, D*H]."""
        h = state[..., : self.hidden_size]
        top = h[-self.num_directions :]  # [D, B, H]
        return top.transpose(0, 1).reshape(h.shape[1], self.output_size)


def _at(positions: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`positions` [B] or [B, T] as a gather index along the time axis of `like` [B, T, F]."""
    index = positions.view(positions.shape[0], -1, 1)
    return index.expand(-1, -1, like.shape[2])


def recurrent_weight_blocks(stack: RecurrentStack) -> list[tuple[str, torch.Tensor, int]]:
    """(name, weight, gates) of every recurrent weight matrix; each holds `gates` stacked [H, fan_in] blocks."""
    gates = GATES[stack.cell]
    return [
        (name, p, gates)
        for name, p in stack.named_parameters()
        if p.dim() == 2 and ("weight_ih" in name or "weight_hh" in name)
    ]


def init_recurrent_weights(stack: RecurrentStack, cell: str, scheme: InitScheme) -> None:
    """Initialise recurrent weights gate block by gate block, so each block gets the scheme's scale.

    - xavier: Glorot uniform on every block (keeps activation variance for tanh/sigmoid units).
    - kaiming: He normal (fan_in) with the tanh gain on every block.
    - orthogonal: orthogonal hidden-to-hidden blocks (eigenvalues of modulus 1, so repeated multiplication
      neither explodes nor vanishes early in training), Glorot on input-to-hidden blocks.
    All biases start at 0, except the LSTM forget gate at 1 so that memory is kept by default (Jozefowicz 2015).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {INIT_SCHEMES}, got {scheme!r}")
    with torch.no_grad():
        for name, weight, gates in recurrent_weight_blocks(stack):
            for block in weight.chunk(gates, dim=0):
                if scheme == "xavier":
                    nn.init.xavier_uniform_(block)
                elif scheme == "kaiming":
                    nn.init.kaiming_normal_(block, mode="fan_in", nonlinearity="tanh")
                elif "weight_hh" in name:
                    nn.init.orthogonal_(block)
                else:
                    nn.init.xavier_uniform_(block)
        hidden = stack.hidden_size
        for name, p in stack.named_parameters():
            if p.dim() == 1 or name.endswith("peephole"):
                p.zero_()
                if is_lstm(cell) and "bias" in name and "bias_hh" not in name:
                    p[hidden : 2 * hidden] = 1.0  # forget gate (second block in torch's i, f, g, o order)


@torch.no_grad()
def init_embedding(table: nn.Embedding, scheme: Literal["unit", "scaled"]) -> None:
    """ "unit" leaves torch's N(0, 1); "scaled" draws N(0, 1/E), rows of about unit norm (RecurrentConfig's
    `embedding_init`). The padding row stays 0."""
    if scheme == "scaled":
        nn.init.normal_(table.weight, std=table.embedding_dim**-0.5)
        if table.padding_idx is not None:
            table.weight[table.padding_idx].zero_()


def expected_std(scheme: InitScheme, fan_in: int, fan_out: int) -> float:
    """Standard deviation each scheme targets for a [fan_out, fan_in] block (used by tests and docs)."""
    if scheme == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "kaiming":
        return nn.init.calculate_gain("tanh") / math.sqrt(fan_in)
    raise ValueError("orthogonal blocks are checked by W @ W.T == I, not by a std")
