"""int8 sentiment classifier: built at export, scored on the run's own splits, served only within the macro-F1
tolerance; the manifest and the MLflow run record the decision; the config switch turns it off."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import onnx
import pytest

import training.export.quantize as quantize
from serving.contract.bundle import load_bundle
from serving.contract.names import QUANTIZATION_REASON_TAG, SERVED_PRECISION_TAG
from serving.sentiment import SentimentPredictor
from tests.conftest import FIXTURES
from tests.training.export.test_export_sentiment import TEXTS, write_model_dir
from training.config import SentimentConfig, Workspace, apply_overrides, from_dict, to_dict
from training.data.sentiment.corpus import load_split, prepare_sentiment
from training.export.quantize import MAX_MACRO_F1_LOSS, decide
from training.tasks import export_model_folder, preset, publish_run
from training.tracking.store import SELECTION_SCORE, experiment_id, use_store

INT8 = "classifier.int8.onnx"
FP32 = "classifier.onnx"


def model_dir_on_fixture(ws: Workspace, path: Path, *overrides: str) -> Path:
    """A random-weight LSTM classifier whose config names the tiny fixture CSV as its data, prepared in `ws` (as
    training would have left it), with `overrides` applied to its config."""
    _, model_dir = write_model_dir(path, "lstm")
    spec = json.loads((model_dir / "spec.json").read_text())
    cfg = from_dict(SentimentConfig, spec["config"])
    data = replace(
        cfg.data,
        source="csv",
        path=str(FIXTURES / "sentiment" / "reviews.csv"),
        max_examples=0,
        validation_fraction=0.25,  # 24 reviews: about six per split
        test_fraction=0.25,
    )
    cfg = apply_overrides(replace(cfg, data=data), list(overrides))
    prepare_sentiment(cfg.data, ws, progress=False)
    spec["config"] = to_dict(cfg)
    (model_dir / "spec.json").write_text(json.dumps(spec))
    return model_dir


def fabricated_scores(val_fp32: float, val_int8: float) -> Callable[..., dict]:
    """A stand-in for quantize.score_graphs that reports the given validation macro-F1s: the rule is tested on
    scores chosen on either side of the tolerance, which a random-weight model cannot be steered to produce."""

    def score_graphs(graphs, tokenizer, labels, max_tokens, splits) -> dict:
        return {
            "val_macro_f1_fp32": val_fp32,
            "val_macro_f1_int8": val_int8,
            "val_agreement": 0.9,
            "val_texts": len(splits["validation"]),
            "test_macro_f1_fp32": 0.5,
            "test_macro_f1_int8": 0.1,  # never decides, however bad
            "test_agreement": 0.8,
            "test_texts": len(splits["test"]),
        }

    return score_graphs


@pytest.mark.parametrize(
    ("fp32", "int8", "served"),
    [
        (0.800, 0.800, "int8"),
        (0.800, 0.810, "int8"),  # int8 better
        (0.805, 0.800, "int8"),  # exactly the allowed loss (not refused by float rounding)
        (0.800, 0.7949, "fp32"),  # 0.51 point lost
        (0.800, 0.700, "fp32"),
    ],
)
def test_decision_rule(fp32: float, int8: float, served: str) -> None:
    assert MAX_MACRO_F1_LOSS == 0.005
    decision = decide(fp32, int8)
    assert decision.served == served
    assert f"{int8:.4f}" in decision.reason and f"{fp32:.4f}" in decision.reason


def test_int8_graph_is_built_and_scored_on_the_run_splits(ws: Workspace, tmp_path: Path) -> None:
    model_dir = model_dir_on_fixture(ws, tmp_path / "model")
    report = export_model_folder(model_dir, tmp_path / "bundle", "r1", {}, ws)

    q = report.manifest["quantization"]
    graphs = report.manifest["graphs"]
    assert graphs["classifier_fp32"] == FP32 and graphs["classifier_int8"] == INT8
    assert graphs["classifier"] == (INT8 if q["served"] == "int8" else FP32)
    prepared = ws.prepared("sentiment", "csv")
    assert q["val_texts"] == len(load_split(prepared, "validation")) and q["val_texts"] >= 3
    assert q["test_texts"] == len(load_split(prepared, "test")) and q["test_texts"] >= 3
    for key in ("val_macro_f1_fp32", "val_macro_f1_int8", "test_macro_f1_fp32", "test_macro_f1_int8"):
        assert 0.0 <= q[key] <= 1.0
    assert 0.0 <= q["val_agreement"] <= 1.0
    assert set(q["latency_one_thread"]) == {"batch_1", "batch_16"}
    assert all(row["fp32_ms"] > 0 and row["int8_ms"] > 0 for row in q["latency_one_thread"].values())
    assert q["reason"] and q["max_val_macro_f1_loss"] == MAX_MACRO_F1_LOSS

    ops = {node.op_type for node in onnx.load(str(report.bundle_dir / INT8)).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    bundle = load_bundle(report.bundle_dir, "sentiment")  # both graphs are checksummed
    assert {INT8, FP32} <= set(bundle.manifest["files"])


def test_int8_within_tolerance_is_served(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(quantize, "score_graphs", fabricated_scores(0.805, 0.800))
    model_dir = model_dir_on_fixture(ws, tmp_path / "model")
    report = export_model_folder(model_dir, tmp_path / "bundle", "r1", {}, ws)
    assert report.manifest["quantization"]["served"] == "int8"
    assert report.manifest["graphs"]["classifier"] == INT8

    # serving needs no change: it loads graphs.classifier, now the int8 graph, and its answers stay close
    bundle = load_bundle(report.bundle_dir, "sentiment")
    int8 = SentimentPredictor(bundle)
    assert Path(int8.bundle.graph("classifier")).name == INT8
    fp32 = SentimentPredictor(replace(bundle, manifest={**bundle.manifest, "graphs": {"classifier": FP32}}))
    np.testing.assert_allclose(int8.probabilities(TEXTS), fp32.probabilities(TEXTS), atol=0.05)
    assert [p["label"] for p in int8.predict(TEXTS)] and len(int8.predict(TEXTS)) == len(TEXTS)
    # int8 activations are quantized per call: one call per text, so batch-mates never move an answer
    together = int8.probabilities(TEXTS)
    alone = np.concatenate([int8.probabilities([text]) for text in TEXTS])
    np.testing.assert_array_equal(together, alone)


def test_int8_losing_more_than_the_tolerance_is_not_served(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(quantize, "score_graphs", fabricated_scores(0.800, 0.794))
    model_dir = model_dir_on_fixture(ws, tmp_path / "model")
    report = export_model_folder(model_dir, tmp_path / "bundle", "r1", {}, ws)
    q = report.manifest["quantization"]
    assert q["served"] == "fp32" and "loses too much" in q["reason"]
    assert report.manifest["graphs"] == {"classifier": FP32, "classifier_fp32": FP32, "classifier_int8": INT8}
    assert q["val_macro_f1_int8"] == 0.794 and q["test_macro_f1_int8"] == 0.1  # recorded, as fabricated
    assert load_bundle(report.bundle_dir, "sentiment").graph("classifier").name == FP32


def test_switched_off_serves_fp32_without_an_int8_graph(ws: Workspace, tmp_path: Path) -> None:
    assert apply_overrides(preset("sentiment", "smoke"), ["export.quantize=false"]).export.quantize is False
    assert from_dict(SentimentConfig, {"task": "sentiment"}).export.quantize, "runs from before the switch: on"

    model_dir = model_dir_on_fixture(ws, tmp_path / "model", "export.quantize=false")
    report = export_model_folder(model_dir, tmp_path / "bundle", "r1", {}, ws)
    assert report.manifest["quantization"] == {"served": "fp32", "reason": "switched off (export.quantize=false)"}
    assert report.manifest["graphs"] == {"classifier": FP32, "classifier_fp32": FP32}
    assert not (report.bundle_dir / INT8).exists()


def test_without_the_run_data_fp32_is_served_and_says_why(tmp_path: Path) -> None:
    elsewhere = Workspace(root=tmp_path / "elsewhere", tracking_uri="sqlite:///unused.db")
    model_dir = model_dir_on_fixture(Workspace(root=tmp_path, tracking_uri="sqlite:///unused.db"), tmp_path / "m")
    report = export_model_folder(model_dir, tmp_path / "bundle", "r1", {}, elsewhere)
    q = report.manifest["quantization"]
    assert q["served"] == "fp32" and "prepared csv data" in q["reason"]
    assert report.manifest["graphs"]["classifier"] == FP32

    report = export_model_folder(model_dir, tmp_path / "bundle2", "r1", {})  # no workspace at all
    assert report.manifest["quantization"]["served"] == "fp32"


def test_publish_logs_the_decision_to_the_run(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(quantize, "score_graphs", fabricated_scores(0.800, 0.799))
    model_dir = model_dir_on_fixture(ws, tmp_path / "model")
    client = use_store(ws)
    with mlflow.start_run(experiment_id=experiment_id(client, ws, "sentiment"), tags={"memoria.task": "sentiment"}):
        mlflow.log_metric(SELECTION_SCORE, 0.5)
        mlflow.log_artifacts(str(model_dir), "model")
        run_id = mlflow.active_run().info.run_id

    result = publish_run(ws, run_id)
    assert result.served_precision == "int8"
    run = client.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["quantization/served_int8"] == 1.0
    assert metrics["quantization/val_macro_f1_int8"] == pytest.approx(0.799)
    assert metrics["quantization/test_macro_f1_fp32"] == pytest.approx(0.5)
    assert metrics["quantization/fp32_over_int8_batch_16"] > 0
    assert run.data.tags[SERVED_PRECISION_TAG] == "int8" and "0.7990" in run.data.tags[QUANTIZATION_REASON_TAG]
