"""Encoder-decoder with attention: Spanish token ids -> English token log-probabilities.

Two halves that export as two graphs, so the decoding loop (greedy or beam search, early stop at EOS) lives in
the runtime:

    encode(input_ids [B, S], lengths [B])             -> memory [B, S, M], keys [B, S, A], state [L, B, K]
    decode_step(tokens [B], state, memory, keys, lengths) -> log_probs [B, V], next_state, attention [B, S]

`keys` (the encoder half of the attention score) are computed once per sentence, not once per output token.
`state` is one tensor in `RecurrentStack`'s layout ([L, B, H], or [L, B, 2H] for LSTMs: h || c), so both graphs
have the same inputs and outputs for every cell type.

Two attention styles (`model.attention`):
- `bahdanau` (additive attention with input feeding): each step attends with the PREVIOUS hidden state and feeds the
  context into the recurrent cell. Training must step through the target in Python, one token at a time.
- `luong` (attention after the cell): each step runs the cell on the token alone, then attends with the NEW hidden
  state. Training runs the recurrent stack over the whole target in one fused call and scores every step's
  attention at once, which is several times faster on a CPU; serving's step graph has the same inputs and outputs
  either way.

Two scores (`model.attention_score`): `additive` (v . tanh(W_q q + k_s)) and `dot` (q . k_s / sqrt(H)); both read
keys the encoder computed once per sentence.

Training projects all steps to the vocabulary at once: the output layer is the biggest matrix product, and one
[B*T, .] product is far cheaper than T small ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from serving.contract.text import BOS_ID, EOS_ID, PAD_ID
from training.config import RecurrentConfig, Seq2SeqConfig
from training.models.cells import RecurrentStack, init_embedding, is_lstm


def source_mask(lengths: torch.Tensor, steps: int | torch.Tensor) -> torch.Tensor:
    """[B, S] bool, True at real source positions."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Seq2SeqEncoder(nn.Module):
    """Embedding -> recurrent stack -> memory, attention keys, and the decoder's initial state (a learned bridge)."""

    def __init__(
        self, vocab_size: int, cfg: RecurrentConfig, key_size: int, decoder_layers: int, decoder_state_size: int
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = RecurrentStack(
            cfg.cell, cfg.embedding_dim, cfg.hidden_size, cfg.num_layers, cfg.bidirectional, cfg.dropout, cfg.init
        )
        self.keys = nn.Linear(self.rnn.output_size, key_size, bias=False)
        # The bridge reads the final hidden state of every layer and direction: a backward direction's final state
        # summarises the sentence from its first word, which a forward-only summary lacks.
        self.bridge = nn.Linear(
            cfg.num_layers * self.rnn.num_directions * cfg.hidden_size, decoder_layers * decoder_state_size
        )
        self.decoder_layers = decoder_layers
        self.decoder_state_size = decoder_state_size

    @property
    def memory_size(self) -> int:
        return self.rnn.output_size

    def forward(
        self, input_ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dropout(self.embedding(input_ids))
        memory, final_h = self.rnn.run_from_zero(x, lengths)  # memory is 0 at padded positions
        final_h = final_h.transpose(0, 1).flatten(1)  # [B, L*D*H]
        init = torch.tanh(self.bridge(final_h))  # tanh: the range of an RNN state (and a sane LSTM cell start)
        init = init.reshape(-1, self.decoder_layers, self.decoder_state_size).transpose(0, 1).contiguous()
        return memory, self.keys(memory), init


class AdditiveAttention(nn.Module):
    """score(q, k_s) = v . tanh(W_q q + k_s), with k_s = W_k m_s precomputed by the encoder; softmax over the real
    source positions only, so padded positions get exactly 0 weight (exp(-inf))."""

    def __init__(self, query_size: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], keys [B, S, A], memory [B, S, M], mask [B, S] -> context [B, M], weights [B, S]."""
        scores = self.v(torch.tanh(keys + self.query(query).unsqueeze(1))).squeeze(2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights

    def all_steps(
        self, queries: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same for every step at once: queries [B, T, Q] -> contexts [B, T, M], weights [B, T, S]."""
        scores = self.v(torch.tanh(keys.unsqueeze(1) + self.query(queries).unsqueeze(2))).squeeze(3)
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=2)
        return torch.bmm(weights, memory), weights


class DotAttention(nn.Module):
    """score(q, k_s) = q . k_s / sqrt(Q), with k_s = W_k m_s precomputed by the encoder (Luong et al., 2015,
    "general"; scaled as in Vaswani et al., 2017, so the first softmax is not saturated); padded positions get
    exactly 0 weight. No parameters of its own: the keys' projection is the encoder's."""

    def __init__(self, query_size: int) -> None:
        super().__init__()
        self.scale = query_size**-0.5

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], keys [B, S, Q], memory [B, S, M], mask [B, S] -> context [B, M], weights [B, S]."""
        contexts, weights = self.all_steps(query.unsqueeze(1), keys, memory, mask)
        return contexts.squeeze(1), weights.squeeze(1)

    def all_steps(
        self, queries: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same for every step at once: queries [B, T, Q] -> contexts [B, T, M], weights [B, T, S]."""
        scores = torch.bmm(queries, keys.transpose(1, 2)) * self.scale
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=2)
        return torch.bmm(weights, memory), weights


