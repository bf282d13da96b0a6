"""Seq2seq model behaviour: masked attention, padding invariance, training steps for every decoder cell."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from serving.contract.text import EOS_ID, PAD_ID
from training.config import RecurrentConfig, Seq2SeqConfig
from training.models.cells import CELL_TYPES
from training.models.seq2seq import Seq2Seq, greedy_decode, source_mask
from training.train.modules.translation import smoothed_nll

SOURCE_VOCAB, TARGET_VOCAB = 40, 30


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one intra-op thread is faster, and immune to OpenMP spin-waiting when another process holds a
    core (measured: 3 s instead of 0.03 s per training step on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(
    encoder: str = "gru", decoder: str = "gru", bidirectional: bool = True, layers: int = 1, seed: int = 0, **overrides
) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(
        encoder=RecurrentConfig(
            cell=encoder, embedding_dim=8, hidden_size=8, num_layers=layers, bidirectional=bidirectional, dropout=0.0
        ),
        decoder_cell=decoder,
        decoder_hidden_size=8,
        decoder_layers=layers,
        target_embedding_dim=8,
        attention_dim=8,
        dropout=0.0,
    )
    model = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, replace(cfg, **overrides))
    with torch.no_grad():  # peephole weights start at 0; make them matter
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.uniform_(-0.5, 0.5)
    return model.eval()


def source_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    lengths = torch.tensor([7, 3, 5, 1])
    ids = torch.randint(4, SOURCE_VOCAB, (4, 7))
    ids[source_mask(lengths, 7).logical_not()] = PAD_ID
    return ids, lengths


@pytest.mark.parametrize("score", ["additive", "dot"])
@torch.no_grad()
def test_attention_sums_to_one_and_is_zero_on_padding(score: str) -> None:
    model = tiny_model(attention_score=score, attention_dim=5)
    ids, lengths = source_batch()
    memory, keys, state = model.encode(ids, lengths)
    tokens = torch.tensor([2, 2, 2, 2])
    for _ in range(3):
        log_probs, state, attention = model.decode_step(tokens, state, memory, keys, lengths)
        torch.testing.assert_close(attention.sum(dim=1), torch.ones(4))
        assert torch.all(attention[~source_mask(lengths, 7)] == 0.0)  # exactly 0, not merely small
        torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(4))
        tokens = log_probs.argmax(dim=1)


@pytest.mark.parametrize("cell", CELL_TYPES)
@torch.no_grad()
def test_padding_a_batch_does_not_change_a_sentence(cell: str) -> None:
    # Given a 3-token sentence alone and the same sentence in a batch padded to 7 tokens
    model = tiny_model(cell, cell, bidirectional=True, layers=2)
    ids, lengths = source_batch()
    alone_ids, alone_len = ids[1:2, :3], lengths[1:2]
    targets = torch.randint(4, TARGET_VOCAB, (4, 5))
    targets[:, 0] = 2
    # When both are encoded and decoded
    batch_out = model(ids, lengths, targets)[1]
    alone_out = model(alone_ids, alone_len, targets[1:2])[0]
    batch_tokens, batch_len, batch_att = greedy_decode(model, ids, lengths, 6)
    alone_tokens, alone_len_out, alone_att = greedy_decode(model, alone_ids, alone_len, 6)
    # Then the sentence's log-probs, greedy output and attention are the same
    torch.testing.assert_close(batch_out, alone_out, atol=1e-5, rtol=0)
    n = int(alone_len_out[0])
    assert int(batch_len[1]) == n
    assert batch_tokens[1, :n].tolist() == alone_tokens[0, :n].tolist()
    torch.testing.assert_close(batch_att[1, :n, :3], alone_att[0, :n], atol=1e-5, rtol=0)
    assert torch.all(batch_att[1, :, 3:] == 0)


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_teacher_forced_training_step_for_every_decoder_cell(cell: str) -> None:
    model = tiny_model("gru", cell, layers=2, dropout=0.1, teacher_forcing=0.5).train()
    ids, lengths = source_batch()
    targets = torch.randint(4, TARGET_VOCAB, (4, 6))
    targets[2:, 4:] = PAD_ID
    decoder_inputs = torch.cat([torch.full((4, 1), 2), targets[:, :-1]], dim=1)
    for teacher_forcing in (1.0, 0.5):
        log_probs = model(ids, lengths, decoder_inputs, teacher_forcing)
        assert log_probs.shape == (4, 6, TARGET_VOCAB)
        loss, nll_sum, tokens = smoothed_nll(log_probs, targets, smoothing=0.1)
        model.zero_grad()
        loss.backward()
        assert int(tokens) == 20 and torch.isfinite(loss) and float(nll_sum) > 0
        grads = {name: p.grad for name, p in model.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [
            n for n, g in grads.items() if g is None
        ]
        assert any(float(g.abs().sum()) > 0 for n, g in grads.items() if n.startswith("decoder.rnn"))


@pytest.mark.parametrize("score", ["additive", "dot"])
@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
@pytest.mark.parametrize("cell", CELL_TYPES)
@torch.no_grad()
def test_training_pass_equals_the_serving_step_loop(cell: str, attention: str, score: str) -> None:
    # Given a model whose training pass may run the whole target at once (luong) or step by step (bahdanau)
    model = tiny_model("gru", cell, layers=2, attention=attention, attention_score=score)
    ids, lengths = source_batch()
    decoder_inputs = torch.randint(4, TARGET_VOCAB, (4, 5))
    decoder_inputs[:, 0] = 2
    # When the teacher-forced pass and the one-step-at-a-time decoder (what export and serving run) see the same
    teacher_forced = model(ids, lengths, decoder_inputs)
    memory, keys, state = model.encode(ids, lengths)
    stepped = []
    for t in range(decoder_inputs.shape[1]):
        log_probs, state, _ = model.decode_step(decoder_inputs[:, t], state, memory, keys, lengths)
        stepped.append(log_probs)
    # Then they give the same log-probabilities: what was trained is what is served
    torch.testing.assert_close(teacher_forced, torch.stack(stepped, 1), atol=1e-5, rtol=0)


def test_smoothed_nll_matches_torch_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, TARGET_VOCAB)
    targets = torch.randint(4, TARGET_VOCAB, (3, 5))
    targets[0, 3:] = PAD_ID
    loss, _, _ = smoothed_nll(torch.log_softmax(logits, -1), targets, 0.1)
    expected = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID, label_smoothing=0.1
    )
    torch.testing.assert_close(loss, expected)


def test_decoder_stack_follows_the_init_scheme() -> None:
    model = tiny_model("gru", "gru", init="orthogonal")
    w_hh = model.decoder.rnn.rnn.weight_hh_l0
    for block in w_hh.chunk(3, dim=0):
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)


@torch.no_grad()
def test_a_scaled_source_embedding_is_the_decoders_scale_and_changes_nothing_else() -> None:
    unit = tiny_model()
    torch.manual_seed(0)
    scaled = Seq2Seq(
        SOURCE_VOCAB, TARGET_VOCAB, replace(unit.cfg, encoder=replace(unit.cfg.encoder, embedding_init="scaled"))
    )
    assert 0.8 < unit.encoder.embedding.weight[1:].std() < 1.2  # torch's N(0, 1)
    assert 0.8 < scaled.encoder.embedding.weight[1:].std() * 8**0.5 < 1.2  # N(0, 1/E), E = 8
    assert scaled.encoder.embedding.weight[PAD_ID].abs().sum() == 0
    # drawn last: every other weight is the unit-start model's, so a comparison of the two changes one thing
    others = {n: p for n, p in scaled.named_parameters() if n != "encoder.embedding.weight"}
    for name, p in unit.named_parameters():
        if name in others and "peephole" not in name:
            torch.testing.assert_close(p, others[name], rtol=0, atol=0)


def test_a_shared_vocabulary_is_one_table_that_learns_from_both_sides() -> None:
    model = tiny_model()
    shared = Seq2Seq(TARGET_VOCAB, TARGET_VOCAB, replace(model.cfg, shared_vocabulary=True))
    table = shared.decoder.embedding.weight
    assert shared.encoder.embedding.weight is table and shared.decoder.output.weight is table
    assert (
        sum(p.numel() for p in shared.parameters())
        == sum(p.numel() for p in Seq2Seq(TARGET_VOCAB, TARGET_VOCAB, model.cfg).parameters()) - table.numel()
    )
    ids, lengths = source_batch()
    ids = ids.clamp(max=TARGET_VOCAB - 1)
    memory, _, _ = shared.encode(ids, lengths)
    memory.sum().backward()  # the encoder's use of the table reaches the decoder's output vectors
    assert table.grad is not None and table.grad[ids[0, 0]].abs().sum() > 0


@torch.no_grad()
def test_greedy_decode_stops_every_sentence_at_eos() -> None:
    model = tiny_model()
    with torch.no_grad():  # make EOS the overwhelming choice at every step
        model.decoder.output.bias[EOS_ID] = 50.0
    ids, lengths = source_batch()
    tokens, out_len, attention = greedy_decode(model, ids, lengths, max_output_tokens=10)
    assert tokens.shape == (4, 1) and tokens[:, 0].tolist() == [EOS_ID] * 4
    assert out_len.tolist() == [1, 1, 1, 1] and attention.shape == (4, 1, 7)


@torch.no_grad()
def test_dot_attention_scores_the_query_against_the_encoders_keys() -> None:
    # Given a model with dot scores: keys as wide as the decoder's query, whatever attention_dim says
    model = tiny_model(attention_score="dot", attention_dim=5)
    ids, lengths = source_batch()
    memory, keys, _ = model.encode(ids, lengths)
    assert keys.shape == (4, 7, 8)
    # When the decoder attends with a query
    query = torch.randn(4, 8)
    context, weights = model.decoder.attention(query, keys, memory, source_mask(lengths, 7))
    # Then the weights are the masked softmax of q . k / sqrt(8), and the context their mix of the memory
    scores = torch.einsum("bh,bsh->bs", query, keys) / 8**0.5
    expected = torch.softmax(scores.masked_fill(~source_mask(lengths, 7), float("-inf")), dim=1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, torch.einsum("bs,bsm->bm", expected, memory))
    assert not list(model.decoder.attention.parameters())
