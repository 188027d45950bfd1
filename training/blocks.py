"""Block-structured masks: the {alpha, beta} mask is constant on blocks that a hardware fold can skip.

Why blocks. A folded sparse MVAU in memory mode spends one cycle per PE x SIMD
weight block that holds any b = 1 bit (``hls/sparse_mvau/estimates.py``), so an
element-wise mask at EC 0.1 saves almost nothing: a 16 x 16 block is all-zero
with probability 0.9^256. Training the mask one block at a time makes whole
blocks zero, and a fold aligned to the block shape skips them.

Block shape ``"RxC"`` (``TrainConfig.block``): R consecutive output neurons x C
consecutive inputs, i.e. PE = R (or a multiple) and SIMD = C (or a multiple) in
hardware, where a layer's mask is (MW inputs, MH neurons), the transpose of
torch's (out, in). Inputs are taken in the hardware's order: for a conv weight
(out, cin, kh, kw) that is FINN's im2col order (kh, kw, cin), channels
innermost, so a block is R output channels x C input channels at one kernel
position. For a linear layer it is torch's input order, which is the
hardware's whenever the input is a flat vector or a 1 x 1 feature map (every
model of the zoo).

Ragged edges are refused: a block shape must divide every blocked layer's
(outputs, inputs), checked once when the model is built
(:func:`check_block_fits`, called by ``zoo.build_model``), because a fold must divide them too.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from sbnn.errors import UserError

Block = tuple[int, int]

_FORMAT = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_block(text: object) -> Block | None:
    """``"16x16"`` -> (16, 16) (rows = output neurons, cols = inputs); None stays None."""
    if text is None:
        return None
    m = _FORMAT.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise UserError(f"--block must be ROWSxCOLS (output neurons x inputs), e.g. 16x16, got {text!r}")
    rows, cols = int(m.group(1)), int(m.group(2))
    if rows < 1 or cols < 1:
        raise UserError(f"--block sizes must be positive, got {text!r}; e.g. 16x16")
    return rows, cols


def hw_matrix(w: Tensor) -> Tensor:
    """Weights as (out, inputs) in the hardware's input order (conv: (kh, kw, cin), channels innermost)."""
    if w.dim() == 4:
        return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
    return w.reshape(w.shape[0], -1)


def from_hw_matrix(m: Tensor, shape: torch.Size) -> Tensor:
    """Inverse of :func:`hw_matrix` for a tensor of ``shape``."""
    if len(shape) == 4:
        out, cin, kh, kw = shape
        return m.reshape(out, kh, kw, cin).permute(0, 3, 1, 2).contiguous()
    return m.reshape(shape)


def block_view(m: Tensor, block: Block) -> Tensor:
    """(out, inputs) -> (out / R, R, inputs / C, C)."""
    r, c = block
    return m.reshape(m.shape[0] // r, r, m.shape[1] // c, c)


def block_sums(w: Tensor, block: Block) -> Tensor:
    """Sum of each block, shape (out / R, inputs / C)."""
    return block_view(hw_matrix(w), block).sum(dim=(1, 3))


def expand_blocks(per_block: Tensor, block: Block, shape: torch.Size) -> Tensor:
    """A (out / R, inputs / C) tensor repeated over its blocks, back in the weight's ``shape``."""
    r, c = block
    m = per_block.repeat_interleave(r, dim=0).repeat_interleave(c, dim=1)
    return from_hw_matrix(m, shape)


def is_block_constant(b: Tensor, block: Block) -> bool:
    """True when ``b`` (a weight-shaped mask) takes one value on every block."""
    v = block_view(hw_matrix(b), block)
    return bool((v == v[:, :1, :, :1]).all())


def block_shape_problem(shape: torch.Size, block: Block) -> str | None:
    """Why ``block`` cannot tile a weight of ``shape`` (None when it can)."""
    r, c = block
    out = shape[0]
    inputs = int(torch.Size(shape[1:]).numel())
    cin = shape[1] if len(shape) == 4 else inputs
    if out % r:
        return f"{out} outputs are not a multiple of {r} block rows"
    if cin % c:
        what = "input channels" if len(shape) == 4 else "inputs"
        return f"{cin} {what} are not a multiple of {c} block columns"
    if (out // r) * (inputs // c) < 2:
        return f"one {r}x{c} block covers all {out}x{inputs} weights, so no EC below 1 is possible"
    return None


def check_block_fits(name: str, shape: torch.Size, block: Block) -> None:
    """One-line UserError when ``block`` does not tile layer ``name`` (weights of ``shape``)."""
    why = block_shape_problem(shape, block)
    if why:
        raise UserError(f"--block {block[0]}x{block[1]} does not tile layer '{name}' ({why}); choose a block "
                        "that divides every sparse layer's outputs and inputs (a fold must divide them too)")
