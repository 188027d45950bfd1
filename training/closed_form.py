"""Closed-form least-squares quantization into the generalized binary domain {alpha, beta}.

This is the one place where the math lives; the Brevitas quantizers in
``weight_quant.py`` call it on every forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .blocks import block_sums, expand_blocks


def _rows(w: Tensor, per_channel: bool) -> Tensor:
    """View weights as (rows, n): one row per output channel, or a single row."""
    return w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)


def ec_to_k(ec: float, n: int) -> int:
    """Number of ones for a target expected-connections share: round(ec * n), kept in [1, n - 1]."""
    return int(min(max(round(ec * n), 1), n - 1))


def _top_k_mask(rows: Tensor, k: int) -> Tensor:
    """0/1 mask of the k largest entries of each row.

    A k-th value threshold is O(n), far cheaper than sorting 200k weights on
    every training step; rows with ties at the threshold (rare with float
    weights) fall back to an exact top-k so every row has exactly k ones.
    """
    n = rows.shape[1]
    thr = torch.kthvalue(rows, n - k, dim=1, keepdim=True).values
    mask = (rows > thr).to(rows.dtype)
    bad = mask.sum(dim=1) != k
    if bad.any():
        idx = torch.topk(rows[bad], k, dim=1).indices
        mask[bad] = torch.zeros_like(rows[bad]).scatter_(1, idx, 1.0)
    return mask


def closed_form_alpha_beta(
    w: Tensor,
    ec: float | None = None,
    *,
    per_channel: bool = False,
    alpha_zero: bool = False,
    symmetric: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Least-squares binarization ``w ~ alpha + (beta - alpha) * b`` with ``b in {0, 1}``.

    Returns ``(b, alpha, beta)``; ``b`` has the shape of ``w``, ``alpha`` and
    ``beta`` have shape ``(rows, 1)`` (rows = output channels if ``per_channel``
    else 1). No gradient flows through this function (callers add the STE).

    Derivation. For a fixed partition of the ``n`` weights of a row into the
    set ``B`` (b = 1, ``|B| = k``) and its complement ``A``, the squared error

    .. math:: E = \sum_{i \in A} (w_i - \alpha)^2 + \sum_{i \in B} (w_i - \beta)^2

    is minimised by the two means, :math:`\alpha = \bar w_A`, :math:`\beta = \bar w_B`,
    leaving :math:`E = \sum_i w_i^2 - (n - k)\,\alpha^2 - k\,\beta^2`. In one
    dimension the optimal two clusters are separated by a threshold, so with
    ``|B| = k`` fixed by the target ``ec = k / n`` only two partitions can be
    optimal: ``B`` = the ``k`` largest weights, or the ``k`` smallest. We
    evaluate both errors and keep the smaller one, per row.

    Special cases (each a flag):

    * ``ec=None``: the threshold is fixed at 0, ``b = [w > 0]``; then
      :math:`\alpha` is the mean of the non-positive and :math:`\beta` the mean
      of the positive weights (an empty side gives 0).
    * ``alpha_zero=True``: the {0, beta} domain. With :math:`\alpha = 0` the
      error is :math:`\sum w^2 - (\sum_B w)^2 / k`, so ``B`` is the ``k``
      largest or the ``k`` smallest weights, whichever has the larger
      :math:`|\sum_B w|`, and :math:`\beta = \bar w_B`.
    * ``symmetric=True``: the classic +-1 domain :math:`\alpha = -\beta`. With
      ``b = [w > 0]`` the error is minimised by
      :math:`\beta = \overline{|w|}` (XNOR-Net's scale); ``ec`` must be None.
    """
    if symmetric:
        if ec is not None or alpha_zero:
            raise ValueError("symmetric (+-1) quantization has no EC target and no alpha = 0 variant")
        rows = _rows(w, per_channel)
        beta = rows.abs().mean(dim=1, keepdim=True)
        return (w > 0).to(w.dtype), -beta, beta

    rows = _rows(w, per_channel)
    n = rows.shape[1]
    if ec is None:
        b = (rows > 0).to(rows.dtype)
        nb = b.sum(dim=1, keepdim=True)
        na = n - nb
        beta = (rows * b).sum(dim=1, keepdim=True) / nb.clamp(min=1)
        alpha = (rows * (1 - b)).sum(dim=1, keepdim=True) / na.clamp(min=1)
        if alpha_zero:
            alpha = torch.zeros_like(alpha)
        return b.reshape(w.shape), alpha, beta

    if not 0.0 < ec < 1.0:
        raise ValueError(f"expected connections must be in (0, 1), got {ec}")
    k = ec_to_k(ec, n)
    b, alpha, beta = _best_side(rows, k, n, k, rows.sum(dim=1, keepdim=True), alpha_zero)
    return b.reshape(w.shape), alpha, beta


