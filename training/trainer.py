"""The training loop behind ``sbnn train``: seeded, resumable, with a progress bar."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sbnn.artifacts import check_output_dir, write_text_atomic
from sbnn.errors import UserError

from .checkpoint import RESUME_REQUIRED, load_checkpoint, load_model_state, require_entries, save_checkpoint
from .config import TrainConfig
from .datasets import load_dataset
from .device import resolve_device
from .distributed import (all_sum, check_batches_split, current_rank, local_statistics, rank_device, rank_slice,
                          use_global_batch_norms)
from .ec_penalty import ec_budget_penalty
from .pruning import MagnitudePruner, ec_schedule, set_target_ec
from .sparsity import binary_layers, sparsity_report
from .zoo import build_model

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
PRUNE_EVERY = 50  # optimizer steps between pruning-mask updates


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle_seed: int | None, rank=None):
    """Mini-batches straight from in-memory tensors (much faster than a per-item DataLoader).

    With a data-parallel ``rank`` every rank draws the same order and yields its slice of each batch."""
    n = x.shape[0]
    if shuffle_seed is None:
        order = torch.arange(n)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        if rank is not None:
            idx = rank_slice(idx, rank)
        yield x[idx], y[idx]


@torch.no_grad()
def recalibrate_norms(model, x: torch.Tensor, batch_size: int, max_samples: int = 10000) -> None:
    """Re-estimate BatchNorm / TensorNorm statistics for the final binary weights.

    The closed-form masks and levels change at every step, so the running
    averages collected during training lag behind the weights actually used in
    eval mode. A pass over a fixed slice of training data with cumulative
    averaging (momentum None) makes the eval-mode model, and everything
    exported from it, consistent with its weights.
    """
    norms = [m for m in model.modules() if hasattr(m, "reset_running_stats") and hasattr(m, "momentum")]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for xb, _ in batches(x[:max_samples], x.new_zeros(min(max_samples, x.shape[0])), batch_size, None):
        model(xb)
    for m, mom in zip(norms, saved):
        m.momentum = mom
    model.eval()


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in batches(x, y, batch_size, None))
    return correct / x.shape[0]


def epoch_line(h: dict, epochs: int) -> str:
    """The one progress line of a finished epoch (``h``: its history entry), on a terminal and in a log."""
    return (f"epoch {h['epoch']}/{epochs}: loss {h['train_loss']:.4f}  train acc {h['train_accuracy']:.4f}  "
            f"test acc {h['test_accuracy']:.4f}  sparsity {h['sparsity']:.3f}  pruned {h['pruned']:.3f}  "
            f"({h['epoch_time_s']:.1f} s)")


def _to_cpu(state):
    """A state dict (nested dicts/lists of tensors) with every tensor on the CPU: checkpoints load anywhere."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


def _write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _check_resume(ckpt: dict, cfg: TrainConfig, path: Path) -> None:
    require_entries(ckpt, RESUME_REQUIRED, str(path))
    diff = [f"{k}: {a!r} -> {b!r}" for k, a, b in cfg.differences(ckpt["config"])]
    if diff:
        raise UserError(f"cannot resume {path} with different hyperparameters ({'; '.join(diff)}); "
                        "rerun with the original settings or train into a new --out directory")


def _restore_training_state(ckpt: dict, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                            path: Path) -> None:
    """Optimizer, LR schedule and RNG of a resumed run; a state that does not fit is a user error."""
    try:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"checkpoint {path} holds an optimizer/scheduler/RNG state this run cannot use ({reason}); "
                        "train into a new --out directory") from None


def preflight(cfg: TrainConfig, out_dir: str | Path, *, resume: bool, device: str | None) -> dict | None:
    """The checks before any data is loaded: the output folder, the checkpoint to resume (returned), the device."""
    out = Path(out_dir)
    check_output_dir(out, "--out")   # a path that can never hold the run fails now, not after the first epoch
    ckpt_path = out / CHECKPOINT
    ckpt = None
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        _check_resume(ckpt, cfg, ckpt_path)
    elif ckpt_path.exists():
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    resolve_device(device)
    return ckpt


