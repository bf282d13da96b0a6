"""What a process of a multi-process (DDP) training run needs to know and undo: whether it is rank 0, and how to
go back to being one process once `trainer.fit` returns.

Rank 0 owns everything outside the fit (the MLflow run, evaluation, the saved model, publishing); the other ranks
only train. See `train` in training/train/loop.py.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only


def is_rank_zero() -> bool:
    """Whether this process is global rank 0, known before any Trainer exists: from the variables the launchers
    set (Lightning's `ddp` sets LOCAL_RANK and NODE_RANK for the processes it starts, torchrun RANK, SLURM
    SLURM_PROCID), which Lightning itself reads into `rank_zero_only.rank` on import. A plain run is rank 0.

    The MLflow run has to be started (on rank 0 only) before the Trainer is built; `make_trainer` checks that
    Lightning's own rank agrees."""
    node = int(os.environ.get("NODE_RANK") or os.environ.get("GROUP_RANK") or 0)
    return rank_zero_only.rank == 0 and node == 0


# Set on every process by the launchers that start one process per node and device: torchrun (WORLD_SIZE) and SLURM's
# srun (SLURM_NTASKS). Lightning's own `ddp` launcher starts processes on this machine only.
NODE_LAUNCHER_VARS = ("WORLD_SIZE", "SLURM_NTASKS")


def check_node_launch(num_nodes: int) -> None:
    """Refuse a multi-node run that no multi-node launcher started: Lightning would start this machine's processes
    and wait for the other nodes forever. It happens when a run's logged config (num_nodes > 1) is retrained on one
    machine (`make retrain`), or a cluster's command line is run by hand."""
    if num_nodes > 1 and not any(os.environ.get(name) for name in NODE_LAUNCHER_VARS):
        raise ValueError(
            f"optim.num_nodes={num_nodes} needs a multi-node launcher (torchrun --nnodes={num_nodes} on every node, or "
            "srun; README: Training across machines); to train on this machine alone add --set optim.num_nodes=1"
        )


@contextlib.contextmanager
def one_process_after() -> Iterator[None]:
    """Around `trainer.fit`: undo what a multi-process fit leaves behind, so rank 0 can go on alone.

    The process group would make torchmetrics and the batch sampler go on syncing and sharding with workers that
    have exited (a hang), and Lightning's launcher pins each process to cpu_count / processes threads, which would
    slow rank 0's evaluation and export. A one-process fit leaves neither: nothing to undo."""
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    yield  # (not undone after an exception: the process ends, and the barrier could wait for ranks already gone)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank is out of fit before the group goes away
        torch.distributed.destroy_process_group()
        torch.set_num_threads(threads)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
