"""Registry: a verified bundle is registered, `champion` moves only to a better run, rollback restores it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from serving.contract.bundle import load_bundle
from serving.contract.names import DIGEST_TAG, ROLLED_BACK_TAG
from serving.contract.registry import ChampionRef, champion_bundle
from serving.resolve import resolve_bundle
from tests.training.export.test_export_sentiment import write_model_dir
from training.config import Workspace
from training.registry.alias_history import read_history
from training.registry.promotion import champion, promote, promote_if_better, rollback
from training.registry.publish import export_best, register
from training.tasks import publish_run, task_named
from training.tracking.store import SELECTION_SCORE, experiment_id, use_store

SAME_DATA = "d" * 64  # the data-card fingerprint of fake runs: all trained on the same (unlogged) split


def fake_training_run(ws: Workspace, tmp: Path, score: float, seed: int, fingerprint: str = SAME_DATA) -> str:
    """A finished run shaped like train()'s: task tag, selection score, data card, model/ artifacts (random weights).
    It logs no validation split, so the gate compares logged selection scores when the fingerprints agree."""
    client = use_store(ws)
    exp = experiment_id(client, ws, "sentiment")
    _, model_dir = write_model_dir(tmp / f"model-{seed}", "gru", seed=seed)
    with mlflow.start_run(experiment_id=exp, tags={"memoria.task": "sentiment"}) as run:
        mlflow.log_metric(SELECTION_SCORE, score)
        mlflow.log_dict({"fingerprint": fingerprint}, "data/card.json")
        mlflow.log_artifacts(str(model_dir), "model")
    return run.info.run_id


def test_promotion_only_when_better_and_rollback(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    first = publish_run(ws, fake_training_run(ws, tmp_path, 0.50, seed=1))
    assert (first.version, first.promoted, first.champion_version) == ("1", True, "1")

    worse = publish_run(ws, fake_training_run(ws, tmp_path, 0.40, seed=2))
    assert (worse.version, worse.promoted, worse.champion_version) == ("2", False, "1")

    better = publish_run(ws, fake_training_run(ws, tmp_path, 0.60, seed=3))
    assert (better.version, better.promoted) == ("3", True)
    client = use_store(ws)
    assert str(champion(client, "sentiment").version) == "3"
    assert len(client.search_model_versions("name = 'sentiment'")) == 3, "earlier versions stay registered"

    # Serving resolves models:/sentiment@champion to exactly the registered bundle.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ws.tracking_uri)
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache"))
    served = resolve_bundle("sentiment")
    assert served.registry_version == "3" and served.bundle.digest == better.bundle_digest
    assert served.label.startswith("sentiment/v3 sha256:")

    assert rollback(client, "sentiment") == "1"
    assert str(champion(client, "sentiment").version) == "1"
    with pytest.raises(ValueError, match="replaced no earlier champion"):
        rollback(client, "sentiment")


def test_export_picks_the_best_run_of_the_experiment(ws: Workspace, tmp_path: Path) -> None:
    fake_training_run(ws, tmp_path, 0.30, seed=1)
    best = fake_training_run(ws, tmp_path, 0.70, seed=2)
    fake_training_run(ws, tmp_path, 0.50, seed=3)
    result = export_best(ws, task_named("sentiment"))
    assert result.run_id == best and result.promoted
    again = export_best(ws, task_named("sentiment"))  # already registered: no second version
    assert again.version == result.version and not again.promoted


def test_registered_bundle_is_logged_to_its_run(ws: Workspace, tmp_path: Path) -> None:
    run_id = fake_training_run(ws, tmp_path, 0.5, seed=1)
    publish_run(ws, run_id)
    client = use_store(ws)
    (folder,) = client.list_artifacts(run_id, "bundles")  # one folder per bundle digest
    local = client.download_artifacts(run_id, folder.path, str(tmp_path / "dl"))
    bundle = load_bundle(local, "sentiment")
    assert bundle.manifest["source_run_id"] == run_id
    assert bundle.manifest["metrics"][SELECTION_SCORE] == 0.5


def test_resolution_order_path_then_packaged_then_registry(ws: Workspace, tmp_path: Path, monkeypatch) -> None:
    import shutil

    import serving.resolve as resolve

    publish_run(ws, fake_training_run(ws, tmp_path, 0.5, seed=1))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ws.tracking_uri)
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(resolve, "PACKAGED", tmp_path / "packaged")
    registry = resolve.resolve_bundle("sentiment")
    assert registry.origin == "registry"

    shutil.copytree(registry.bundle.path, tmp_path / "packaged" / "sentiment")  # what `make bento` packs
    assert resolve.resolve_bundle("sentiment").origin == "packaged"

    monkeypatch.setenv("MEMORIA_SENTIMENT_BUNDLE", str(registry.bundle.path))
    assert resolve.resolve_bundle("sentiment").origin == "path"


def test_serving_never_creates_an_empty_store(tmp_path: Path, monkeypatch) -> None:
    import serving.resolve as resolve
    from serving.contract.bundle import BundleError

    store = tmp_path / "mlruns" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setattr(resolve, "PACKAGED", tmp_path / "none")
    with pytest.raises(BundleError, match="no MLflow store"):
        resolve.resolve_bundle("translation")
    assert not store.exists()


def test_a_rolled_back_version_never_comes_back_by_itself(ws: Workspace, tmp_path: Path) -> None:
    first = publish_run(ws, fake_training_run(ws, tmp_path, 0.50, seed=1))
    better = publish_run(ws, fake_training_run(ws, tmp_path, 0.60, seed=2))
    client = use_store(ws)
    assert better.promoted and rollback(client, "sentiment") == first.version
    # `make export` finds the best run (the rolled-back one) already registered: it must not re-promote it
    again = export_best(ws, task_named("sentiment"))
    assert again.version == better.version and not again.promoted
    assert str(champion(client, "sentiment").version) == first.version
    # a deliberate override still can, and clears the mark
    promote(client, "sentiment", better.version)
    assert str(champion(client, "sentiment").version) == better.version
    assert ROLLED_BACK_TAG not in client.get_model_version("sentiment", better.version).tags


def test_every_alias_move_is_recorded_and_read_back(ws: Workspace, tmp_path: Path) -> None:
    first = publish_run(ws, fake_training_run(ws, tmp_path, 0.50, seed=1))
    second = publish_run(ws, fake_training_run(ws, tmp_path, 0.70, seed=2))
    client = use_store(ws)
    rollback(client, "sentiment")
    promote(client, "sentiment", second.version)
    moves = read_history(client, "sentiment")
    assert [(m.from_version, m.to_version, m.reason) for m in moves] == [
        ("", first.version, "promoted"),
        (first.version, second.version, "promoted"),
        (second.version, first.version, "rolled back"),
        (first.version, second.version, "forced"),
    ]
    assert moves[1].from_score == pytest.approx(0.5) and moves[1].to_score == pytest.approx(0.7)
    assert all(m.user and m.host and m.at > 0 for m in moves)
    assert read_history(client, "translation") == []


def test_publishing_a_run_again_keeps_its_earlier_version_servable(ws: Workspace, tmp_path: Path) -> None:
    """Each bundle is logged under its own digest: a re-export never overwrites what a version points at."""
    run_id = fake_training_run(ws, tmp_path, 0.5, seed=1)
    first = publish_run(ws, run_id)
    second = publish_run(ws, run_id)  # same run, new bundle (its manifest has a new creation time)
    assert first.bundle_digest != second.bundle_digest
    client = use_store(ws)
    for result in (first, second):
        ref = champion_ref_for(client, result.version)
        served = champion_bundle("sentiment", ws.tracking_uri, tmp_path / "cache", ref)
        assert served.bundle.digest == result.bundle_digest


def champion_ref_for(client, version: str) -> ChampionRef:
    v = client.get_model_version("sentiment", version)
    return ChampionRef(str(v.version), v.source, v.tags[DIGEST_TAG])


def test_concurrent_promotions_leave_the_best_candidate_champion(ws: Workspace, tmp_path: Path) -> None:
    """Six gates that finish together, each with its own client: the read-then-write of the alias is locked and
    re-checked, so the best candidate wins whatever the interleaving."""
    import threading

    client = use_store(ws)
    exp = experiment_id(client, ws, "sentiment")
    scores = [0.31, 0.77, 0.52, 0.64, 0.45, 0.58]
    versions = []
    for i, score in enumerate(scores):
        tags = {"memoria.task": "sentiment", "memoria.data_fingerprint": SAME_DATA}
        with mlflow.start_run(experiment_id=exp, tags=tags) as run:
            mlflow.log_metric(SELECTION_SCORE, score)
        versions.append(register(client, "sentiment", run.info.run_id, f"{tmp_path}/bundle-{i}", f"{i:064d}"))
    barrier = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def gate(version) -> None:
        own = MlflowClient(tracking_uri=ws.tracking_uri)
        barrier.wait()
        try:
            promote_if_better(own, task_named("sentiment"), version)
        except BaseException as e:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=gate, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert str(champion(client, "sentiment").version) == str(versions[scores.index(max(scores))].version)
    moves = read_history(client, "sentiment")
    assert moves and all(m.reason == "promoted" for m in moves)


def test_the_last_of_six_gates_meets_five_promotions_and_still_wins(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst interleaving of the race above, every time: each of the five other candidates lands a promotion
    while the best one scores, so the best one gates six times (a bound of five once refused it there)."""
    import training.registry.promotion as promotion

    client = use_store(ws)
    exp = experiment_id(client, ws, "sentiment")
    versions = []
    for i, score in enumerate([0.31, 0.45, 0.52, 0.58, 0.64, 0.77]):
        tags = {"memoria.task": "sentiment", "memoria.data_fingerprint": SAME_DATA}
        with mlflow.start_run(experiment_id=exp, tags=tags) as run:
            mlflow.log_metric(SELECTION_SCORE, score)
        versions.append(register(client, "sentiment", run.info.run_id, f"{tmp_path}/bundle-{i}", f"{i:064d}"))
    *others, best = versions
    landing = iter(others)
    real_decide = promotion.decide

    def decide(client, task, challenger, current, ws=None):
        decision = real_decide(client, task, challenger, current, ws)
        other = next(landing, None)
        if other is not None:  # another gate's promotion lands while this one scored
            promote(client, "sentiment", str(other.version), reason="promoted")
        return decision

    monkeypatch.setattr(promotion, "decide", decide)
    decision = promotion.gate_and_promote(client, task_named("sentiment"), best)
    assert decision.promote, decision.reason
    assert str(champion(client, "sentiment").version) == str(best.version)
    assert decision.concurrency.count("while it scored") == len(others)


