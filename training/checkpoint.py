"""Checkpoints: atomic writes, validated reads, and rebuilding a model from one."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sbnn.errors import UserError

FORMAT = "sbnn-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; train one with `sbnn train --out DIR` (it writes DIR/checkpoint.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"checkpoint {path} is corrupt or not a PyTorch file ({reason}); retrain or pass the right file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an sbnn checkpoint (no '{FORMAT}' header); pass a checkpoint.pt written by `sbnn train`")
    if ckpt.get("version") != VERSION:
        raise UserError(f"checkpoint {path} has format version {ckpt.get('version')}, this sbnn reads {VERSION}; retrain it")
    return ckpt


def load_model_state(model: nn.Module, state: dict, source: str) -> None:
    """Load weights, creating pruning-mask buffers the checkpoint has; mismatches are user errors."""
    for name, mod in model.named_modules():
        key = f"{name}.prune_mask" if name else "prune_mask"
        if key in state and hasattr(mod, "prune_mask") and mod.prune_mask is None:
            mod.prune_mask = torch.zeros_like(state[key])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise UserError(f"checkpoint {source} does not match the model its config describes ({first}); "
                        "it was written by a different model or sbnn version") from None


def model_from_checkpoint(path: str | Path):
    """Rebuild the trained model (eval mode) and its config from a checkpoint file."""
    from .config import TrainConfig
    from .zoo import build_model

    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"], where=str(path))
    data = ckpt["data"]
    model = build_model(cfg.model, tuple(data["in_shape"]), data["num_classes"],
                        cfg.weight_domain(),
                        hidden=cfg.hidden, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout,
                        dense_classifier=cfg.dense_classifier)
    load_model_state(model, ckpt["model"], str(path))
    model.eval()
    return model, cfg, ckpt
