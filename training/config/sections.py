"""Config sections that both tasks use: a recurrent stack, the optimiser and its loop, a tokenizer; the preset names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRESETS = ("smoke", "default", "full")


@dataclass(frozen=True)
class RecurrentConfig:
    """A recurrent stack: which cell, how big, how initialised."""

    cell: Literal["rnn", "lstm", "peephole", "gru"] = "lstm"
    embedding_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    init: Literal["xavier", "kaiming", "orthogonal"] = "orthogonal"  # orthogonal W_hh: gradients neither
    # explode nor vanish over the first steps of training
    # The embedding table's start: torch's N(0, 1) ("unit") or N(0, 1/E) ("scaled", rows of about unit norm, the
    # scale of the translation decoder's tied table). Adam moves each coordinate by about the learning rate per
    # update whatever its scale, so a row of N(0, 1) noise needs hundreds of updates of its token to move by its own
    # size; in a run of two passes most tokens get far fewer, and their rows stay mostly the noise they started
    # as (docs/measured.md, "What moves everyday Spanish": +5 validation BLEU for translation `default`).
    embedding_init: Literal["unit", "scaled"] = "unit"


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-3  # AdamW; recurrent nets tolerate less than transformers' usual 1e-3..5e-4 warm-up dance
    weight_decay: float = 1e-2
    # AdamW's fused kernel where the device has one (training/train/optimizer.py): the same algorithm, its own rounding.
    # It made the sentiment step 4-9% faster on 2 cores (docs/measured.md, "Sentiment off the tweets"); translation's
    # base keeps the reference loop, and its presets take the fused one, which made `default`'s epochs 4-5% faster
    # (training/config/translation.py).
    fused_adamw: bool = True
    batch_size: int = 64
    max_epochs: int = 10
    patience: int = 3  # early stopping on the validation metric, in epochs
    gradient_clip_norm: float = 1.0  # clip the global L2 norm: stops exploding gradients in long sequences
    # Presets are sized in work (epochs, steps), so the same command and seed give the same model on a quiet or a
    # busy machine. `max_minutes` is only a guard (0 = none): when it stops a run before its epochs or steps are
    # done, `train` says so loudly (a warning, tag memoria.cut_short) because that model depends on machine load.
    max_minutes: float = 0.0
    max_steps: int = 0  # optimiser steps (0 = no limit beyond max_epochs), e.g. 3.5 epochs of a large corpus
    # Exponential moving average of the weights (0 = off; Lightning's EMAWeightAveraging, updated after every step):
    # validation, the best-epoch checkpoint and the exported model use the average, which smooths the last steps'
    # noise. A decay d averages over about 1 / (1 - d) steps. Off: translation `default` with 0.998 lost 0.1-0.5 BLEU
    # on every test domain and the probe (docs/measured.md, "Translation"; still learning fast at the end of its 3,600
    # steps). Sentiment `full` with 0.995: test macro-F1 0.7691 against 0.7689, the probes within one sentence.
    ema_decay: float = 0.0
    # The learning-rate decay's progress also counts the share of max_minutes used (the cap as the budget: runs from
    # before presets were sized in work, the study's 5-minute rows). Presets sized in work set it false.
    time_aware_decay: bool = True
    limit_train_batches: float = 1.0  # Lightning's limit: a fraction (<= 1.0) or a number of batches
    num_workers: int = 0  # DataLoader workers; the tensors are tiny, extra processes cost more than they save
    log_every_n_steps: int = 20  # per-step metrics (loss, gradient-norm window maximum) are written this often
    seed: int = 13
    # Processes that train together (Lightning DDP, one per device): each takes its own share of every epoch's
    # batches and the gradients are averaged, so a step sees devices x batch_size examples. 1 = one process.
    devices: int = 1
    # "ddp" re-runs the command once per extra process (training/train/loop.py says why not "ddp_spawn"); "auto" lets
    # Lightning choose (one process: no DDP). The process group talks over gloo on CPUs, NCCL on CUDA GPUs.
    strategy: Literal["auto", "ddp"] = "auto"
    # Machines that train together (torchrun --nnodes, SLURM --nodes), each running `devices` processes: the run has
    # num_nodes x devices processes. Lightning checks this against the launcher's WORLD_SIZE, so a mismatch stops at
    # start instead of training on a different share. 1 = this machine only.
    num_nodes: int = 1
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"  # "cpu" runs DDP on CPU processes on a machine with a GPU


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 12000
    min_frequency: int = 2
    max_tokens: int = 96  # inputs are cut to this many tokens, in training and in serving alike
    # None: the task decides (sentiment lower-cases, translation keeps case). Spanish capitalises a sentence's first
    # word, so with case kept "Mañana" and "mañana" are different words to a tokenizer fitted on ~150k pairs
    # ("▁Ma" + "ñana" against "▁mañana").
    lowercase: bool | None = None
    # "¿", "¡", "«", "“", "(" and "[" become words of their own, so the word after them keeps its word-start form:
    # without it "¿puedes" is "▁" + "¿" + "p" + "ue" + "des" where "puedes" alone is "▁puedes" (training/text.py).
    # For inputs only: a decoder's output would come back with a space after "(". Both options on translation's
    # source, measured on `default` (docs/measured.md, "The source's tokenization"): validation perplexity 22.6 against
    # 23.8, validation BLEU 17.5 against 18.0, test and everyday probe within one run's noise; off in the presets.
    opening_marks_apart: bool = False


@dataclass(frozen=True)
class FeedbackConfig:
    """`make retrain FEEDBACK=1`: corrections from production join the training split (training/data/feedback.py)."""

    use: bool = False
    # share of the corrections kept apart as an extra evaluation set the gate reports: a fifth, enough to see whether
    # the model learned what it was told while most corrections still teach it
    holdout_share: float = 0.2