def test_a_copied_store_keeps_its_runs_and_serves_its_champion(tmp_path: Path, monkeypatch) -> None:
    """Copy mlruns/ elsewhere, take the original away: runs' artifacts download and the champion serves."""
    import shutil

    old = Workspace(root=tmp_path / "a", tracking_uri=f"sqlite:///{tmp_path}/a/mlruns/mlflow.db")
    published = publish_run(old, fake_training_run(old, tmp_path, 0.5, seed=1))
    shutil.copytree(tmp_path / "a" / "mlruns", tmp_path / "b" / "mlruns")
    (tmp_path / "a").rename(tmp_path / "gone")  # nothing may still be read from the old folder

    new = Workspace(root=tmp_path / "b", tracking_uri=f"sqlite:///{tmp_path}/b/mlruns/mlflow.db")
    client = use_store(new)
    run = client.get_run(published.run_id)
    assert run.info.artifact_uri.startswith((tmp_path / "b").as_uri())
    local = client.download_artifacts(published.run_id, "model", str(tmp_path / "dl"))
    assert (Path(local) / "spec.json").is_file()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", new.tracking_uri)
    monkeypatch.setenv("MEMORIA_BUNDLE_CACHE", str(tmp_path / "cache"))
    served = resolve_bundle("sentiment")
    assert served.registry_version == published.version and served.bundle.digest == published.bundle_digest
