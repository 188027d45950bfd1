"""Magnitude pruning with a gradual (cubic) schedule, per layer or global.

Pruned weights are forced to exactly 0 after quantization (the mask lives in
the layer's quantizer, see ``BinaryDomainQuant.prune_mask``), so a +-1 network
becomes {-beta, 0, +beta}: the baseline the {alpha, beta} domain is compared to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sbnn.errors import UserError

from .sparsity import binary_layers, tensor_quant


def cubic_schedule(progress: float, target: float, start: float, end: float) -> float:
    """Zhu & Gupta's gradual pruning: s = target * (1 - (1 - t)^3), t from 0 at ``start`` to 1 at ``end``."""
    if progress <= start:
        return 0.0
    t = min(1.0, (progress - start) / max(end - start, 1e-9))
    return target * (1.0 - (1.0 - t) ** 3)


def _threshold(magnitudes: torch.Tensor, share: float) -> float:
    """Magnitude below which ``share`` of the values lie (kth smallest)."""
    k = int(round(share * magnitudes.numel()))
    if k <= 0:
        return -1.0
    return float(torch.kthvalue(magnitudes.flatten(), k).values)


@dataclass
class MagnitudePruner:
    """Keeps the masks of all binary layers at the scheduled sparsity.

    ``scope='layer'`` prunes each layer to the same share; ``scope='global'``
    uses one magnitude threshold over all binary layers. ``skip_classifier``
    leaves the last binary layer dense, matching ``TrainConfig.dense_classifier``.
    """

    model: nn.Module
    target: float
    scope: str = "layer"
    start: float = 0.0
    end: float = 0.6
    skip_classifier: bool = False

    def __post_init__(self):
        if self.scope not in ("layer", "global"):
            raise UserError(f"unknown pruning scope '{self.scope}'; use 'layer' or 'global'")
        if not 0.0 <= self.target < 1.0:
            raise UserError(f"pruning target must be in [0, 1), got {self.target}")
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise UserError(f"pruning schedule must satisfy 0 <= start <= end <= 1, got {self.start}, {self.end}")
        self.layers = [layer for _, layer in binary_layers(self.model)]
        if self.skip_classifier:
            self.layers = self.layers[:-1]

    @torch.no_grad()
    def step(self, progress: float) -> float:
        """Update every mask for training progress in [0, 1]; returns the scheduled sparsity."""
        share = cubic_schedule(progress, self.target, self.start, self.end)
        if share <= 0.0:
            return 0.0
        if self.scope == "global":
            thr = _threshold(torch.cat([l.weight.abs().flatten() for l in self.layers]), share)
        for layer in self.layers:
            mag = layer.weight.abs()
            t = thr if self.scope == "global" else _threshold(mag, share)
            tensor_quant(layer).prune_mask = (mag > t).to(mag.dtype)
        return share


def ec_schedule(progress: float, target: float, end: float, start_ec: float = 0.5) -> float:
    """Gradual sparsification for the closed-form domains: EC falls from ``start_ec`` (a dense,
    +-1-like split) to ``target`` on the same cubic curve as pruning, reaching it at ``end``."""
    if end <= 0.0 or target >= start_ec:
        return target
    return start_ec - cubic_schedule(progress, start_ec - target, 0.0, end)


def set_target_ec(model: nn.Module, ec: float, skip_classifier: bool) -> None:
    """Point every closed-form binary layer at a new EC target (the classifier may stay dense)."""
    layers = [layer for _, layer in binary_layers(model)]
    if skip_classifier:
        layers = layers[:-1]
    for layer in layers:
        tq = tensor_quant(layer)
        if getattr(tq, "target_ec", None) is not None:
            tq.target_ec = ec
