"""Several processes, one model: the few helpers the training loop needs under ``torchrun``
(PyTorch DistributedDataParallel). Without torchrun nothing is initialized, every helper
answers as for one process (rank 0 of 1), and the loop runs exactly as in a notebook.

    rank          r in {0, ..., N-1}: this process (RANK, set by torchrun)
    world size    N: the number of processes (WORLD_SIZE)
    local rank    this process's GPU on its machine (LOCAL_RANK): it trains on cuda:LOCAL_RANK

Batches are split by one rule: every rank draws the same global batch (same seed), and rank r
keeps rows [r * B/N, (r + 1) * B/N) of it (``shard``). The global batch at each step therefore
does not depend on N, so N processes train like one process on the same global batch, and a run
can resume from its checkpoint with a different N.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from ..course.device import default_device


def local_device() -> torch.device:
    """cuda:LOCAL_RANK under torchrun on a GPU machine, else the course's default device."""
    device = default_device()
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init_from_env() -> bool:
    """Joins the process group that torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT): NCCL when the processes train on CUDA GPUs, else gloo.
    Returns whether this process is part of a group; a plain ``python`` run has no WORLD_SIZE
    and stays one process."""
    if dist.is_initialized():
        return True
    if "WORLD_SIZE" not in os.environ:
        return False
    device = local_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return True


def close() -> None:
    """Leaves the process group (at the end of a script), if there is one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the process that writes files and shows progress."""
    return rank() == 0


def barrier() -> None:
    """Waits until every rank gets here (nothing to wait for in one process)."""
    if world_size() > 1:
        dist.barrier()


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the ranks (the same tensor on every rank); ``x`` itself in one process."""
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)  # sum over ranks
    return x / world_size()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (to download or cache files), then the other ranks run it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(batch, rank: int, world_size: int):
    """Rank ``rank``'s rows of a global batch: a tensor (B, ...), or a tuple, list or dict of them,
    split along dim 0 into ``world_size`` equal parts."""
    if world_size == 1:
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(b, rank, world_size) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, rank, world_size) for k, v in batch.items()}
    B = batch.shape[0]
    if B % world_size:
        raise ValueError(f"the global batch of {B} does not split evenly over {world_size} processes; "
                         f"use a batch size divisible by {world_size} (or another number of processes)")
    per_rank = B // world_size
    return batch[rank * per_rank:(rank + 1) * per_rank]
