"""Data-parallel training with torch DDP: ``sbnn train --nproc N`` or under ``torchrun``.

Every rank holds the whole (in-memory) data set and walks the same shuffled order; each global batch of
``--batch-size`` samples is split into contiguous per-rank slices, so N ranks together take exactly the step
one process takes. Two things keep it the same step, not just a similar one:

- the loss of a rank is its share of the global mean (sum of its samples' losses / global batch size, times
  N because DDP averages the ranks' gradients);
- BatchNorm and TensorNorm take their batch statistics over the global batch (:func:`global_moments`).
  torch's ``SyncBatchNorm`` does this only on GPUs and not for FINN's scalar TensorNorm, so the statistics
  are reduced here with torch's differentiable functional ``all_reduce``, which works with gloo and nccl alike.

Only rank 0 writes checkpoints and metrics; checkpoints are those of a single-process run, so a run
resumes with any number of ranks. Dropout draws per rank, so a run with dropout is not step-for-step equal.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn

from sbnn.errors import UserError

from .device import resolve_device


@dataclass(frozen=True)
class Rank:
    """Where this process stands in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1


def current_rank() -> Rank:
    """The rank of this process in the initialized process group (rank 0 of 1 without one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def launched_by_torchrun() -> bool:
    """torchrun (and other launchers of torch's env:// protocol) set these for every rank."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")) \
        and int(os.environ["WORLD_SIZE"]) > 1


_local_statistics = False


@contextmanager
def local_statistics():
    """Norm statistics from this rank's own samples only (for passes every rank makes over the same data)."""
    global _local_statistics
    saved, _local_statistics = _local_statistics, True
    try:
        yield
    finally:
        _local_statistics = saved


def syncing_statistics() -> bool:
    return not _local_statistics and current_rank().parallel


def global_moments(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean and biased variance over ``dims`` of the samples of all ranks, with gradients, and their count.

    Two passes (mean, then the squared deviations) as torch's own norms compute them, so a 2-rank run stays
    within float rounding of one process."""
    count = torch.tensor([math.prod(x.shape[d] for d in dims)], dtype=torch.float64, device=x.device)
    dist.all_reduce(count)
    n = int(count.item())
    mean = _sum_with_grad(x.sum(dims, keepdim=True)) / n
    var = _sum_with_grad(((x - mean) ** 2).sum(dims, keepdim=True)) / n
    return mean, var, n


def _sum_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Sum over the ranks; its backward sums the ranks' gradients (torch's functional collective, which
    replaces the deprecated ``torch.distributed.nn.functional.all_reduce``)."""
    return funcol.all_reduce(t, "sum", dist.group.WORLD)


class _GlobalStatsBatchNorm:
    """Mixin: training-mode BatchNorm with global-batch statistics (running stats updated as torch does)."""

    def forward(self, x):
        if not (self.training and syncing_statistics()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        mean, var, n = global_moments(x, dims)
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.flatten())
            self.running_var.mul_(1 - m).add_(m * var.flatten() * n / max(n - 1, 1))
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


class GlobalStatsBatchNorm1d(_GlobalStatsBatchNorm, nn.BatchNorm1d):
    pass


class GlobalStatsBatchNorm2d(_GlobalStatsBatchNorm, nn.BatchNorm2d):
    pass


_GLOBAL_NORMS = {nn.BatchNorm1d: GlobalStatsBatchNorm1d, nn.BatchNorm2d: GlobalStatsBatchNorm2d}


def use_global_batch_norms(model: nn.Module) -> nn.Module:
    """Swap every BatchNorm1d/2d for its global-statistics twin (same parameters, buffers and state-dict keys,
    so checkpoints stay those of a single-process run). TensorNorm syncs by itself (:mod:`.layers`)."""
    for name, child in list(model.named_children()):
        twin = _GLOBAL_NORMS.get(type(child))
        if twin is not None:
            new = twin(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(model, name, new)
        else:
            use_global_batch_norms(child)
    return model


def rank_slice(idx: torch.Tensor, rank: Rank) -> torch.Tensor:
    """This rank's contiguous part of one global batch (the parts, in rank order, are the whole batch)."""
    return torch.tensor_split(idx, rank.world_size)[rank.rank] if rank.parallel else idx


def check_batches_split(n_samples: int, batch_size: int, world_size: int) -> None:
    """Every global batch, the last one included, must give every rank at least one sample."""
    last = n_samples % batch_size or batch_size
    if min(batch_size, last, n_samples) < world_size:
        raise UserError(f"{world_size} processes need at least {world_size} samples in every batch, but the last "
                        f"batch of {n_samples} samples at --batch-size {batch_size} holds {last}; change "
                        "--batch-size or --train-subset, or use fewer processes")


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over the ranks (identity in one process)."""
    if not current_rank().parallel:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: str | None, rank: Rank) -> torch.device:
    """cuda under N ranks: one GPU per rank (cuda:LOCAL_RANK); an explicit cuda:N is only for one process."""
    dev = resolve_device(device)
    if dev.type == "cuda" and rank.parallel:
        if rank.local_rank >= torch.cuda.device_count():
            raise UserError(f"rank {rank.rank} needs cuda:{rank.local_rank}, but only {torch.cuda.device_count()} "
                            "CUDA device(s) are visible; use fewer processes per node or --device cpu")
        return torch.device("cuda", rank.local_rank)
    return dev
