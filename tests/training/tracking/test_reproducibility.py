"""Reproducibility: the same config and seed give the same metrics on the CPU (in one process, and in the slow tier in
a fresh one with another hash seed, so nothing may depend on the iteration order of a set of strings), and every run
records what reproducing it needs: the git commit, the data it read, and the package versions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import FIXTURES, REPO
from training.config import Workspace, apply_overrides
from training.tasks import preset, train

OVERRIDES = [
    "data.source=csv",
    f"data.path={FIXTURES / 'sentiment' / 'reviews.csv'}",
    "data.max_examples=0",
    "optim.max_epochs=2",
    "optim.batch_size=4",
    "optim.log_every_n_steps=1",
    # every source of randomness in training: dropout, word dropout, shuffled batches, two members' inits
    "ensemble.cells=gru,peephole",
    "word_dropout=0.1",
    "tune_offsets=true",
]
# Wall-clock measurements differ by nature; everything else must be equal to the last bit.
TIMED = ("train_seconds",)

TRAIN_ONE = """
import json, sys
from pathlib import Path
from training.config import Workspace, apply_overrides
from training.tasks import preset
from training.tasks import train

root = Path(sys.argv[1])
ws = Workspace(root=root, tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")
result = train(apply_overrides(preset("sentiment", "smoke"), sys.argv[2:]), ws, progress=False)
print("RUN " + json.dumps({"run_id": result.run_id, "tracking_uri": ws.tracking_uri}))
"""


def start_in_a_fresh_process(root: Path) -> subprocess.Popen:
    # A hash seed other than this process's: string hashing (set order) differs between the two runs.
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONWARNINGS": "ignore"}
    root.mkdir(parents=True)
    with open(root / "out.log", "w") as out, open(root / "err.log", "w") as err:  # files: a full pipe would block it
        command = [sys.executable, "-c", TRAIN_ONE, str(root), *OVERRIDES]
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)


def finished(process: subprocess.Popen, root: Path) -> tuple[MlflowClient, str]:
    process.wait(timeout=300)
    assert process.returncode == 0, (root / "err.log").read_text()[-3000:]
    (line,) = [line for line in (root / "out.log").read_text().splitlines() if line.startswith("RUN ")]
    run = json.loads(line.removeprefix("RUN "))
    return MlflowClient(run["tracking_uri"]), run["run_id"]


def workspace(root: Path) -> Workspace:
    return Workspace(root=root, tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")


def train_here(ws: Workspace) -> tuple[MlflowClient, str]:
    result = train(apply_overrides(preset("sentiment", "smoke"), OVERRIDES), ws, progress=False)
    return MlflowClient(ws.tracking_uri), result.run_id


def assert_same_metrics(a: tuple[MlflowClient, str], b: tuple[MlflowClient, str]) -> None:
    """Every metric equal to the last bit, the gradient-flow measurement and the per-step gradient norms included."""
    (client_a, id_a), (client_b, id_b) = a, b
    first, second = client_a.get_run(id_a).data.metrics, client_b.get_run(id_b).data.metrics
    metrics = {k: v for k, v in first.items() if k not in TIMED}
    assert metrics == {k: v for k, v in second.items() if k not in TIMED}
    assert {"selection_score", "test/macro_f1", "gradient_flow/ratio_first_last"} <= metrics.keys()

    def history(client: MlflowClient, run_id: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(run_id, "train/grad_norm")]

    assert history(client_a, id_a) == history(client_b, id_b) and len(history(client_a, id_a)) >= 2


def test_same_config_and_seed_give_the_same_metrics_and_the_run_records_its_provenance(tmp_path: Path) -> None:
    # given the same config and seed trained twice, each with its own store and prepared data (two machines)
    a = train_here(workspace(tmp_path / "a"))
    b = train_here(workspace(tmp_path / "b"))
    # then the metrics are the same
    assert_same_metrics(a, b)
    # and each run records the code, the data and the software it ran on
    (client, run_id), (other_client, other_id) = a, b
    tags, other_tags = client.get_run(run_id).data.tags, other_client.get_run(other_id).data.tags
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert tags["memoria.git_commit"] == head and tags["memoria.git_dirty"] in ("true", "false")
    card = json.loads(Path(client.download_artifacts(run_id, "data/card.json", str(tmp_path))).read_text())
    assert tags["memoria.data_fingerprint"] == card["fingerprint"]
    for key in ("memoria.data_fingerprint", "memoria.data_sha256", "memoria.git_commit"):
        assert other_tags[key] == tags[key], key
    assert tags["memoria.env.torch"] == importlib.metadata.version("torch")
    environment = json.loads(Path(client.download_artifacts(run_id, "environment.json", str(tmp_path))).read_text())
    assert environment["packages"]["lightning"] == importlib.metadata.version("lightning")
    assert environment["git"]["commit"] == head
    assert {"python", "torch", "lightning", "mlflow", "numpy", "onnx", "tokenizers"} <= environment["packages"].keys()


@pytest.mark.slow
def test_a_fresh_process_with_another_hash_seed_gives_the_same_metrics(tmp_path: Path) -> None:
    # given the same config trained in a fresh process (another hash seed: another order for every set of strings)
    # and in this one, after whatever other tests did to its global state
    other_root = tmp_path / "other"
    other = start_in_a_fresh_process(other_root)
    try:
        here = train_here(workspace(tmp_path / "here"))
    except BaseException:
        other.kill()  # ours: started above, not left running when this run fails
        other.wait()
        raise
    # then the metrics are the same
    assert_same_metrics(here, finished(other, other_root))
