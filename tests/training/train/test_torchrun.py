"""Training launched the way a cluster launches it: `torchrun --nnodes=2 --nproc-per-node=1` on each of two
"nodes" (two launcher processes on this machine, each with its own MEMORIA_HOME as another machine's disk), meeting
through a c10d rendezvous on 127.0.0.1 and training over gloo, each running the CLI a cluster job calls (`python -m
training train ...`). The run gives one MLflow run, one registered version, and a champion that `bentoml serve`
answers with."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO
from tests.serving_harness import SENTIMENT_ARGS, Server, cli_run, free_port, http
from training.registry.promotion import champion

NODES = 2
MULTI_NODE = ["--set", "optim.strategy=ddp", "--set", "optim.devices=1", "--set", f"optim.num_nodes={NODES}"]


def torchrun_node(rendezvous: str, run_id: str, home: Path, tracking_uri: str, log: Path) -> subprocess.Popen[str]:
    """One node's launcher: what a cluster's job script runs on every node (the README's torchrun line)."""
    torchrun = str(Path(sys.executable).parent / "torchrun")
    argv = [
        torchrun,
        f"--nnodes={NODES}",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={rendezvous}",
        f"--rdzv-id={run_id}",
        "-m",
        "training",
        "train",
        "--task",
        "sentiment",
        "--preset",
        "smoke",
        *SENTIMENT_ARGS,
        *MULTI_NODE,
        # batch 4 on the 13 training texts: 4 batches, 2 per node
        "--set",
        "optim.batch_size=4",
        "--set",
        "optim.log_every_n_steps=1",
        "--no-progress",
    ]
    env = {
        **os.environ,
        "MEMORIA_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "BENTOML_DO_NOT_TRACK": "true",
        "GLOO_SOCKET_IFNAME": "lo",  # the network between the "nodes"; on a cluster, the nodes' interface
    }
    home.mkdir(parents=True)
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow  # ~70 s on 2 busy cores; the default tier keeps the one-launcher DDP run (test_distributed.py)
def test_torchrun_across_two_node_processes_makes_one_run_and_a_served_champion(tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    rendezvous = f"127.0.0.1:{free_port()}"
    run_id = uuid.uuid4().hex[:8]
    started = time.monotonic()
    logs = [tmp_path / f"node{n}.log" for n in range(NODES)]
    nodes = [torchrun_node(rendezvous, run_id, tmp_path / f"node{n}", tracking_uri, logs[n]) for n in range(NODES)]
    try:
        codes = [node.wait(timeout=500) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    seconds = time.monotonic() - started
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n\n".join(o[-4000:] for o in outputs)
    print(f"\ntorchrun, 2 nodes x 1 process, smoke sentiment through the CLI: {seconds:.1f}s")
    # exactly one node holds global rank 0: it alone trains with MLflow, reports and publishes
    reporters = [o for o in outputs if "registered version 1" in o]
    assert len(reporters) == 1, "\n\n".join(o[-3000:] for o in outputs)
    assert reporters[0].count("epoch 1/1:") == 1 and "promoted to champion" in reporters[0]

    client = MlflowClient(tracking_uri=tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment").experiment_id])
    assert client.search_runs(["0"]) == []  # no stray run from the other node
    assert run.info.status == "FINISHED"
    assert run.data.params["optim.num_nodes"] == "2" and run.data.params["optim.strategy"] == "ddp"
    train_size = int(run.data.params["data.train_size"])
    steps = client.get_metric_history(run.info.run_id, "train/loss_step")
    assert len(steps) == math.ceil(math.ceil(train_size / 4) / NODES)  # rank 0 took its node's share of the batches
    current = champion(client, "sentiment")
    assert current is not None and current.run_id == run.info.run_id

    # served: a real `bentoml serve` on the registry answers with that version (only sentiment was trained, so
    # /readyz stays 503 for want of a translation champion; /sentiment answers once its model is loaded)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MEMORIA_BUNDLE_CACHE": str(tmp_path / "serving-cache"),
        "MEMORIA_WORKERS": "1",
    }
    server = Server(env, tmp_path / "serve.log")
    try:
        deadline = time.time() + 90
        while True:
            status, body, headers = http("POST", server.base + "/sentiment", {"texts": ["what a lovely flight"]})
            if status == 200:
                break
            assert time.time() < deadline and server.proc.poll() is None, server.log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        server.stop()
    assert headers["x-memoria-model"].startswith(f"sentiment/v{current.version} ")
    assert "label" in body


def test_a_multi_node_config_without_a_multi_node_launcher_stops_at_once(tmp_path: Path) -> None:
    """`make retrain` of a run trained across nodes, or a cluster's line typed on one machine: without torchrun or
    srun Lightning would start this machine's process and wait for the other node forever."""
    tracking_uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "SLURM_NTASKS")}
    env |= {"MEMORIA_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": tracking_uri}
    started = time.monotonic()
    out = cli_run(env, "train", "--task", "sentiment", "--preset", "smoke", *SENTIMENT_ARGS, *MULTI_NODE)
    assert out.returncode == 2, out.stdout + out.stderr[-3000:]
    assert "optim.num_nodes=2 needs a multi-node launcher" in out.stderr and "optim.num_nodes=1" in out.stderr
    assert time.monotonic() - started < 120  # refused, not hung
    experiment = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("sentiment")
    assert experiment is None or not MlflowClient(tracking_uri=tracking_uri).search_runs([experiment.experiment_id])