def train(cfg: TrainConfig, out_dir: str | Path, *, data_dir: str | None = None, resume: bool = False,
          progress: bool = True, device: str | None = "auto") -> dict:
    """Train (or resume) a run in ``out_dir``; returns the metrics written to metrics.json.

    ``device`` (:func:`sbnn.training.device.resolve_device`): the model and the whole data set move there
    (the data sets here fit in GPU memory); checkpoints hold CPU tensors, so a run resumes anywhere.
    Inside a torch.distributed process group this process is one data-parallel rank (:mod:`.distributed`):
    it trains on its slice of every batch and only rank 0 writes files."""
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    ckpt = preflight(cfg, out, resume=resume, device=device)
    rank = current_rank()
    dev = rank_device(device, rank)
    seed_everything(cfg.seed)
    train_set, test_set, info = load_dataset(cfg.dataset, data_dir)
    x_train, y_train = train_set.tensors
    x_test, y_test = test_set.tensors
    if cfg.train_subset:
        x_train, y_train = x_train[:cfg.train_subset], y_train[:cfg.train_subset]
    check_batches_split(x_train.shape[0], cfg.batch_size, rank.world_size)
    x_train, y_train, x_test, y_test = (t.to(dev) for t in (x_train, y_train, x_test, y_test))

    model = build_model(cfg.model, tuple(info.in_shape), info.num_classes, cfg.weight_domain(),
                        hidden=cfg.hidden, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout,
                        dense_classifier=cfg.dense_classifier)
    if rank.parallel:
        model = use_global_batch_norms(model)
    model = model.to(dev)
    if ckpt is not None:
        # Before the optimizer is built: loading replaces the quantizers' modules (Brevitas re-creates
        # tensor_quant), so learned tau / phi are new Parameters the optimizer must be given.
        load_model_state(model, ckpt["model"], str(ckpt_path))
    steps_per_epoch = (x_train.shape[0] + cfg.batch_size - 1) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    # The ResNet's classifier is full precision: its last binary layer is a conv, never skipped.
    skip_head = cfg.dense_classifier and cfg.model != "resnet"
    pruner = None
    if cfg.prune != "none":
        pruner = MagnitudePruner(model, cfg.prune_target, cfg.prune, cfg.prune_start, cfg.prune_end,
                                 skip_classifier=skip_head)
    latent = [layer.weight for _, layer in binary_layers(model)]
    ramp = cfg.ec_ramp_end > 0 and cfg.domain in ("alpha-beta", "zero-beta")
    use_penalty = cfg.weight_domain().uses_ec_penalty

    start_epoch, history, wall = 0, [], 0.0
    if ckpt is not None:
        _restore_training_state(ckpt, opt, sched, ckpt_path)
        start_epoch, history, wall = ckpt["epoch"], ckpt["history"], ckpt["wall_time_s"]
    if rank.is_main:
        out.mkdir(parents=True, exist_ok=True)
    # DDP averages the ranks' gradients (and broadcasts rank 0's weights once, here); `model` stays the plain
    # module for everything else (masks, pruning, evaluation, checkpoints).
    step_model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                         forward_sync_buffers=False) if rank.parallel else model
    progress = progress and rank.is_main

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        # disable=None: tqdm draws the bar only on a terminal; a log gets the one line per epoch below
        bar = tqdm(batches(x_train, y_train, cfg.batch_size, cfg.seed * 100003 + epoch, rank), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=None if progress else True, leave=False,
                   unit="batch")
        for step, (xb, yb) in enumerate(bar):
            if ramp:
                done = (epoch * steps_per_epoch + step) / total_steps
                set_target_ec(model, ec_schedule(done, cfg.ec, cfg.ec_ramp_end), skip_head)
            logits = step_model(xb)
            loss, total = _rank_loss(logits, yb, rank, cfg.batch_size, x_train.shape[0], epoch_step=step)
            if use_penalty:
                penalty, _ = ec_budget_penalty(model, loss, cfg.ec, cfg.gamma)
                total = total + penalty
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for w in latent:
                    w.clamp_(-cfg.latent_clamp, cfg.latent_clamp)
            global_step = epoch * steps_per_epoch + step + 1
            if pruner is not None and (global_step % PRUNE_EVERY == 0 or global_step == total_steps):
                pruner.step(global_step / total_steps)
            seen += yb.numel()
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss.detach()) * yb.numel()   # N ranks: the global mean, so the sums add up
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
        bar.close()
        if ramp:  # evaluate (and checkpoint) at the EC the schedule has reached by the end of this epoch,
            # so the last epoch's model is exactly the one export rebuilds at --ec, even with --ec-ramp-end 1
            set_target_ec(model, ec_schedule((epoch + 1) / cfg.epochs, cfg.ec, cfg.ec_ramp_end), skip_head)
        seen, correct, loss_sum = all_sum([seen, correct, loss_sum], dev)
        with local_statistics():   # every rank recalibrates on the same samples: nothing to share
            recalibrate_norms(model, x_train, cfg.batch_size)
        wall += time.perf_counter() - t0
        test_acc = evaluate(model, x_test, y_test)
        rep = sparsity_report(model)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                        "test_accuracy": test_acc, "sparsity": rep["sparsity"], "pruned": rep["pruned"],
                        "epoch_time_s": time.perf_counter() - t0})
        if progress:
            # stderr, like the bar: in a `> log 2>&1` it stays in order with the build's stage lines
            tqdm.write(epoch_line(history[-1], cfg.epochs), file=sys.stderr)
        if not rank.is_main:
            continue
        save_checkpoint(ckpt_path, {
            "config": cfg.to_dict(), "epoch": epoch + 1, "model": _to_cpu(model.state_dict()),
            "optimizer": _to_cpu(opt.state_dict()), "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
            "history": history, "wall_time_s": wall,
            "data": {"dataset": cfg.dataset, "in_shape": list(info.in_shape), "num_classes": info.num_classes},
        })

    rep = sparsity_report(model)
    metrics = {
        "test_accuracy": history[-1]["test_accuracy"],
        "test_samples": int(x_test.shape[0]),
        "sparsity": rep["sparsity"],
        "pruned": rep["pruned"],
        "layers": rep["layers"],
        "epochs": cfg.epochs,
        "wall_time_s": wall,
        "seconds_per_epoch": wall / max(len(history), 1),
        "config": cfg.to_dict(),
        "device": str(dev),
        "processes": rank.world_size,
        "history": history,
    }
    if rank.is_main:
        _write_json(out / METRICS, metrics)
    return metrics


def _rank_loss(logits: torch.Tensor, yb: torch.Tensor, rank, batch_size: int, n_train: int, epoch_step: int):
    """``(loss, total)``: the batch's mean loss (detached on N ranks, for the EC penalty's scale) and the term
    to differentiate. On N ranks that is this rank's share of the global batch mean, times N: DDP averages the
    ranks' gradients, so their sum is the gradient of the global mean, as in one process."""
    if not rank.parallel:
        loss = F.cross_entropy(logits, yb)
        return loss, loss
    global_n = min(batch_size, n_train - epoch_step * batch_size)
    local_sum = F.cross_entropy(logits, yb, reduction="sum")
    mean = all_sum([float(local_sum.detach())], logits.device)[0] / global_n
    return logits.new_tensor(mean), local_sum * (rank.world_size / global_n)
