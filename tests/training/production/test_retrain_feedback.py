"""`make retrain TASK=sentiment FEEDBACK=1` through the CLI on a copy of the test registry: the corrections stored by
the service join the training split, a held-out slice is logged and scored by the gate, and the counts are on the
run and on the alias move."""

from __future__ import annotations

import re
from pathlib import Path

from mlflow import MlflowClient

from serving.contract.names import FEEDBACK_HELD_OUT_TAG, FEEDBACK_USED_TAG
from serving.contract.production import Feedback, open_feedback, store_feedback
from tests.serving_harness import cli, copy_store
from training.registry.alias_history import read_history, record_move
from training.registry.gate import decide
from training.tasks import task_named
from training.tracking.feedback import HOLDOUT_ARTIFACT

NEW_TEXTS = [f"the {w} on flight {i} was a disgrace" for i, w in enumerate(["meal", "seat", "crew", "gate"] * 10)]


def test_retrain_on_feedback_trains_on_corrections_and_reports_the_held_out_ones(
    store: dict[str, str], tmp_path: Path
) -> None:
    env = {**copy_store(store, tmp_path), "MEMORIA_PRODUCTION_DIR": str(tmp_path / "production")}
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("sentiment", "champion")
    digest = champion.tags["memoria.bundle_sha256"]
    # Given 40 corrections with their text and one without (the service's log did not keep it)
    db = open_feedback(tmp_path / "production")
    for i, text in enumerate([*NEW_TEXTS, None]):
        feedback = Feedback(f"{i:032x}", 0, "sentiment", champion.version, digest, "positive", "negative", text, False)
        store_feedback(db, feedback, f"2026-12-04T12:00:{i:02d}+00:00")
    db.close()

    out = cli(env, "retrain", "--task", "sentiment", "--feedback")

    found = re.search(r"41 correction\(s\); (\d+) added and 0 relabelled in the training split, (\d+) held out", out)
    assert found, out
    added, held = int(found.group(1)), int(found.group(2))
    assert added + held == 40 and held >= 1, out
    assert "'no_text': 1" in out, out
    assert f"trained on {added} correction(s) from production" in out, out
    assert f"on the {held} held-out corrections macro-F1" in out, out
    version = re.search(r"registered version (\d+)", out).group(1)
    run = client.get_run(client.get_model_version("sentiment", version).run_id)
    assert run.data.tags[FEEDBACK_USED_TAG] == str(added) and run.data.tags[FEEDBACK_HELD_OUT_TAG] == str(held)
    assert run.data.metrics["feedback/added"] == added and run.data.metrics["feedback/dropped_no_text"] == 1
    base = client.get_run(champion.run_id).data.params["data.train_size"]
    assert int(run.data.params["data.train_size"]) == int(base) + added  # training only
    assert (
        run.data.params["data.validation_size"] == client.get_run(champion.run_id).data.params["data.validation_size"]
    )
    holdout = Path(client.download_artifacts(run.info.run_id, HOLDOUT_ARTIFACT, str(tmp_path / "dl")))
    assert len(holdout.read_text().splitlines()) == held
    assert "gate/challenger_on_feedback_holdout" in run.data.metrics

    # The alias move to such a model records how many corrections it learned from
    decision = decide(client, task_named("sentiment"), client.get_model_version("sentiment", version), champion)
    assert (decision.feedback_used, decision.feedback_held_out) == (str(added), held)
    record_move(client, "sentiment", champion.version, version, "forced", None, None, decision)
    move = client.search_runs(
        [client.get_experiment_by_name("memoria-alias-history").experiment_id],
        filter_string=f"tags.`memoria.to_version` = '{version}'",
    )[0]
    assert (
        move.data.tags[FEEDBACK_USED_TAG] == str(added) and "gate/challenger_on_feedback_holdout" in move.data.metrics
    )
    assert read_history(client, "sentiment")[-1].to_version == version


SPANISH = [f"el vuelo número {i} llegó tarde otra vez" for i in range(20)]


def test_retrain_on_feedback_for_translation_adds_corrected_pairs(store: dict[str, str], tmp_path: Path) -> None:
    env = {**copy_store(store, tmp_path), "MEMORIA_PRODUCTION_DIR": str(tmp_path / "production")}
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("translation", "champion")
    db = open_feedback(tmp_path / "production")
    for i, text in enumerate(SPANISH):
        correct = f"flight number {i} arrived late again"
        feedback = Feedback(f"{i:032x}", 0, "translation", champion.version, "d" * 64, "x" * 64, correct, text, False)
        store_feedback(db, feedback, f"2026-12-04T12:00:{i:02d}+00:00")
    db.close()

    out = cli(env, "retrain", "--task", "translation", "--feedback")

    found = re.search(r"20 correction\(s\); (\d+) added and 0 relabelled in the training split, (\d+) held out", out)
    assert found, out
    added, held = int(found.group(1)), int(found.group(2))
    assert added + held == 20 and added > 0, out
    run = client.get_run(client.get_model_version("translation", re.search(r"version (\d+)", out).group(1)).run_id)
    assert run.data.tags[FEEDBACK_USED_TAG] == str(added)
    base = client.get_run(champion.run_id).data.params["data.rows_train"]
    assert int(run.data.params["data.rows_train"]) == int(base) + added
    assert (
        run.data.params["data.rows_validation"] == client.get_run(champion.run_id).data.params["data.rows_validation"]
    )
