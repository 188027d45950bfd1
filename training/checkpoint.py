"""Checkpoints: atomic writes, validated reads, and rebuilding a model from one.

A checkpoint holds only plain data (dicts, lists, str, int, float, bool, None)
and tensors, so it is read with PyTorch's safe unpickler (``weights_only=True``):
a file that tries to build any other object, which is how a hostile pickle runs
code, is refused before anything in it is executed.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from sbnn.errors import UserError

from .config import TrainConfig
from .zoo import build_model

FORMAT = "sbnn-checkpoint"
VERSION = 1

Spec = dict[str, tuple[type, ...]]

# Entries every reader needs (export, build, resume); ``data`` is checked per key as well.
REQUIRED: Spec = {"config": (dict,), "model": (dict,), "data": (dict,), "epoch": (int,), "history": (list,)}
DATA_REQUIRED: Spec = {"dataset": (str,), "in_shape": (list, tuple), "num_classes": (int,)}
# Only resuming training needs these, so a checkpoint stripped of them still exports.
RESUME_REQUIRED: Spec = {"optimizer": (dict,), "scheduler": (dict,), "rng": (torch.Tensor,),
                         "wall_time_s": (int, float)}

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


def _first_sentence(exc: Exception) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")


def _read(path: Path) -> object:
    """``torch.load`` with the safe unpickler; every failure becomes a one-line UserError."""
    try:
        with warnings.catch_warnings():  # torch's format warnings would break the one-line error contract
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if found:
            raise UserError(f"checkpoint {path} refused: the file contains code/objects sbnn does not load "
                            f"({found.group(1)}); only load checkpoints written by `sbnn train`") from None
        raise UserError(f"checkpoint {path} is corrupt or not a PyTorch file (unreadable pickle data); "
                        "retrain or pass the right file") from None
    except Exception as exc:
        raise UserError(f"checkpoint {path} is corrupt or not a PyTorch file ({_first_sentence(exc)}); "
                        "retrain or pass the right file") from None


def require_entries(mapping: dict, spec: Spec, source: str, prefix: str = "") -> None:
    """One-line UserError naming the first entry of ``spec`` that ``mapping`` lacks or holds with the wrong type."""
    for key, kinds in spec.items():
        name = f"{prefix}{key}"
        if key not in mapping:
            raise UserError(f"checkpoint {source} has no '{name}' entry; it is incomplete or was not written by "
                            "this sbnn, retrain it with `sbnn train`")
        if not isinstance(mapping[key], kinds):
            expected = " or ".join(t.__name__ for t in kinds)
            raise UserError(f"checkpoint {source} has a malformed '{name}' entry (expected {expected}, got "
                            f"{type(mapping[key]).__name__}); retrain it with `sbnn train`")


def load_checkpoint(path: str | Path) -> dict:
    """Read and validate a checkpoint: header, version and the entries every reader needs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; train one with `sbnn train --out DIR` (it writes DIR/checkpoint.pt)")
    ckpt = _read(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an sbnn checkpoint (no '{FORMAT}' header); pass a checkpoint.pt written by `sbnn train`")
    if ckpt.get("version") != VERSION:
        raise UserError(f"checkpoint {path} has format version {ckpt.get('version')}, this sbnn reads {VERSION}; retrain it")
    require_entries(ckpt, REQUIRED, str(path))
    require_entries(ckpt["data"], DATA_REQUIRED, str(path), prefix="data.")
    if not ckpt["history"]:
        raise UserError(f"checkpoint {path} has an empty 'history' (no finished epoch); retrain it with `sbnn train`")
    return ckpt


def load_model_state(model: nn.Module, state: dict, source: str) -> None:
    """Load weights (pruning masks included, see ``BinaryDomainQuant``); mismatches are user errors."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise UserError(f"checkpoint {source} does not match the model its config describes ({first}); "
                        "it was written by a different model or sbnn version") from None


def model_from_checkpoint(path: str | Path):
    """Rebuild the trained model (eval mode) and its config from a checkpoint file."""
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
