"""A rank of the 2-process gradient check in test_ddp.py (spawned processes import it by name)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sbnn.training.config import TrainConfig
from sbnn.training.datasets import load_dataset
from sbnn.training.distributed import current_rank, use_global_batch_norms
from sbnn.training.ec_penalty import ec_budget_penalty
from sbnn.training.trainer import _rank_loss, batches, seed_everything
from sbnn.training.zoo import build_model


def first_step_grads(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Gradients of the first training step, as the trainer computes them, in this process (one rank or one of
    an initialized group)."""
    rank = current_rank()
    seed_everything(cfg.seed)
    train_set, _, info = load_dataset(cfg.dataset)
    x, y = (t[:cfg.train_subset] for t in train_set.tensors)
    model = build_model(cfg.model, tuple(info.in_shape), info.num_classes, cfg.weight_domain(), hidden=cfg.hidden)
    if rank.parallel:
        model = use_global_batch_norms(model)
    step_model = DistributedDataParallel(model) if rank.parallel else model
    model.train()
    xb, yb = next(batches(x, y, cfg.batch_size, cfg.seed * 100003, rank))
    loss, total = _rank_loss(step_model(xb), yb, rank, cfg.batch_size, x.shape[0], epoch_step=0)
    if cfg.weight_domain().uses_ec_penalty:
        total = total + ec_budget_penalty(model, loss, cfg.ec, cfg.gamma)[0]
    total.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def rank_main(rank: int, world_size: int, port: int, cfg: TrainConfig, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        grads = first_step_grads(cfg)
        if rank == 0:
            torch.save(grads, out)
    finally:
        dist.destroy_process_group()
