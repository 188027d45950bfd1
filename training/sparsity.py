"""Which layers are binary, their current levels, and the achieved sparsity.

Sparsity is the share of weights at alpha (b = 0): the positions the sparse
XNOR-popcount hardware skips. Weights removed by magnitude pruning (set to 0)
are counted separately as ``pruned``.
"""

from __future__ import annotations

import torch
from torch import nn

from .weight_quant import BinaryDomainQuant


def binary_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) for every QuantLinear / QuantConv2d whose weights use a binary-domain quantizer."""
    out = []
    for name, mod in model.named_modules():
        proxy = getattr(mod, "weight_quant", None)
        if isinstance(getattr(proxy, "tensor_quant", None), BinaryDomainQuant):
            out.append((name, mod))
    return out


def tensor_quant(layer: nn.Module) -> BinaryDomainQuant:
    return layer.weight_quant.tensor_quant


@torch.no_grad()
def layer_levels(layer: nn.Module):
    """Current ``(b, alpha, beta)`` of a binary layer; alpha, beta are (rows, 1)."""
    return tensor_quant(layer).levels(layer.weight)


def _scalar_or_list(v: torch.Tensor):
    v = v.flatten()
    return float(v[0]) if v.numel() == 1 else [float(x) for x in v]


@torch.no_grad()
def sparsity_report(model: nn.Module) -> dict:
    """Per-layer and overall sparsity, with alpha and beta of each layer."""
    layers, n_all, at_alpha_all, pruned_all = [], 0, 0, 0
    for name, layer in binary_layers(model):
        b, alpha, beta = layer_levels(layer)
        mask = tensor_quant(layer).prune_mask
        kept = torch.ones_like(b) if mask is None else mask.to(b.dtype)
        n = b.numel()
        at_alpha = int(((1 - b) * kept).sum())
        pruned = int(n - kept.sum())
        layers.append({
            "name": name,
            "shape": list(layer.weight.shape),
            "weights": n,
            "sparsity": at_alpha / n,
            "pruned": pruned / n,
            "connections": int((b * kept).sum()) / n,
            "alpha": _scalar_or_list(alpha),
            "beta": _scalar_or_list(beta),
        })
        n_all, at_alpha_all, pruned_all = n_all + n, at_alpha_all + at_alpha, pruned_all + pruned
    return {
        "sparsity": at_alpha_all / max(n_all, 1),
        "pruned": pruned_all / max(n_all, 1),
        "weights": n_all,
        "layers": layers,
    }
