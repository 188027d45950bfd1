"""Starting a data-parallel run: ``sbnn train --nproc N`` spawns the ranks here; under ``torchrun`` each
process is one rank already (see :mod:`.distributed` for what makes N ranks take one process's steps)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp

from sbnn.errors import UserError

from .config import TrainConfig
from .device import resolve_device
from .distributed import backend_for, check_batches_split
from .trainer import METRICS, preflight, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, cfg: TrainConfig, out: str, data_dir, resume: bool,
               progress: bool, device: str | None, errors) -> None:
    """One spawned rank: join the group, train, leave. A user error goes to the parent as one line."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        dev = resolve_device(device)
        dist.init_process_group(backend_for(dev), rank=rank, world_size=world_size)
        train(cfg, out, data_dir=data_dir, resume=resume, progress=progress and rank == 0, device=device)
    except UserError as exc:
        errors.put(f"{exc}")
        raise SystemExit(2) from None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def train_spawned(cfg: TrainConfig, out_dir: str | Path, nproc: int, *, data_dir=None, resume: bool = False,
                  progress: bool = True, device: str | None = "auto") -> dict:
    """Train with ``nproc`` local ranks (spawned processes); returns the metrics rank 0 wrote."""
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}")
    if nproc == 1:
        return train(cfg, out_dir, data_dir=data_dir, resume=resume, progress=progress, device=device)
    preflight(cfg, out_dir, resume=resume, device=device)   # one-line errors before any process starts
    if cfg.train_subset:   # the ranks check again with the data set's real size
        check_batches_split(cfg.train_subset, cfg.batch_size, nproc)
    ctx = torch_mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    try:
        torch_mp.spawn(_rank_main, args=(nproc, _free_port(), cfg, str(out_dir), data_dir, resume, progress, device,
                                         errors), nprocs=nproc, join=True)
    except torch_mp.ProcessExitedException:
        if not errors.empty():
            raise UserError(errors.get()) from None
        raise
    return json.loads((Path(out_dir) / METRICS).read_text())


def train_under_torchrun(cfg: TrainConfig, out_dir: str | Path, *, data_dir=None, resume: bool = False,
                         progress: bool = True, device: str | None = "auto") -> dict:
    """This process is one rank that torchrun started (env:// rendezvous); returns the run's metrics."""
    dev = resolve_device(device)
    dist.init_process_group(backend_for(dev))
    try:
        return train(cfg, out_dir, data_dir=data_dir, resume=resume, progress=progress and dist.get_rank() == 0,
                     device=device)
    finally:
        dist.destroy_process_group()
