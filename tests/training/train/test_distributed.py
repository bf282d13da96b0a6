"""Training on several processes (Lightning DDP over gloo on CPU): the batch sampler gives each process its own
share of the batches, and a 2-process run through the CLI makes one MLflow run and one servable champion."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serving.contract.registry import champion_bundle
from tests.conftest import REPO
from tests.serving_harness import SENTIMENT_ARGS, TRANSLATION_ARGS
from training.data.batching import BucketBatchSampler
from training.registry.promotion import champion

DDP = ["--set", "optim.devices=2", "--set", "optim.strategy=ddp"]


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
def test_each_process_gets_its_own_batches_and_as_many_as_the_others(replicas: int, shuffle: bool) -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 30) for _ in range(203)]  # 26 batches of 8: neither 2 nor 3 processes divide them
    per_rank = math.ceil(26 / replicas)
    repeated = per_rank * replicas - 26

    def sampler(**shard: int) -> BucketBatchSampler:
        return BucketBatchSampler(lengths, 8, shuffle=shuffle, seed=5, pool_batches=4, **shard)

    whole = sampler()
    shards = [sampler(num_replicas=replicas, rank=rank) for rank in range(replicas)]
    assert len(whole) == 26 and all(len(s) == per_rank for s in shards)  # len() is what Lightning plans with
    for _ in range(2):  # two epochs
        everything = [tuple(b) for b in whole]
        mine = [[tuple(b) for b in s] for s in shards]
        # the same number of batches for every process: none waits for the others in the gradient all-reduce
        assert [len(batches) for batches in mine] == [per_rank] * replicas
        # together they are the epoch's batches, each once, plus `repeated` batches seen twice (the padding)
        together = [b for batches in mine for b in batches]
        assert sorted(set(together)) == sorted(everything) and len(together) == len(everything) + repeated
        # disjoint: apart from the padding, no batch goes to two processes
        owners = {b: {rank for rank, batches in enumerate(mine) if b in batches} for b in together}
        assert sum(len(ranks) > 1 for ranks in owners.values()) <= repeated
        assert all(len(ranks) == 1 for b, ranks in owners.items() if together.count(b) == 1)
    if shuffle:  # another order each epoch, the same on every process (both drew from seed + epoch)
        assert list(shards[0]) != list(sampler(num_replicas=replicas, rank=0))


def test_sampler_refuses_half_a_shard_spec() -> None:
    with pytest.raises(ValueError, match="num_replicas"):
        BucketBatchSampler([1, 2, 3], 2, shuffle=False, num_replicas=2)
    with pytest.raises(ValueError, match="num_replicas"):
        BucketBatchSampler([1, 2, 3], 2, shuffle=False, num_replicas=2, rank=2)


def _train_cli(tmp_path: Path, task: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        **os.environ,
        "MEMORIA_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    started = time.monotonic()
    # A subprocess, not main() in this process: Lightning's `ddp` starts the second process by running the same
    # command line again, which here would be pytest's.
    out = subprocess.run(
        [sys.executable, "-m", "training", "train", "--task", task, "--preset", "smoke", *args, "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,  # the worker holds the output pipes too: a worker that never exits fails here
    )
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr[-4000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-4000:]  # a worker failing after rank 0 finished shows here
    return out, time.monotonic() - started


def _one_finished_run(client: MlflowClient, task: str):
    """The task's only run; nothing in MLflow's Default experiment (where a stray fluent call of a worker, with no
    run of its own, would have started one)."""
    (run,) = client.search_runs([client.get_experiment_by_name(task).experiment_id])
    assert client.search_runs(["0"]) == []
    assert run.info.status == "FINISHED"
    return run


def test_two_process_sentiment_run_makes_one_run_and_a_servable_champion(tmp_path: Path) -> None:
    # batch 4 on the 13 training texts: 4 batches, 2 per process (one process would take 4 steps)
    small_batches = ["--set", "optim.batch_size=4", "--set", "optim.log_every_n_steps=1"]
    out, seconds = _train_cli(tmp_path, "sentiment", *SENTIMENT_ARGS, *DDP, *small_batches)
    print(f"2-process smoke run through the CLI: {seconds:.1f}s")
    # only rank 0 speaks: one epoch line, one report, although both processes write to the same pipes
    assert out.stdout.count("epoch 1/1:") == 1
    assert out.stdout.count("trained in") == 1 and out.stdout.count("registered version 1") == 1

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = _one_finished_run(client, "sentiment")
    assert run.data.params["optim.devices"] == "2" and run.data.params["optim.strategy"] == "ddp"
    train_size = int(run.data.params["data.train_size"])
    steps = client.get_metric_history(run.info.run_id, "train/loss_step")
    assert len(steps) == math.ceil(math.ceil(train_size / 4) / 2)  # rank 0 took its half of the batches
    assert run.data.metrics["epochs_trained"] == 1.0 and "test/macro_f1" in run.data.metrics

    current = champion(client, "sentiment")
    assert current is not None and current.run_id == run.info.run_id
    served = champion_bundle("sentiment", client.tracking_uri, tmp_path / "cache")
    assert served.bundle.manifest["task"] == "sentiment"


@pytest.mark.slow
def test_two_process_translation_run_makes_one_run_and_a_servable_champion(tmp_path: Path) -> None:
    out, seconds = _train_cli(tmp_path, "translation", *TRANSLATION_ARGS, *DDP)
    print(f"2-process translation smoke run through the CLI: {seconds:.1f}s")
    assert out.stdout.count("epoch 1/1:") == 1
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = _one_finished_run(client, "translation")
    assert run.data.params["optim.devices"] == "2"
    assert {"val/bleu", "val/nll", "test/bleu"} <= set(run.data.metrics)
    current = champion(client, "translation")
    assert current is not None and current.run_id == run.info.run_id
    served = champion_bundle("translation", client.tracking_uri, tmp_path / "cache")
    assert served.bundle.manifest["task"] == "translation"
