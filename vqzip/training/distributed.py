"""Data-parallel training under torchrun: `torchrun --nproc_per_node N -m vqzip train ...`.

    global batch (--batch) ─► rank r takes its slice ─► forward, backward
                                   gradients ─all_reduce / N─► the same Adam step on every rank
    quantizers' EMA counts and sums ─all_reduce─► the same codebooks on every rank

Every rank draws the whole global batch from the same seeded sampler and keeps its own slice,
so N ranks see exactly the crops one process with the same `--batch` sees, and the sampler's
state in a checkpoint is every rank's. Torch's own RNG (quantizer dropout) is seeded per rank.
Rank 0 alone writes logs, checkpoints and weights; every rank resumes from the same state
file. Gloo on CPU, NCCL on GPU. Without torchrun's environment (WORLD_SIZE unset or 1) all of
this is a no-op.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> None:
    """Join torchrun's process group if this process was started by it (idempotent)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def sync_from_main(module: torch.nn.Module) -> None:
    """Every rank's parameters and buffers set to rank 0's."""
    if world() > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


def shard(batch, n: int):
    """This rank's slice of a global batch of n items (n must divide evenly)."""
    if n % world():
        raise ValueError(f"--batch {n} does not split evenly over {world()} ranks")
    per = n // world()
    return batch[rank() * per : (rank() + 1) * per]


def average_gradients(params) -> None:
    """Every rank's gradients replaced by their mean over ranks, in one flat all_reduce."""
    if world() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_stats(stats: dict) -> dict:
    """Float statistics averaged over ranks (for the log rank 0 writes); others as rank 0's."""
    keys = [k for k, v in stats.items() if isinstance(v, float)]
    if world() == 1 or not keys:
        return stats
    t = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {**stats, **{k: float(v) / world() for k, v in zip(keys, t)}}


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
