"""Sentiment recipe for `train`: data, tokenizer, classifier, evaluation and plots."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import numpy as np
import torch

from serving.contract.text import encode_batch, encode_ids
from training.config import SentimentConfig, Workspace
from training.data.batching import bucketed_loader, collate_classification
from training.data.sentiment.contrast_augment import contrast_examples
from training.data.sentiment.corpus import LABELS, load_split, prepare_sentiment
from training.data.sentiment.lexicon import (
    Lexicon,
    lexicon_words,
    negators,
    token_features,
    vader_lexicon,
    with_no_as_negator,
)
from training.data.sentiment.negation_augment import negation_examples
from training.data.sentiment.negation_balance import negated_negative_examples, negation_balance_examples
from training.data.sentiment.review_probe import binary_accuracy, probe_sets
from training.data.sentiment.word_vectors import WordVectors, glove_vectors, token_vectors
from training.metrics.calibration import calibrate, expected_calibration_error, reliability_bins, softmax
from training.metrics.decision import tune_offsets
from training.model_folder import write_model_folder
from training.plots import close, confusion_matrix_figure, reliability_diagram_figure
from training.task_spec import TaskSpec
from training.text import fit_tokenizer, save_tokenizer, whole_words
from training.tracking.feedback import log_feedback
from training.tracking.provenance import log_data_inputs
from training.train.distributed import is_rank_zero
from training.train.gradient_flow import log_gradient_flow, sentiment_gradient_flow
from training.train.modules.sentiment import SentimentModule
from training.train.negation_prior import label_log_odds, negation_cues

TOKENIZER_FILE = "tokenizer.json"


class SentimentRecipe:
    monitor = "val/macro_f1"

    def __init__(self, task: TaskSpec, cfg: SentimentConfig, ws: Workspace, progress: bool) -> None:
        self.task = task
        self.cfg = cfg
        self.ws = ws
        self.progress = progress
        self.pretrain_metrics: dict[str, float] = {}
        self.negation_prior: dict[str, float] = {}

    def prepare(self) -> None:
        self.prepared = prepare_sentiment(self.cfg.data, self.ws, progress=self.progress)

    def build(self, workdir: Path) -> tuple[L.LightningModule, object, object]:
        cfg = self.cfg
        splits = {name: load_split(self.prepared.dir, name) for name in ("train", "validation", "test")}
        self.feedback = None
        if cfg.feedback.use:  # `make retrain FEEDBACK=1`: corrections join the training split only
            splits["train"] = self._merge_feedback(splits)
        self.split_sizes = {name: len(rows) for name, rows in splits.items()}
        texts = [row["text"] for row in splits["train"]]
        lexicon = self._lexicon()
        # with the lexicon, its words join the tokenizer's texts so they become whole tokens that carry its features
        extra = lexicon_words(lexicon) if lexicon is not None else []
        self.tokenizer = fit_tokenizer(iter(texts + extra), cfg.tokenizer, lowercase=True, tweets=True)
        self.whole_word_tokens = 0
        if lexicon is not None and cfg.lexicon_whole_words:
            self.tokenizer, self.whole_word_tokens = whole_words(self.tokenizer, lexicon.words())
        vectors = self._word_vectors()
        self.vector_whole_word_tokens = 0
        if vectors is not None and cfg.word_vectors.whole_words > 0:
            self.tokenizer, self.vector_whole_word_tokens = whole_words(
                self.tokenizer, vectors.frequent_words(cfg.word_vectors.whole_words)
            )
        self.tokenizer_path = save_tokenizer(self.tokenizer, workdir / TOKENIZER_FILE)
        # after the tokenizer: the synthetic sentences are made of the split's own words, and must not change its fit
        self.augmented = contrast_examples(splits["train"], cfg.contrast_augment, cfg.optim.seed)
        self.negation_balanced = (
            negation_balance_examples(splits["train"], negators(), cfg.optim.seed) if cfg.negation_balance else []
        )
        self.negated_negative_balanced = (
            negated_negative_examples(splits["train"], negators(), (lexicon or vader_lexicon()).valence, cfg.optim.seed)
            if cfg.negated_negative_balance
            else []
        )
        self.negation_augmented = self._negation_augmented(splits["train"], lexicon or vader_lexicon())
        self.review_mixed = self._review_mixed()
        splits["train"] = [
            *splits["train"],
            *self.augmented,
            *self.negation_balanced,
            *self.negated_negative_balanced,
            *self.negation_augmented,
            *self.review_mixed,
        ]
        label_id = {label: i for i, label in enumerate(LABELS)}
        self.encoded = {
            name: list(
                zip(
                    encode_ids(self.tokenizer, [r["text"] for r in rows], cfg.tokenizer.max_tokens),
                    [label_id[r["label"]] for r in rows],
                )
            )
            for name, rows in splits.items()
        }
        module = SentimentModule(cfg, self.tokenizer.get_vocab_size(), LABELS, self._class_weights())
        if cfg.lexicon:  # every rank builds the same table from the same tokenizer
            table = token_features(self.tokenizer, lexicon)
            module.model.set_lexicon(torch.from_numpy(table))
            self.lexicon_tokens = int((table != 0).any(axis=1).sum())
            if cfg.negation_debias > 0:
                self._set_negation_prior(module, table)
        if vectors is not None:
            vector_table = token_vectors(self.tokenizer, vectors, cfg.word_vectors.max_rank)
            module.model.set_word_vectors(torch.from_numpy(vector_table))
            self.vector_tokens = int((vector_table != 0).any(axis=1).sum())
        seen = torch.zeros(self.tokenizer.get_vocab_size(), dtype=torch.bool)
        seen[[i for ids, _ in self.encoded["train"] for i in ids]] = True
        self.unseen_tokens = int((~seen).sum())
        if cfg.zero_unseen_embeddings:
            module.model.zero_embeddings(torch.nonzero(~seen).flatten())
        # Rank 0 only: DDP copies rank 0's weights to the other processes when it wraps the model, so pretraining
        # there (for the same number of minutes) would only keep rank 0 waiting for them.
        if (cfg.pretrain.steps > 0 or cfg.pretrain.minutes > 0) and is_rank_zero():
            self._pretrain(module, [r["text"] for r in splits["train"]])
        if cfg.distill.steps > 0 and is_rank_zero():
            self._distill(module)
        return module, self.loader("train", shuffle=True), self.loader("validation", shuffle=False)

    def _set_negation_prior(self, module: SentimentModule, table: np.ndarray) -> None:
        """`negation_debias`'s bias-only expert, counted over the training split as it will be read (augmented rows
        included, before word dropout)."""
        cues = negation_cues(table, self.tokenizer)
        groups = [int(cues[ids].any()) for ids, _ in self.encoded["train"]]
        log_odds = label_log_odds(groups, [label for _, label in self.encoded["train"]], len(LABELS))
        module.set_negation_prior(torch.from_numpy(cues), torch.from_numpy(log_odds).float())
        self.negation_prior = {
            "negation_prior/texts_with_cue": float(sum(groups)),
            **{f"negation_prior/log_odds_{label}_with_cue": float(log_odds[1, i]) for i, label in enumerate(LABELS)},
        }

    def _negation_augmented(self, rows: list[dict[str, Any]], lexicon: Lexicon) -> list[dict[str, str]]:
        """`negation_augment`'s rewrites of `rows`, with WordNet's adjective antonyms (fetched the first time)."""
        if self.cfg.negation_augment == "off":
            return []
        from training.data.wordnet import ENCODING, antonyms, wordnet_data_files

        adjectives = next(path for path in wordnet_data_files(self.ws) if path.name == "data.adj")
        with open(adjectives, encoding=ENCODING) as f:
            pairs = antonyms(f)
        polarities = ("positive", "negative") if self.cfg.negation_augment == "both" else ("positive",)
        return negation_examples(
            rows,
            pairs,
            lexicon.valence,
            lexicon.negators,
            self.cfg.optim.seed,
            polarities,
            any_word=self.cfg.negation_augment_any_word,
        )

    def _review_mixed(self) -> list[dict[str, str]]:
        """`review_mix` IMDb verdict sentences as training rows (a seeded sample), or none."""
        if self.cfg.review_mix <= 0:
            return []
        from training.data.sentiment.imdb_reviews import imdb_sentences

        texts, labels = imdb_sentences(self.ws.artifact_cache, self.cfg.review_mix, self.cfg.optim.seed)
        return [{"text": text, "label": LABELS[label]} for text, label in zip(texts, labels, strict=True)]

    def _word_vectors(self) -> WordVectors | None:
        """GloVe's vectors (fetched and converted the first time) where `word_vectors.use` asks for them."""
        if not self.cfg.word_vectors.use:
            if self.cfg.word_vectors.whole_words:
                raise ValueError(
                    "word_vectors.whole_words needs word_vectors.use=true: the words are there for vectors"
                )
            return None
        return glove_vectors(self.ws.artifact_cache)

    def _lexicon(self) -> Lexicon | None:
        """The lexicon of the features and the score: VADER's, with Hu and Liu's opinion words where asked."""
        cfg = self.cfg
        if not cfg.lexicon:
            if cfg.opinion_words or cfg.lexicon_whole_words or cfg.negate_after_no:
                raise ValueError(
                    "opinion_words, lexicon_whole_words and negate_after_no need lexicon=true: they extend its features"
                )
            return None
        lexicon = vader_lexicon()
        if cfg.negate_after_no:
            lexicon = with_no_as_negator(lexicon)
        if not cfg.opinion_words:
            return lexicon
        from training.data.sentiment.opinion_words import opinion_lexicon

        return opinion_lexicon(lexicon, self.ws.artifact_cache)

    def log_inputs(self) -> None:
        """What the run read and what `build` measured, into the active MLflow run (rank 0 only: the other
        processes of a multi-process run have no run, and `build` runs on all of them)."""
        log_data_inputs(self.task.name, self.prepared.dir, self.prepared.card, self.task.input_field)
        # (the card, data tags, the gate's split, the dataset input)
        mlflow.log_params({f"data.{name}_size": size for name, size in self.split_sizes.items()})
        mlflow.log_param("data.contrast_augmented", len(self.augmented))
        mlflow.log_param("data.negation_balanced", len(self.negation_balanced))
        mlflow.log_param("data.negated_negative_balanced", len(self.negated_negative_balanced))
        mlflow.log_param("data.negation_augmented", len(self.negation_augmented))
        mlflow.log_param("data.review_mixed", len(self.review_mixed))
        mlflow.log_metrics(self.pretrain_metrics)
        mlflow.log_metrics(self.negation_prior)
        if self.feedback is not None:
            log_feedback(self.feedback)
        if self.cfg.lexicon:
            mlflow.log_metric("lexicon/tokens_with_features", self.lexicon_tokens)
            mlflow.log_metric("lexicon/whole_word_tokens_added", self.whole_word_tokens)
        if self.cfg.word_vectors.use:
            mlflow.log_metric("word_vectors/tokens_with_vector", self.vector_tokens)
            mlflow.log_metric("word_vectors/whole_word_tokens_added", self.vector_whole_word_tokens)
        mlflow.log_metric("tokens/unseen_in_training", self.unseen_tokens)

    def _merge_feedback(self, splits: dict[str, list[dict]]) -> list[dict]:
        from serving.contract.production import production_dir, read_feedback
        from training.data.feedback import merge_feedback
        from training.data.sentiment.dedupe import dedupe_key

        corrections = read_feedback(self.task.name)
        self.feedback = merge_feedback(splits, corrections, dedupe_key, self.cfg.feedback.holdout_share)
        f = self.feedback
        print(
            f"{self.task.name}: feedback from {production_dir()}: {len(corrections)} correction(s); {f.added} added "
            f"and {f.relabelled} relabelled in the training split, {len(f.held_out)} held out, not used: {f.dropped}"
        )
        return f.train

    def _pretrain(self, module: SentimentModule, train_texts: list[str]) -> None:
        from training.train.pretrain import english_texts, pretrain_members

        texts = []
        if "tweets" in self.cfg.pretrain.sources:
            texts += train_texts
        if "english" in self.cfg.pretrain.sources:
            texts += english_texts(self.ws)
        ids = encode_ids(self.tokenizer, texts, self.cfg.tokenizer.max_tokens)
        self.pretrain_metrics = pretrain_members(
            module.model.members, ids, self.cfg.pretrain, self.cfg.optim.seed, self.progress
        )

    def _distill(self, module: SentimentModule) -> None:
        """Weak supervision before the tweets (training/train/distill.py): VADER's labels on the English of the
        translation pairs, or IMDb reviews' verdict sentences labelled by their review."""
        from training.train.distill import distill_members

        texts, labels = self._distill_texts()
        ids = encode_ids(self.tokenizer, texts, self.cfg.tokenizer.max_tokens)
        metrics = distill_members(
            module.model.members, ids, labels, self.cfg.distill, self.cfg.optim.seed, self.progress
        )
        self.pretrain_metrics.update(metrics)

    def _distill_texts(self) -> tuple[list[str], np.ndarray]:
        import random

        cfg = self.cfg.distill
        if cfg.source == "imdb":
            from training.data.sentiment.imdb_reviews import imdb_sentences

            return imdb_sentences(self.ws.artifact_cache, cfg.max_texts, self.cfg.optim.seed)
        from training.data.sentiment.lexicon import three_classes, vader_scores
        from training.train.pretrain import english_texts

        texts = english_texts(self.ws)
        if not texts:
            raise ValueError(
                "distill.steps > 0 but no English sentences are prepared: run `make data TASK=translation`"
            )
        texts = random.Random(self.cfg.optim.seed).sample(texts, min(len(texts), cfg.max_texts))
        return texts, three_classes(vader_scores(texts))

    def loader(self, split: str, shuffle: bool):
        items = self.encoded[split]
        return bucketed_loader(
            items,
            [len(ids) for ids, _ in items],
            self.cfg.optim.batch_size,
            shuffle,
            self.cfg.optim.seed,
            collate_classification,
            self.cfg.optim.num_workers,
        )

    def _class_weights(self) -> torch.Tensor | None:
        """Inverse class frequency, normalised to mean 1, so each class weighs the same in the loss."""
        if not self.cfg.class_weighted_loss:
            return None
        counts = Counter(label for _, label in self.encoded["train"])
        total = sum(counts.values())
        return torch.tensor([total / (len(LABELS) * max(1, counts[i])) for i in range(len(LABELS))])

    def evaluate(self, module: SentimentModule, trainer: L.Trainer, workdir: Path) -> dict[str, float]:
        metrics = self.fit_decision_and_calibration(module)
        for stage, split in (("val", "validation"), ("test", "test")):
            run = trainer.validate if stage == "val" else trainer.test
            (values,) = run(module, self.loader(split, shuffle=False), verbose=False)
            metrics.update({f"final_{k}" if stage == "val" else k: float(v) for k, v in values.items()})
            matrix = module.last_confusion[stage].numpy()
            fig = confusion_matrix_figure(matrix, LABELS, f"{split} split ({int(matrix.sum())} texts)")
            mlflow.log_figure(fig, f"plots/confusion_{split}.png")
            close(fig)
            mlflow.log_dict({"labels": list(LABELS), "matrix": matrix.tolist()}, f"metrics/confusion_{split}.json")
        metrics.update(self.probe_accuracies(module))
        flows = sentiment_gradient_flow(module.model, self.encoded["validation"])
        metrics.update(log_gradient_flow(flows, "longest validation texts"))
        return metrics

    def probe_accuracies(self, module: SentimentModule) -> dict[str, float]:
        """Binary accuracy on each out-of-domain probe (review sentences; negation, contrast, sarcasm), the numbers
        the peers report on the same sentences (`make baseline`: VADER, TF-IDF). Reported, never used to choose."""
        net = module.model.eval()
        metrics = {}
        for name, rows in probe_sets().items():
            ids, lengths = encode_batch(self.tokenizer, [r["text"] for r in rows], self.cfg.tokenizer.max_tokens)
            with torch.no_grad():  # the calibrated, offset logits: the argmax the exported graph serves
                logits = net(torch.from_numpy(ids).to(module.device), torch.from_numpy(lengths).to(module.device))
            probs = torch.softmax(logits, dim=-1)
            labels = [r["label"] for r in rows]
            metrics[f"probe/{name}_accuracy"] = binary_accuracy(probs.float().cpu().numpy(), labels, list(LABELS))
        return metrics

    def raw_logits(self, module: SentimentModule, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(uncalibrated, unshifted logits [N, C], labels [N]) of a split, in the loader's order."""
        net = module.model.eval()
        logits, labels = [], []
        with torch.no_grad():
            for ids, lengths, y in self.loader(split, shuffle=False):
                ids, lengths = ids.to(module.device), lengths.to(module.device)
                logits.append(net.combine(net.member_logits(ids, lengths)).float().cpu().numpy())
                labels.append(y.numpy())
        return np.concatenate(logits), np.concatenate(labels)

    def fit_decision_and_calibration(self, module: SentimentModule) -> dict[str, float]:
        """After training, on the validation split only: decision offsets (if `tune_offsets`), then the temperature
        (if `calibrate`), both written into the model's buffers so evaluation, export and serving all use them.
        Logs expected calibration error before/after per split and a reliability diagram."""
        raw = {split: self.raw_logits(module, split) for split in ("validation", "test")}
        net = module.model
        offsets = tune_offsets(*raw["validation"]) if self.cfg.tune_offsets else np.zeros(len(LABELS))
        net.offsets.copy_(torch.as_tensor(offsets, dtype=net.offsets.dtype))
        metrics = {f"decision/offset_{label}": float(v) for label, v in zip(LABELS, offsets)}
        shifted = {split: (logits + offsets, y) for split, (logits, y) in raw.items()}
        if self.cfg.calibrate:
            report = calibrate(shifted, fit_on="validation")
            metrics.update(report.metrics())
            temperature = report.temperature
        else:
            temperature = 1.0
            for split, (logits, y) in shifted.items():
                ece = expected_calibration_error(softmax(logits), y)
                metrics.update({f"calibration/ece_before_{split}": ece, f"calibration/ece_after_{split}": ece})
            metrics["calibration/temperature"] = temperature
        net.temperature.fill_(temperature)
        for split, (logits, y) in shifted.items():
            before = reliability_bins(softmax(logits), y)
            after = reliability_bins(softmax(logits, temperature), y)
            mlflow.log_dict({"temperature": temperature, "before": before, "after": after}, f"calibration/{split}.json")
            fig = reliability_diagram_figure(before, after, f"{split} split, T = {temperature:.2f}")
            mlflow.log_figure(fig, f"plots/reliability_{split}.png")
            close(fig)
        return metrics

    def save_model(self, module: SentimentModule, out_dir: Path) -> None:
        write_model_folder(out_dir, self.cfg, module.model, {"text": (TOKENIZER_FILE, self.tokenizer)}, LABELS)
