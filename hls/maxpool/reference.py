"""Executable spec of ``BinaryMaxPool``: max-pool over activation bits, NHWC.

Bipolar activations x = 2a - 1 are carried as bits a (BINARY, bit 1 = +1), and
max over bipolar values is the OR of their bits. Windows are ``kh x kw`` with
stride = kernel, no padding, ceil_mode 0: output pixel (oy, ox) is the max over
input rows ``oy*kh .. oy*kh+kh-1`` and columns ``ox*kw .. ox*kw+kw-1``; rows and
columns beyond ``floor(H/kh)*kh`` / ``floor(W/kw)*kw`` are dropped.
"""

from __future__ import annotations

import numpy as np


def pool_out_dim(size: int, k: int) -> int:
    """Output extent of one axis (stride = kernel, no padding, floor)."""
    return size // k


def binary_maxpool_reference(x: np.ndarray, pool: tuple[int, int]) -> np.ndarray:
    """``x`` (..., H, W, C) of 0/1 -> (..., H//kh, W//kw, C) int64, the max (= OR) over each window."""
    a = np.asarray(x)
    if not np.isin(a, (0, 1)).all():
        raise ValueError("BinaryMaxPool input must be activation bits 0/1 (BINARY)")
    kh, kw = (int(v) for v in pool)
    *lead, h, w, c = a.shape
    ho, wo = pool_out_dim(h, kh), pool_out_dim(w, kw)
    if ho < 1 or wo < 1:
        raise ValueError(f"BinaryMaxPool: image {h}x{w} is smaller than the {kh}x{kw} window")
    win = a[..., :ho * kh, :wo * kw, :].astype(np.int64).reshape(*lead, ho, kh, wo, kw, c)
    return win.max(axis=(-4, -2))