def key_size(cfg: Seq2SeqConfig) -> int:
    """Width of the encoder's attention keys: the additive score's own space, or the decoder's query for dot."""
    return cfg.decoder_hidden_size if cfg.attention_score == "dot" else cfg.attention_dim


class AttentionDecoder(nn.Module):
    """One step: attend with the previous top-layer hidden state, run the stack on [embedding; context], read out
    from [h; context; embedding] through a tanh bottleneck whose output matrix is tied to the target embedding.

    The bottleneck keeps the per-step vocabulary projection at E x V instead of (H + M + E) x V (6x fewer
    multiply-adds in the default preset), and tying (Press & Wolf, 2017) removes V x E parameters that a corpus of
    tens of thousands of sentences cannot fit well anyway.
    """

    def __init__(self, vocab_size: int, memory_size: int, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        emb, hidden = cfg.target_embedding_dim, cfg.decoder_hidden_size
        self.hidden_size = hidden
        self.embedding = nn.Embedding(vocab_size, emb, padding_idx=PAD_ID)
        # Tied weights serve as output vectors too: N(0, 1/E) keeps the first logits near 0 (uniform start).
        init_embedding(self.embedding, "scaled")
        self.dropout = nn.Dropout(cfg.dropout)
        self.attention: AdditiveAttention | DotAttention = (
            DotAttention(hidden) if cfg.attention_score == "dot" else AdditiveAttention(hidden, cfg.attention_dim)
        )
        self.input_feeding = cfg.attention == "bahdanau"
        rnn_input = emb + memory_size if self.input_feeding else emb
        self.rnn = RecurrentStack(cfg.decoder_cell, rnn_input, hidden, cfg.decoder_layers, False, cfg.dropout, cfg.init)
        self.readout = nn.Linear(hidden + memory_size + emb, emb)
        self.output = nn.Linear(emb, vocab_size)
        self.output.weight = self.embedding.weight

    @property
    def state_size(self) -> int:
        return self.rnn.state_size

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stack over every step of x [B, T, in], no padding involved -> (outputs [B, T, H], next state).

        Steps after a target's end are computed and ignored by the masked loss, so no packing is needed; calling
        the fused torch module directly skips pack_padded_sequence's sort and host copy."""
        if self.rnn.cell == "peephole":
            steps = torch.full_like(x[:, 0, 0], x.shape[1], dtype=torch.long)
            return self.rnn(x, steps, state)
        if is_lstm(self.rnn.cell):
            h0, c0 = state.split(self.hidden_size, dim=2)
            out, (h, c) = self.rnn.rnn(x, (h0.contiguous(), c0.contiguous()))
            return out, torch.cat([h, c], dim=2)
        return self.rnn.rnn(x, state.contiguous())

    def step(
        self, embedded: torch.Tensor, state: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """embedded [B, E] -> (h [B, H], context [B, M], attention [B, S], next_state)."""
        if not self.input_feeding:
            out, next_state = self._run(embedded.unsqueeze(1), state)
            context, weights = self.attention(out[:, 0], keys, memory, mask)
            return out[:, 0], context, weights, next_state
        query = state[-1, :, : self.hidden_size]  # previous top-layer hidden state
        context, weights = self.attention(query, keys, memory, mask)
        out, next_state = self._run(torch.cat([embedded, context], dim=1).unsqueeze(1), state)
        return out[:, 0], context, weights, next_state

    def features(self, h: torch.Tensor, context: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """The readout vector [..., E] that the (tied) output layer projects to the vocabulary."""
        return self.dropout(torch.tanh(self.readout(torch.cat([h, context, embedded], dim=-1))))

    def logits(self, h: torch.Tensor, context: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(h, context, embedded))

    def teacher_forced_features(
        self, inputs: torch.Tensor, state: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """inputs [B, T] (BOS, y_1, ..., y_{T-1}), the reference fed at every step -> readout features [B, T, E],
        before the vocabulary projection (a sampled softmax projects them onto a few candidates only)."""
        embedded = self.dropout(self.embedding(inputs))  # [B, T, E]
        if not self.input_feeding:
            hs, _ = self._run(embedded, state)  # one fused call over the whole target
            contexts, _ = self.attention.all_steps(hs, keys, memory, mask)
            return self.features(hs, contexts, embedded)
        hs, contexts = [], []
        for t in range(inputs.shape[1]):
            h, context, _, state = self.step(embedded[:, t], state, memory, keys, mask)
            hs.append(h)
            contexts.append(context)
        return self.features(torch.stack(hs, 1), torch.stack(contexts, 1), embedded)

    def teacher_forced(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        teacher_forcing: float = 1.0,
    ) -> torch.Tensor:
        """inputs [B, T] (BOS, y_1, ..., y_{T-1}) -> log-probs [B, T, V] of (y_1, ..., y_T)."""
        if teacher_forcing >= 1.0 or not self.training:
            return F.log_softmax(self.output(self.teacher_forced_features(inputs, state, memory, keys, mask)), dim=-1)
        embedded = self.dropout(self.embedding(inputs))  # [B, T, E]
        steps = inputs.shape[1]
        # Scheduled sampling: each token is fed the reference with probability `teacher_forcing`, otherwise the
        # model's own previous argmax, so it learns to recover from its own mistakes. Needs per-step logits.
        outputs = []
        current = embedded[:, 0]
        for t in range(steps):
            h, context, _, state = self.step(current, state, memory, keys, mask)
            step_logits = self.logits(h, context, current)
            outputs.append(step_logits)
            if t + 1 < steps:
                own = self.dropout(self.embedding(step_logits.detach().argmax(dim=1)))
                use_own = torch.rand(inputs.shape[0], 1, device=inputs.device) >= teacher_forcing
                current = torch.where(use_own, own, embedded[:, t + 1])
        return F.log_softmax(torch.stack(outputs, 1), dim=-1)


class Seq2Seq(nn.Module):
    def __init__(self, source_vocab_size: int, target_vocab_size: int, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        decoder_state = cfg.decoder_hidden_size * (2 if is_lstm(cfg.decoder_cell) else 1)
        self.encoder = Seq2SeqEncoder(source_vocab_size, cfg.encoder, key_size(cfg), cfg.decoder_layers, decoder_state)
        self.decoder = AttentionDecoder(target_vocab_size, self.encoder.memory_size, cfg)
        if cfg.shared_vocabulary:
            if source_vocab_size != target_vocab_size:
                raise ValueError(f"a shared vocabulary needs one size, got {source_vocab_size} and {target_vocab_size}")
            # one table for the encoder's input and the decoder's input and output (the decoder's init: N(0, 1/E),
            # whatever encoder.embedding_init says)
            self.encoder.embedding.weight = self.decoder.embedding.weight
        else:
            # after every other weight is drawn, so that the same seed gives the same weights whichever start it takes
            init_embedding(self.encoder.embedding, cfg.encoder.embedding_init)

    def encode(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """input_ids [B, S] int64, lengths [B] int64 -> memory [B, S, M], keys [B, S, A], state [L, B, K]."""
        return self.encoder(input_ids, lengths)

    def decode_step(
        self, tokens: torch.Tensor, state: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens [B] (the previous output) -> log_probs [B, V], next_state, attention [B, S]."""
        mask = source_mask(lengths, memory.shape[1])
        embedded = self.decoder.embedding(tokens)
        h, context, weights, next_state = self.decoder.step(embedded, state, memory, keys, mask)
        return F.log_softmax(self.decoder.logits(h, context, embedded), dim=-1), next_state, weights

    def teacher_forced_features(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        """Readout features [B, T, E] for decoder_inputs [B, T], the reference fed at every step; the output layer
        (`self.decoder.output`) turns them into logits."""
        memory, keys, state = self.encode(input_ids, lengths)
        mask = source_mask(lengths, memory.shape[1])
        return self.decoder.teacher_forced_features(decoder_inputs, state, memory, keys, mask)

    def forward(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, decoder_inputs: torch.Tensor, teacher_forcing: float = 1.0
    ) -> torch.Tensor:
        """Teacher-forced log-probs [B, T, V] for decoder_inputs [B, T] = (BOS, y_1, ..., y_{T-1})."""
        memory, keys, state = self.encode(input_ids, lengths)
        mask = source_mask(lengths, memory.shape[1])
        return self.decoder.teacher_forced(decoder_inputs, state, memory, keys, mask, teacher_forcing)


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq, input_ids: torch.Tensor, lengths: torch.Tensor, max_output_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Argmax decoding in torch, the reference for export parity and validation BLEU.

    Returns tokens [B, T] (EOS included where produced, PAD after it), output lengths [B], attention [B, T, S].
    Stops when every sentence has produced EOS or after `max_output_tokens` tokens, like serving's greedy search.
    """
    was_training = model.training
    model.eval()
    memory, keys, state = model.encode(input_ids, lengths)
    batch = input_ids.shape[0]
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=input_ids.device)
    done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    out_len = torch.zeros(batch, dtype=torch.long, device=input_ids.device)
    outputs, attentions = [], []
    for _ in range(max_output_tokens):
        log_probs, state, weights = model.decode_step(tokens, state, memory, keys, lengths)
        tokens = log_probs.argmax(dim=1).masked_fill(done, PAD_ID)
        outputs.append(tokens)
        attentions.append(weights.masked_fill(done.unsqueeze(1), 0.0))
        out_len += (~done).long()
        done |= tokens == EOS_ID
        if bool(done.all()):
            break
    model.train(was_training)
    return torch.stack(outputs, 1), out_len, torch.stack(attentions, 1)
