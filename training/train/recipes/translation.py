"""Translation recipe for `train`: data, source and target tokenizers, seq2seq model, and a test evaluation that
decodes with the SERVING decoder (ONNX graphs + numpy beam search), so the reported score is the served one. The
everyday probe (training/data/translation/everyday_probe.jsonl) is decoded the same way."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import mlflow
from torch.utils.data import DataLoader

from serving.contract.bundle import load_bundle
from serving.contract.text import BOS_ID, EOS_ID, decode_ids, encode_ids
from serving.translation import TranslationPredictor
from training.config import TranslationConfig, Workspace
from training.data.batching import (
    BucketBatchSampler,
    FinishingBatchSampler,
    batch_loader,
    bucketed_loader,
    pad_tensor,
    padding_share,
)
from training.data.translation import back_translation
from training.data.translation.concatenation import concatenated_pairs
from training.data.translation.corpus import SPLITS, prepare_translation
from training.data.translation.everyday_probe import probe_metrics, probe_rows
from training.data.translation.pairs import TranslationPair
from training.export.bundle import export_bundle
from training.metrics.bleu import sacrebleu_signatures, scores_by_domain
from training.model_folder import read_model_folder, write_model_folder
from training.plots import attention_figure, close
from training.task_spec import TaskSpec
from training.text import fit_tokenizer, save_tokenizer
from training.tracking.feedback import log_feedback
from training.tracking.provenance import log_data_inputs
from training.train.gradient_flow import log_gradient_flow, translation_gradient_flow
from training.train.modules.translation import BleuSample, TranslationBatch, TranslationModule

log = logging.getLogger(__name__)

SOURCE_TOKENIZER_FILE = "source_tokenizer.json"
TARGET_TOKENIZER_FILE = "target_tokenizer.json"
BLEU_SAMPLE_SIZE = 300  # validation sentences decoded every epoch: a stable BLEU for a few seconds per epoch
SAMPLE_TABLE_SIZE = 20
HEATMAPS = 4

Example = tuple[list[int], list[int]]  # source ids, target ids + EOS


def collate_translation(batch: list[Example]) -> TranslationBatch:
    """(source, source lengths, decoder inputs = BOS + target, decoder targets = target + EOS)."""
    src, src_len = pad_tensor([s for s, _ in batch])
    tgt_in, _ = pad_tensor([[BOS_ID, *t[:-1]] for _, t in batch])
    tgt_out, _ = pad_tensor([t for _, t in batch])
    return src, src_len, tgt_in, tgt_out


def bleu_sample_indices(validation: Sequence[TranslationPair], size: int, seed: int) -> list[int]:
    """A seeded random sample of validation pairs, the same share from every domain (the validation split is in
    corpus order: its first rows are all one domain, and an epoch picked on them would favour that domain)."""
    by_domain: dict[str, list[int]] = {}
    for i, pair in enumerate(validation):
        by_domain.setdefault(pair.domain, []).append(i)
    rng = random.Random(f"bleu-sample:{seed}")
    per_domain = max(1, size // max(1, len(by_domain)))
    chosen = [i for idx in by_domain.values() for i in rng.sample(idx, min(per_domain, len(idx)))]
    return sorted(chosen)


def is_short_sentence(spanish: str, max_words: int) -> bool:
    """A line someone says or writes, not an item name or a menu label: at most `max_words` words, opened by "¿"/"¡"
    or closed by ".", "?" or "!" (28% of `default`'s training pairs at 8 words, nearly all game dialogue)."""
    text = spanish.strip()
    return len(text.split()) <= max_words and (text[:1] in "¿¡" or text[-1:] in ".?!")


def with_short_lines_repeated(pairs: Sequence[TranslationPair], max_words: int, repeat: int) -> list[TranslationPair]:
    """The pairs, then each short sentence among them (`is_short_sentence`) `repeat - 1` more times."""
    short = [p for p in pairs if is_short_sentence(p.source, max_words)]
    return [*pairs, *(short * (repeat - 1))]


def with_back_translation_tag(
    sources: Sequence[list[int]], rows: Sequence[TranslationPair], tag: int, max_tokens: int
) -> list[list[int]]:
    """The source ids with `tag` in front of each back-translated pair's (cut to `max_tokens`); people's as they are."""
    return [
        [tag, *ids][:max_tokens] if back_translation.is_back_translated(row.domain) else list(ids)
        for ids, row in zip(sources, rows, strict=True)
    ]


class TranslationRecipe:
    monitor = "val/bleu"

    def __init__(self, task: TaskSpec, cfg: TranslationConfig, ws: Workspace, progress: bool) -> None:
        self.task = task
        self.cfg = cfg
        self.ws = ws
        self.progress = progress

    def prepare(self) -> None:
        self.prepared = prepare_translation(self.cfg.data, self.ws, progress=self.progress)

    def build(self, workdir: Path) -> tuple[L.LightningModule, object, object]:
        cfg = self.cfg
        self.splits: dict[str, list[TranslationPair]] = {name: self.prepared.pairs(name) for name in SPLITS}
        self.feedback = None
        if cfg.feedback.use:  # `make retrain FEEDBACK=1`: corrections join the training split only
            self.splits["train"] = self._merge_feedback()
        train = self.splits["train"]
        # Case carries meaning in both languages (names, "LORD", sentence starts), and the output is read by people.
        if cfg.model.shared_vocabulary:  # one tokenizer, saved under both names: serving reads it as two
            both = (text for p in train for text in (p.source, p.target))
            self.source_tokenizer = self.target_tokenizer = fit_tokenizer(both, cfg.source_tokenizer, lowercase=False)
        else:
            self.source_tokenizer = fit_tokenizer((p.source for p in train), cfg.source_tokenizer, lowercase=False)
            self.target_tokenizer = fit_tokenizer((p.target for p in train), cfg.target_tokenizer, lowercase=False)
        if cfg.back_translation_tag:  # a special token: one id, never split, never made by the normaliser
            self.source_tokenizer.add_special_tokens([back_translation.TAG])
        save_tokenizer(self.source_tokenizer, workdir / SOURCE_TOKENIZER_FILE)
        save_tokenizer(self.target_tokenizer, workdir / TARGET_TOKENIZER_FILE)
        self.splits["train"] = [
            *with_short_lines_repeated(train, cfg.short_line_words, cfg.short_line_repeat),
            *concatenated_pairs(
                [p for p in train if is_short_sentence(p.source, cfg.short_line_words)],
                cfg.concat_pairs,
                cfg.optim.seed,
            ),
        ]
        self.encoded = {name: self._encode(rows) for name, rows in self.splits.items()}
        chosen = bleu_sample_indices(self.splits["validation"], BLEU_SAMPLE_SIZE, cfg.optim.seed)
        validation = [self.splits["validation"][i] for i in chosen]
        bleu = BleuSample(
            sources=[self.encoded["validation"][i][0] for i in chosen],
            references=[p.target for p in validation],
            detokenize=lambda ids: decode_ids(self.target_tokenizer, ids),
            max_output_tokens=cfg.decoding.max_output_tokens,
            batch_size=cfg.optim.batch_size,
        )
        module = TranslationModule(
            cfg, self.source_tokenizer.get_vocab_size(), self.target_tokenizer.get_vocab_size(), bleu
        )
        return module, self.loader("train", shuffle=True), self.loader("validation", shuffle=False)

    def _merge_feedback(self) -> list[TranslationPair]:
        """The training pairs with production's corrections in (training/data/feedback.py): a corrected source the
        split already has gets the corrected English as its target (and no other references); new ones are added."""
        from dataclasses import replace

        from serving.contract.production import production_dir, read_feedback
        from training.data.feedback import merge_feedback
        from training.data.translation.pairs import dedupe_key

        rows = {name: [{"source": p.source, "target": p.target} for p in pairs] for name, pairs in self.splits.items()}
        corrections = read_feedback(self.task.name)
        f = merge_feedback(rows, corrections, dedupe_key, self.cfg.feedback.holdout_share, "source", "target")
        self.feedback = f
        print(
            f"{self.task.name}: feedback from {production_dir()}: {len(corrections)} correction(s); {f.added} added "
            f"and {f.relabelled} relabelled in the training split, {len(f.held_out)} held out, not used: {f.dropped}"
        )
        train = self.splits["train"]
        merged = [
            pair if row["target"] == pair.target else replace(pair, target=row["target"], references=())
            for pair, row in zip(train, f.train, strict=False)
        ]
        merged += [
            TranslationPair(id=f"feedback-{i}", source=row["source"], target=row["target"], domain="feedback")
            for i, row in enumerate(f.train[len(train) :])
        ]
        return merged

    def log_inputs(self) -> None:
        """What the run read and how much padding its batches carry, into the active MLflow run (rank 0 only: the
        other processes of a multi-process run have no run, and `build` runs on all of them)."""
        log_data_inputs(self.task.name, self.prepared.dir, self.prepared.card, self.task.input_field)
        # (the card, data tags, the gate's split, the dataset input)
        mlflow.log_params({f"data.rows_{name}": len(rows) for name, rows in self.splits.items()})
        if self.feedback is not None:
            log_feedback(self.feedback)
        mlflow.log_metrics(self._padding_shares())

    def _encode(self, rows: Sequence[TranslationPair]) -> list[Example]:
        cfg = self.cfg
        sources = encode_ids(self.source_tokenizer, [p.source for p in rows], cfg.source_tokenizer.max_tokens)
        if cfg.back_translation_tag:
            tag = self.source_tokenizer.token_to_id(back_translation.TAG)
            sources = with_back_translation_tag(sources, rows, tag, cfg.source_tokenizer.max_tokens)
        # One slot is kept for EOS, so no target is longer than what the decoder may generate.
        cap = min(cfg.target_tokenizer.max_tokens, cfg.decoding.max_output_tokens) - 1
        targets = encode_ids(self.target_tokenizer, [p.target for p in rows], cap)
        return [(s, [*t, EOS_ID]) for s, t in zip(sources, targets, strict=True)]

    def _padding_shares(self) -> dict[str, float]:
        """Padding share of one epoch's training batches, with and without length bucketing (where epoch time
        goes: a padded step costs as much as a real one)."""
        items, size = self.encoded["train"], self.cfg.optim.batch_size
        # num_replicas=1: every batch of the epoch, however many processes train
        sampler = BucketBatchSampler(self._keys(items), size, True, self.cfg.optim.seed, num_replicas=1, rank=0)
        bucketed = list(sampler)
        order = list(range(len(items)))
        random.Random(self.cfg.optim.seed).shuffle(order)
        unbucketed = [order[i : i + size] for i in range(0, len(order), size)]
        shares = {}
        for side, lengths in (("source", [len(s) for s, _ in items]), ("target", [len(t) for _, t in items])):
            shares[f"data/padding_share_{side}"] = padding_share(lengths, bucketed)
            shares[f"data/padding_share_{side}_unbucketed"] = padding_share(lengths, unbucketed)
        return shares

    @staticmethod
    def _keys(items: Sequence[Example]) -> list[int]:
        # Bucket by target length first: the decoder's step loop runs to the longest target of a batch and costs
        # more than the encoder; source length breaks ties.
        return [len(t) * 4096 + len(s) for s, t in items]

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        items = self.encoded[split]
        optim = self.cfg.optim
        if split == "train" and self.cfg.finish_steps:
            return batch_loader(items, self._finishing_sampler(), collate_translation, optim.num_workers)
        return bucketed_loader(
            items, self._keys(items), optim.batch_size, shuffle, optim.seed, collate_translation, optim.num_workers
        )

    def _finishing_sampler(self) -> FinishingBatchSampler:
        """The training batches, the last `finish_steps` of them from the pairs of `finish_domains` only (none
        named: the human-translated pairs)."""
        items, cfg = self.encoded["train"], self.cfg
        named = set(cfg.finish_domains)
        chosen = [
            i
            for i, pair in enumerate(self.splits["train"])
            if (pair.domain in named if named else not back_translation.is_back_translated(pair.domain))
        ]
        if not chosen:
            which = f"of {sorted(named)}" if named else "translated by people"
            raise ValueError(f"finish_steps: the training split holds no pair {which} to finish on")
        keys = self._keys(items)
        return FinishingBatchSampler(
            BucketBatchSampler(keys, cfg.optim.batch_size, shuffle=True, seed=cfg.optim.seed),
            BucketBatchSampler([keys[i] for i in chosen], cfg.optim.batch_size, shuffle=True, seed=cfg.optim.seed + 1),
            chosen,
            total_steps=cfg.optim.max_steps,
            finish_steps=cfg.finish_steps,
        )

    def evaluate(self, module: TranslationModule, trainer: L.Trainer, workdir: Path) -> dict[str, float]:
        """Export the trained model exactly as `publish` will, then score the test split with the served decoder."""
        model_dir, bundle_dir = workdir / "eval_model", workdir / "eval_bundle"
        self.save_model(module, model_dir)
        run = mlflow.active_run()
        folder = read_model_folder(model_dir, self.task.config)
        report = export_bundle(self.task, folder, bundle_dir, run.info.run_id if run else "", {})
        predictor = TranslationPredictor(load_bundle(report.bundle_dir, self.task.name))
        test = self.splits["test"]
        rows = [{"target": p.target, "references": list(p.references), "domain": p.domain} for p in test]
        sources = [p.source for p in test]
        started = time.perf_counter()
        beam = predictor.translate(sources, beam_size=self.cfg.decoding.beam_size)
        beam_seconds = time.perf_counter() - started
        started = time.perf_counter()
        greedy = predictor.translate(sources, beam_size=1)
        greedy_seconds = time.perf_counter() - started
        metrics = scores_by_domain(beam, rows, prefix="test/")
        metrics.update({f"{k}_greedy": v for k, v in scores_by_domain(greedy, rows, prefix="test/").items()})
        mlflow.log_dict(sacrebleu_signatures(), "eval/sacrebleu_signatures.json")
        metrics["test/sentences_per_second_beam"] = len(test) / max(beam_seconds, 1e-9)
        metrics["test/sentences_per_second_greedy"] = len(test) / max(greedy_seconds, 1e-9)
        metrics["export/parity_max_abs_diff"] = float(report.parity["max_abs_diff"])
        mlflow.log_dict(report.parity, "export/parity.json")
        self._log_outputs(test, beam, greedy)
        metrics.update(self._score_probe(predictor))
        self._log_heatmaps(predictor, sources[:HEATMAPS])
        flows = translation_gradient_flow(module.model, self.encoded["validation"])
        metrics.update(log_gradient_flow(flows, "longest validation sources"))
        return metrics

    def _log_outputs(self, test: Sequence[TranslationPair], beam: list[str], greedy: list[str]) -> None:
        lines = [
            json.dumps({"id": p.id, "source": p.source, "target": p.target, "beam": b, "greedy": g}, ensure_ascii=False)
            for p, b, g in zip(test, beam, greedy, strict=True)
        ]
        mlflow.log_text("\n".join(lines) + "\n", "predictions/test_hypotheses.jsonl")
        sample = list(zip(test, beam, greedy, strict=True))[:SAMPLE_TABLE_SIZE]
        mlflow.log_table(
            {
                "source": [p.source for p, _, _ in sample],
                "reference": [p.target for p, _, _ in sample],
                f"beam_{self.cfg.decoding.beam_size}": [b for _, b, _ in sample],
                "greedy": [g for _, _, g in sample],
            },
            "predictions/test_samples.json",
        )

    def _score_probe(self, predictor: TranslationPredictor) -> dict[str, float]:
        """The everyday probe through the same predictor and beam as the test split: `probe/everyday_bleu` and
        `probe/everyday_chrf`, the numbers the Apertium peer reports on the same sentences. Reported, never used to
        choose."""
        rows = probe_rows()
        outputs = predictor.translate([row["es"] for row in rows], beam_size=self.cfg.decoding.beam_size)
        lines = [json.dumps({**row, "output": out}, ensure_ascii=False) for row, out in zip(rows, outputs, strict=True)]
        mlflow.log_text("\n".join(lines) + "\n", "predictions/everyday_probe.jsonl")
        return probe_metrics(outputs, rows)

    def _log_heatmaps(self, predictor: TranslationPredictor, sources: Sequence[str]) -> None:
        for i, t in enumerate(predictor.translate_with_attention(sources, beam_size=self.cfg.decoding.beam_size)):
            fig = attention_figure(t.attention, t.source_tokens, t.output_tokens, f"test sentence {i}: {t.text[:80]}")
            mlflow.log_figure(fig, f"plots/attention_test_{i}.png")
            close(fig)

    def save_model(self, module: TranslationModule, out_dir: Path) -> None:
        tokenizers = {
            "source": (SOURCE_TOKENIZER_FILE, self.source_tokenizer),
            "target": (TARGET_TOKENIZER_FILE, self.target_tokenizer),
        }
        write_model_folder(out_dir, self.cfg, module.model, tokenizers)
