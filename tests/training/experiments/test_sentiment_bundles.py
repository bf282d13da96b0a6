"""Sentiment bundles side by side (training/experiments/sentiment_bundles.py), on a tiny real exported bundle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from tests.training.export.test_export_sentiment import LABELS, save_model_dir
from tests.training.models.test_lexicon import tokenizer_with_lexicon
from training.config import RecurrentConfig
from training.data.sentiment.lexicon import token_features
from training.experiments import sentiment_bundles
from training.models.classifier import SentimentNet
from training.tasks import export_model_folder, preset


def test_two_bundles_are_compared_on_every_probe_phenomenon_size_and_latency(tmp_path: Path, capsys) -> None:
    torch.manual_seed(2)
    model = RecurrentConfig(cell="gru", embedding_dim=8, hidden_size=8)
    cfg = replace(preset("sentiment", "smoke"), lexicon=True, lexicon_score=True, model=model)
    tokenizer = tokenizer_with_lexicon()
    net = SentimentNet(tokenizer.get_vocab_size(), len(LABELS), cfg)
    net.set_lexicon(torch.from_numpy(token_features(tokenizer)))
    save_model_dir(tmp_path / "model", net, tokenizer, cfg)
    bundle = export_model_folder(tmp_path / "model", tmp_path / "bundle", "r1", {}).bundle_dir
    assert sentiment_bundles.main([str(bundle), str(bundle), "--text", "I have no complaints."]) == 0
    out = capsys.readouterr().out
    assert out.count("served graphs") == 2 and "latency x the first bundle: batch 1" in out
    assert "review 0." in out and "contrast/negation 0." in out and "contrast/sarcasm 0." in out
    # the text's line: both bundles' three probabilities, which sum to one
    line = next(line for line in out.splitlines() if line.startswith("'I have no complaints.'"))
    first, second = (part.split() for part in line.split(": ", 1)[1].split("; "))
    assert first[0] == "#1" and second[0] == "#2" and first[1::2] == ["negative", "neutral", "positive"]
    assert abs(sum(float(p) for p in first[2::2]) - 1) < 0.02 and first[1:] == second[1:]


def test_a_folder_that_is_no_bundle_is_refused_with_its_name(tmp_path: Path, capsys) -> None:
    assert sentiment_bundles.main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
