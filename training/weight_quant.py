"""Brevitas weight quantizers for the generalized binary domain {alpha, beta}.

Each quantizer is a small Brevitas injector whose ``tensor_quant`` is one of the
modules below. A module returns Brevitas' tuple ``(q, scale, zero_point,
bit_width)`` with the 1-bit affine convention

    q = scale * (b - zero_point),  scale = beta - alpha,  zero_point = -alpha / (beta - alpha)

so ``b = 0`` gives alpha and ``b = 1`` gives beta, and the layers work in
``QuantLinear`` / ``QuantConv2d`` unchanged:

    QuantLinear(256, 256, bias=False, weight_quant=AlphaBetaWeightQuant, weight_target_ec=0.1)

Gradients use a straight-through estimator clipped to ``|w| <= clip``.
"""

from __future__ import annotations

import torch
from brevitas.inject import ExtendedInjector
from brevitas.proxy import WeightQuantProxyFromInjector
from torch import Tensor, nn

from .blocks import block_view, expand_blocks, hw_matrix
from .closed_form import closed_form_alpha_beta, closed_form_block_alpha_beta, expand_to

_EPS = 1e-8


def ste_clipped(w: Tensor, forward_value: Tensor, clip: float) -> Tensor:
    """Forward ``forward_value``; backward the identity where ``|w| <= clip``, zero elsewhere."""
    pass_through = (w.abs() <= clip).to(w.dtype)
    return forward_value.detach() + (w - w.detach()) * pass_through


