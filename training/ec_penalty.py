"""The self-scaled expected-connections (EC) budget penalty of the SBNN reference code."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .sparsity import binary_layers, tensor_quant
from .weight_quant import LearnedTauPhiQuant, block_means, ste_clipped


def positive_share(model: nn.Module) -> Tensor:
    """p = share of latent weights > 0 over all learned-domain layers, with a clipped-STE gradient.

    Layers in another domain (the dense +-1 classifier) are outside the budget:
    pushing their weights negative would only flip signs, not save connections.

    A block-structured layer (``LearnedTauPhiQuant.block``) is a group penalty:
    it counts the weights of the blocks whose mean latent weight is > 0, i.e.
    the share of positive blocks weighted by block size, so the budget is still
    a share of connections. The clipped STE is taken on each block mean (clip
    on the mean) and scaled by the block size, so each latent weight gets the
    gradient the element-wise penalty gives it: the penalty lowers whole
    blocks, and the blocks whose mean is nearest 0 cross first.
    """
    total, count = 0.0, 0
    for _, layer in binary_layers(model):
        tq = tensor_quant(layer)
        if not isinstance(tq, LearnedTauPhiQuant):
            continue
        w = layer.weight
        if tq.block is None:
            total = total + ste_clipped(w, (w > 0).to(w.dtype), tq.clip).sum()
        else:
            m = block_means(w, tq.block)
            total = total + tq.block[0] * tq.block[1] * ste_clipped(m, (m > 0).to(m.dtype), tq.clip).sum()
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
