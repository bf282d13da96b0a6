"""Apertium, the rule-based translation peer (training/peers/apertium.py): the real Apertium on the fixture pairs,
logged as its own run with the test split's scores and the everyday probe's, the metrics the models report."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from serving.contract.names import KIND_TAG, PEER_KIND
from tests.conftest import FIXTURES
from training.config import Workspace, apply_overrides
from training.data.translation.apertium import installed_apertium
from training.peers.apertium import run_apertium
from training.tasks import preset

needs_apertium = pytest.mark.skipif(
    installed_apertium() is None, reason="Apertium is not installed: `make test` installs it (apertium-eng-spa)"
)


@needs_apertium
def test_the_apertium_peer_is_logged_as_a_run_with_test_and_everyday_probe_metrics(ws: Workspace) -> None:
    cfg = apply_overrides(
        preset("translation", "smoke"),
        [
            "data.source=tatoeba",
            f"data.path={FIXTURES / 'seq2seq' / 'pairs-es-en.tsv'}",
            "data.validation_size=10",
            "data.test_size=10",
        ],
    )

    metrics = run_apertium(cfg, ws)

    client = MlflowClient(ws.tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (run,) = [r for r in runs if r.data.tags.get(KIND_TAG) == PEER_KIND]
    for key in ("test/bleu", "test/chrf", "probe/everyday_bleu", "probe/everyday_chrf"):
        assert 0.0 <= run.data.metrics[key] <= 100.0, key
        assert metrics[key] == pytest.approx(run.data.metrics[key], abs=1e-3)
    # a rule-based system on plain everyday Spanish is far from nothing: the probe is decoded, not left empty
    assert run.data.metrics["probe/everyday_chrf"] > 30.0