class BinaryDomainQuant(nn.Module):
    """Base: turns per-row levels ``(b, alpha, beta)`` into Brevitas' quant tuple."""

    def __init__(self, clip: float):
        super().__init__()
        self.clip = float(clip)
        self.register_buffer("bit_width_value", torch.tensor(1.0), persistent=False)
        # Magnitude pruning (pruning.py) sets this 0/1 mask; pruned weights become exactly 0.
        self.register_buffer("prune_mask", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Brevitas builds a fresh tensor_quant (prune_mask None) whenever a state dict is loaded
        # (QuantProxyFromInjector._load_from_state_dict), so a pruned checkpoint's mask buffer
        # has to be re-created here, right before torch copies the stored mask into it.
        mask = state_dict.get(prefix + "prune_mask")
        if isinstance(mask, Tensor) and self.prune_mask is None:
            self.prune_mask = torch.empty(mask.shape, dtype=mask.dtype, device=self.bit_width_value.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def levels(self, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``b`` (shape of w) and per-row ``alpha``, ``beta`` of shape (rows, 1)."""
        raise NotImplementedError

    def forward(self, w: Tensor):
        b, alpha, beta = self.levels(w)
        alpha, beta = expand_to(alpha, w), expand_to(beta, w)
        scale = beta - alpha
        # A degenerate row (all weights equal) has alpha == beta; keep the scale finite.
        scale = torch.where(scale.abs() < _EPS, torch.full_like(scale, _EPS), scale)
        q = alpha + scale * b
        y = self.straight_through(w, q, b)
        if self.prune_mask is not None:
            y = y * self.prune_mask
        return y, scale, -alpha / scale, self.bit_width_value

    def straight_through(self, w: Tensor, q: Tensor, b: Tensor) -> Tensor:
        return ste_clipped(w, q, self.clip)


class ClosedFormAlphaBetaQuant(BinaryDomainQuant):
    """{alpha, beta} by closed-form least squares with a target EC (None: threshold at 0).

    ``block = (R, C)`` makes the mask constant on R-output x C-input blocks (``blocks.py``): the k whole
    blocks with the largest summed latent weights (``closed_form_block_alpha_beta``, top side only: see
    there why), per tensor.
    """

    alpha_zero = False

    def __init__(self, target_ec: float | None, per_channel: bool, clip: float, block: tuple[int, int] | None = None):
        super().__init__(clip)
        self.target_ec = target_ec
        self.per_channel = bool(per_channel)
        self.block = tuple(block) if block is not None else None

    def levels(self, w):
        with torch.no_grad():
            if self.block is not None:
                return closed_form_block_alpha_beta(w, self.target_ec, self.block, alpha_zero=self.alpha_zero,
                                                    both_sides=False)
            return closed_form_alpha_beta(w, self.target_ec, per_channel=self.per_channel,
                                          alpha_zero=self.alpha_zero)


class ZeroBetaQuant(ClosedFormAlphaBetaQuant):
    """{0, beta}: alpha pinned to zero, beta and the mask by closed form."""

    alpha_zero = True


class BipolarQuant(BinaryDomainQuant):
    """Classic +-1 domain (alpha = -beta, b = [w > 0]) with XNOR-Net's mean |w| scale."""

    def __init__(self, per_channel: bool, clip: float):
        super().__init__(clip)
        self.per_channel = bool(per_channel)

    def levels(self, w):
        with torch.no_grad():
            return closed_form_alpha_beta(w, per_channel=self.per_channel, symmetric=True)


class LearnedTauPhiQuant(BinaryDomainQuant):
    """Reference-code mode: ``Wq = tau * sign(W) + phi`` with learned per-layer scalars.

    beta = phi + tau, alpha = phi - tau, b = [w > 0]. The EC budget is not
    enforced here but by the self-scaled penalty in ``ec_penalty.py``.

    With ``block = (R, C)`` the sign is taken per block: ``b = [mean of the
    block's latent weights > 0]`` on every weight of the block. The backward
    pass is the same clipped straight-through estimator on each latent weight,
    so a block's mean moves with the mean of its weights' gradients and the
    block flips when that mean crosses 0; ``ec_penalty.positive_share`` counts
    the weights of positive blocks.
    """

    def __init__(self, clip: float, tau_init: float, phi_init: float, block: tuple[int, int] | None = None):
        super().__init__(clip)
        self.tau = nn.Parameter(torch.tensor(float(tau_init)))
        self.phi = nn.Parameter(torch.tensor(float(phi_init)))
        self.block = tuple(block) if block is not None else None

    def levels(self, w):
        b = (w > 0).to(w.dtype) if self.block is None else block_signs(w.detach(), self.block)
        one = torch.ones(1, 1, dtype=w.dtype, device=w.device)
        return b, (self.phi - self.tau) * one, (self.phi + self.tau) * one

    def straight_through(self, w, q, b):
        # Gradients reach tau and phi exactly; sign(w) gets the clipped STE.
        sign = ste_clipped(w, 2 * b - 1, self.clip)
        return self.tau * sign + self.phi


def block_means(w: Tensor, block: tuple[int, int]) -> Tensor:
    """Mean latent weight of every (R, C) block, shape (out / R, inputs / C); differentiable."""
    return block_view(hw_matrix(w), block).mean(dim=(1, 3))


def block_signs(w: Tensor, block: tuple[int, int]) -> Tensor:
    """0/1 mask (shape of w): 1 on every block whose mean latent weight is > 0."""
    return expand_blocks((block_means(w, block) > 0).to(w.dtype), block, w.shape)


class _BinaryDomainWeightQuant(ExtendedInjector):
    proxy_class = WeightQuantProxyFromInjector
    signed = False
    narrow_range = False
    clip = 1.5
    per_channel = False
    block = None          # (R, C): block-structured mask (blocks.py); None = element-wise


class AlphaBetaWeightQuant(_BinaryDomainWeightQuant):
    """{alpha, beta}, closed form, per tensor. Set ``weight_target_ec`` on the layer."""
    tensor_quant = ClosedFormAlphaBetaQuant
    target_ec = None


class AlphaBetaPerChannelWeightQuant(AlphaBetaWeightQuant):
    """{alpha, beta}, closed form, one (alpha, beta) per output channel."""
    per_channel = True


class ZeroBetaWeightQuant(_BinaryDomainWeightQuant):
    """{0, beta}, closed form with target EC."""
    tensor_quant = ZeroBetaQuant
    target_ec = None


class BipolarWeightQuant(_BinaryDomainWeightQuant):
    """Classic +-1 weights scaled by mean |w|."""
    tensor_quant = BipolarQuant


class LearnedAlphaBetaWeightQuant(_BinaryDomainWeightQuant):
    """{alpha, beta} with learned tau, phi (reference code). Starts as +-1."""
    tensor_quant = LearnedTauPhiQuant
    tau_init = 1.0
    phi_init = 0.0