def _best_side(scores: Tensor, k: int, n: int, ones: int, sum_all: Tensor,
               alpha_zero: bool, both_sides: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Per row of ``scores``: the 0/1 choice of the k top or the k bottom entries, whichever has the smaller
    squared error, with alpha, beta = the means of the two sides.

    An entry is one weight (element-wise) or one block's sum (blocks); ``ones`` weights (of ``n`` per row)
    are at beta either way, and the error depends on the choice only through ``sum_B``, the sum of the
    chosen entries (see the derivations of the two callers).
    """
    top = _top_k_mask(scores, k)
    bottom = _top_k_mask(-scores, k) if both_sides else top
    sum_top = (scores * top).sum(dim=1, keepdim=True)
    sum_bot = (scores * bottom).sum(dim=1, keepdim=True)
    if alpha_zero:
        # Error = sum w^2 - (sum_B w)^2 / |B|: pick the side with the larger |sum|.
        use_top = sum_top.abs() >= sum_bot.abs()
        beta = torch.where(use_top, sum_top, sum_bot) / ones
        return torch.where(use_top, top, bottom), torch.zeros_like(beta), beta

    def gain(sum_b: Tensor) -> Tensor:  # (n - |B|) alpha^2 + |B| beta^2, larger is better
        return (sum_all - sum_b) ** 2 / (n - ones) + sum_b**2 / ones

    use_top = gain(sum_top) >= gain(sum_bot)
    sum_b = torch.where(use_top, sum_top, sum_bot)
    return torch.where(use_top, top, bottom), (sum_all - sum_b) / (n - ones), sum_b / ones


def closed_form_block_alpha_beta(w: Tensor, ec: float, block: tuple[int, int], *,
                                 alpha_zero: bool = False, both_sides: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    r"""Least-squares ``w ~ alpha + (beta - alpha) * b`` with ``b`` constant on every ``block`` (per tensor).

    ``block = (R, C)``: R output neurons x C inputs in the hardware's input
    order (``blocks.py``), the shape a PE = R, SIMD = C fold skips when it is
    all-zero. Returns ``(b, alpha, beta)`` like :func:`closed_form_alpha_beta`
    with one row (alpha, beta of shape (1, 1)); ``k = round(ec * n_blocks)``
    whole blocks are at beta (kept in [1, n_blocks - 1]), so the share of ones
    is EC to block granularity.

    Derivation. Let the ``n`` weights fall into ``n_blocks`` blocks of ``m =
    R C`` weights with sums :math:`s_j`, and let ``B`` be a union of ``k``
    blocks, so :math:`|B| = K = k m` is fixed by the EC. As in the
    element-wise case the optimal levels for a fixed ``B`` are the two means
    and the error is

    .. math:: E(B) = \sum_i w_i^2 - \frac{(S - S_B)^2}{n - K} - \frac{S_B^2}{K},
              \qquad S = \sum_i w_i,\; S_B = \sum_{j \in B} s_j .

    ``E`` depends on ``B`` only through the scalar ``S_B`` and is a concave
    function of it (minus a convex quadratic), so its minimum over the
    achievable values of ``S_B`` lies at one of the two extremes: ``B`` = the
    ``k`` blocks with the largest sums, or the ``k`` with the smallest. We
    evaluate both and keep the smaller error: the exact least-squares optimum
    over block-constant masks, found by ranking block sums. With 1 x 1 blocks
    this is the element-wise closed form. ``alpha_zero=True`` ({0, beta}):
    :math:`E = \sum w^2 - S_B^2 / K`, again extreme in ``S_B``, so the side
    with the larger :math:`|S_B|`, and :math:`\beta = S_B / K`.

    ``both_sides=False`` keeps only the top side (b = 1 on the largest sums),
    the optimum among those masks. Training uses it: block sums are much more
    symmetric than single weights, so the better side switches between steps
    and each switch replaces the whole mask (TFC on Fashion-MNIST, EC 0.1,
    4x4 blocks, 3 epochs on 10k images: 34 % test accuracy with both sides,
    53 % top only; 1x1 blocks: 65 % and 68 %).
    """
    if not 0.0 < ec < 1.0:
        raise ValueError(f"expected connections must be in (0, 1), got {ec}")
    scores = block_sums(w, block)
    grid = scores.shape
    scores = scores.reshape(1, -1)
    k = ec_to_k(ec, scores.shape[1])
    n = w.numel()
    chosen, alpha, beta = _best_side(scores, k, n, k * block[0] * block[1], w.sum().reshape(1, 1), alpha_zero,
                                       both_sides)
    return expand_blocks(chosen.reshape(grid), block, w.shape), alpha, beta


def expand_to(v: Tensor, w: Tensor) -> Tensor:
    """Broadcast a (rows, 1) per-row value over a weight tensor of any rank."""
    return v.reshape(v.shape[0], *([1] * (w.dim() - 1)))
