"""What the MLflow UI shows: experiments open on their runs (model-training kind), every run names the data it
read in the Dataset column, and each registered version carries its model card in short."""

from __future__ import annotations

from mlflow import MlflowClient

from serving.contract.names import ALIAS_HISTORY_EXPERIMENT as HISTORY
from tests.conftest import tiny_sentiment
from training.config import Workspace
from training.tasks import publish_run, train
from training.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING


def test_a_tiny_run_is_a_model_training_run_with_its_dataset_and_a_described_version(ws: Workspace) -> None:
    result = train(tiny_sentiment("optim.max_epochs=1"), ws, progress=False)
    client = MlflowClient(ws.tracking_uri)
    assert client.get_experiment_by_name("sentiment").tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING

    run = client.get_run(result.run_id)
    (dataset_input,) = run.inputs.dataset_inputs
    fingerprint = run.data.tags["memoria.data_fingerprint"]
    assert dataset_input.dataset.name == "sentiment/csv"
    assert dataset_input.dataset.digest == fingerprint[:32] and len(fingerprint) == 64
    assert [tag.value for tag in dataset_input.tags if tag.key == "mlflow.data.context"] == ["training"]

    published = publish_run(ws, result.run_id)
    description = client.get_model_version("sentiment", published.version).description
    assert fingerprint[:12] in description and published.bundle_digest[:12] in description
    assert f"selection_score {run.data.metrics['selection_score']:.4f}" in description
    assert client.get_experiment_by_name(HISTORY).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_an_experiment_from_before_the_tag_is_marked_when_next_used(ws: Workspace) -> None:
    from training.tracking.store import experiment_id, use_store

    client = use_store(ws)
    old = client.create_experiment("sentiment", artifact_location=(ws.mlruns / "artifacts").as_uri())
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert experiment_id(client, ws, "sentiment") == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
