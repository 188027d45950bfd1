"""The self-scaled expected-connections (EC) budget penalty of the SBNN reference code."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .sparsity import binary_layers, tensor_quant
from .weight_quant import LearnedTauPhiQuant, ste_clipped


def positive_share(model: nn.Module) -> Tensor:
    """p = share of latent weights > 0 over all learned-domain layers, with a clipped-STE gradient.

    Layers in another domain (the dense +-1 classifier) are outside the budget:
    pushing their weights negative would only flip signs, not save connections.
    """
    total, count = 0.0, 0
    for _, layer in binary_layers(model):
        if not isinstance(tensor_quant(layer), LearnedTauPhiQuant):
            continue
        w = layer.weight
        total = total + ste_clipped(w, (w > 0).to(w.dtype), tensor_quant(layer).clip).sum()
        count += w.numel()
    return total / count


def ec_budget_penalty(model: nn.Module, task_loss: Tensor, ec: float, gamma: float) -> tuple[Tensor, float]:
    """Return ``(lambda * h, p)``, the term to add to the task loss and the current share p.

    h = relu(p - EC). lambda = gamma * L / ((1 - gamma) * h) is computed without
    gradient, so the penalty always weighs gamma / (1 - gamma) of the task loss
    while over budget (h > 1e-4), and vanishes once the budget is met.
    """
    p = positive_share(model)
    h = torch.relu(p - ec)
    if gamma <= 0.0 or float(h.detach()) <= 1e-4:
        return task_loss.new_zeros(()), float(p.detach())
    lam = (gamma * task_loss.detach() / ((1.0 - gamma) * h.detach()))
    return lam * h, float(p.detach())
