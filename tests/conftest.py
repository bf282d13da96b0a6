"""Shared fixtures. Every test that touches MLflow or data gets its own Workspace under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Quiet, offline-safe defaults for libraries the tests start.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# One bundle-signing key pair for the session (the checkout's local pair, made on first use as by `make run`), so
# that training subprocesses with their own MEMORIA_HOME and in-process loads sign and verify with the same key.
os.environ.setdefault("MEMORIA_SIGNING_DIR", str(REPO / ".memoria" / "signing"))


def tiny_sentiment(*overrides: str):
    """The smoke preset on the 25-row review fixture (batches of 8): a real training run in seconds."""
    from training.config import apply_overrides
    from training.tasks import preset

    fixture = FIXTURES / "sentiment" / "reviews.csv"
    return apply_overrides(
        preset("sentiment", "smoke"), ["data.source=csv", f"data.path={fixture}", "optim.batch_size=8", *overrides]
    )


@pytest.fixture
def ws(tmp_path: Path):
    from training.config import Workspace

    return Workspace(root=tmp_path, tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registry with a tiny champion per task (trained through the CLI), shared by the HTTP test modules."""
    from tests.serving_harness import train_store

    return train_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, installed by `make browser`): the demo page and MLflow UI tests."""
    from tests.browser import chromium

    yield from chromium()
