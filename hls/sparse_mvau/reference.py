"""Bit-true Python reference model of the sparse XNOR-popcount MVAU.

This file *is* the specification of ``SparseXnorMVAU``: the FINN custom op's
``execute_node``, the generated RTL and the HLS C++ twin are all tested against
:func:`sparse_mvau_reference`.

Arithmetic (docs/DESIGN.md, "The arithmetic"). Activations are bipolar,
``x_i = 2 a_i - 1`` with bits ``a_i``; weights are ``w = alpha + (beta - alpha) b``
with mask bits ``b``. With ``alpha / (beta - alpha) = R / 2**k`` fixed exactly,

    y_j * 2**k / (beta - alpha) = 2**k (2 S_j - c_j) + R_j (2 P - MW)      (*)

where ``S_j = popc(a & b_j)`` (only the b = 1 positions: cost ~ nnz),
``P = popc(a)`` (one popcount shared by all neurons) and ``c_j = popc(b_j)``.
The hardware keeps only the data-dependent part,

    acc_j = 2**k * S_j + R_j * P

and folds every constant of (*) plus batch norm, scale, bias and the sign into
one integer threshold ``T_j`` and an inversion bit ``inv_j`` per neuron:

    out_j = (acc_j >= T_j) XOR inv_j                         (thresholded)

``inv_j = 1`` encodes a negative batch-norm gain (``acc <= t`` is
``not (acc >= floor(t) + 1)``). Layers without activation (the classifier)
output the full signed value of (*):

    out_j = 2 * acc_j - (2**k * c_j + R_j * MW)              (noActivation)

Special cases, all one op: +-1 weights are alpha = -beta, i.e. R = -1, k = 1
(dense mask allowed); {0, beta} is R = 0 (no shared term at all).

Tensor layouts follow FINN's MVAU: the mask has shape (MW, MH) like FINN's
weight tensor; inputs are (..., MW) bits; thresholds (MH,), inversions (MH,),
R (MH,) are integers.
"""

from __future__ import annotations

import numpy as np


def accumulate(a_bits: np.ndarray, mask: np.ndarray, alpha_num: np.ndarray, alpha_shift: int) -> np.ndarray:
    """acc[..., j] = 2**k * popc(a & b_j) + R_j * popc(a), exact int64."""
    a = np.asarray(a_bits, dtype=np.int64)
    b = np.asarray(mask, dtype=np.int64)
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"input has {a.shape[-1]} bits per vector, mask expects MW={b.shape[0]}")
    s = a @ b  # popc(a & b_j) because both are 0/1
    p = a.sum(axis=-1, keepdims=True)
    return (s << alpha_shift) + np.asarray(alpha_num, dtype=np.int64) * p


def sparse_mvau_reference(
    a_bits: np.ndarray,
    mask: np.ndarray,
    alpha_num: np.ndarray,
    alpha_shift: int,
    thresholds: np.ndarray | None = None,
    invert: np.ndarray | None = None,
) -> np.ndarray:
    """Outputs of one sparse MVAU for input bit vectors ``a_bits[..., MW]``.

    With ``thresholds`` given: output bits (0/1, int64) per neuron.
    Without: the signed integer of equation (*) (``noActivation``).
    """
    mask = np.asarray(mask, dtype=np.int64)
    mw, mh = mask.shape
    alpha_num = np.broadcast_to(np.asarray(alpha_num, dtype=np.int64), (mh,))
    acc = accumulate(a_bits, mask, alpha_num, alpha_shift)
    if thresholds is None:
        const = (mask.sum(axis=0) << alpha_shift) + alpha_num * mw
        return 2 * acc - const
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.int64), (mh,))
    inv = np.zeros(mh, dtype=np.int64) if invert is None else np.broadcast_to(np.asarray(invert, dtype=np.int64), (mh,))
    return (acc >= t).astype(np.int64) ^ inv


def acc_range(mask: np.ndarray, alpha_num: np.ndarray, alpha_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron (min, max) of acc over all inputs: sizes accumulators and clips thresholds."""
    mask = np.asarray(mask, dtype=np.int64)
    mw, mh = mask.shape
    r = np.broadcast_to(np.asarray(alpha_num, dtype=np.int64), (mh,))
    c = mask.sum(axis=0)
    # acc = 2**k S + R P with 0 <= S <= c and S <= P <= MW - c + S.
    lo_pos = np.zeros(mh, dtype=np.int64)              # R >= 0: a = 0
    hi_pos = (c << alpha_shift) + r * mw               # R >= 0: a = 1
    # R < 0: max at a = b (S = c, P = c), min at a = ~b (S = 0, P = MW - c).
    hi_neg = (c << alpha_shift) + r * c
    lo_neg = r * (mw - c)
    # R < 0 with |R| > 2**k: a = 1 gives (2**k + R) c + R (MW - c), lower still.
    lo_neg = np.minimum(lo_neg, (c << alpha_shift) + r * mw)
    lo = np.where(r >= 0, lo_pos, lo_neg)
    hi = np.where(r >= 0, hi_pos, np.maximum(hi_neg, 0))
    return lo, hi
