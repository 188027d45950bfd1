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

Ternary layers (pruned +-1, weights {-c, 0, +c} per column): the same datapath with a sign bit per kept
weight, ``signs`` s (1: +c). With R = 0, k = 0 and

    S_j = popc(b_j & XNOR(a, s_j))     (kept weights whose sign agrees with the input)

``y_j / c_j = sum_{kept} t_i x_i = 2 S_j - c_j``: the {0, beta} formula with S redefined, so thresholds
and the noActivation output are the same expressions. Without ``signs`` every s = 1 (XNOR(a, 1) = a).
Signs need R = 0 and bit inputs.

Tensor layouts follow FINN's MVAU: the mask has shape (MW, MH) like FINN's
weight tensor; inputs are (..., MW) bits; thresholds (MH,), inversions (MH,),
R (MH,) are integers.

Integer-input mode (the first layer, which sees 8-bit pixels): inputs are the
integers x_i themselves (signed or unsigned, ``input_range``), and with
``w_ij = u_j + d_j b_ij``, ``R_j / 2**k = u_j / d_j``:

    acc_j = 2**k * S_j + R_j * X,   S_j = sum_{b_ij=1} x_i,   X = sum_i x_i

so ``y_j = (d_j / 2**k) * acc_j`` exactly. Thresholded layers output
``(acc_j >= T_j) xor inv_j`` as above; noActivation layers output ``acc_j``
itself (no bipolar constant to remove).
"""

from __future__ import annotations

import numpy as np


def input_range(bits: int, signed: bool) -> tuple[int, int]:
    """(min, max) of a ``bits``-wide input element: two's complement if signed, else unsigned."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_signs(signs: np.ndarray | None, mask: np.ndarray, alpha_num: np.ndarray) -> np.ndarray | None:
    """``signs`` as a 0/1 int64 (MW, MH) array (None stays None); ValueError when it cannot be a ternary layer's."""
    if signs is None:
        return None
    s = np.asarray(signs, dtype=np.int64)
    if s.shape != np.shape(mask) or not np.isin(s, (0, 1)).all():
        raise ValueError(f"signs must be a 0/1 array of the mask's shape {np.shape(mask)}, got {s.shape}")
    if np.any(np.asarray(alpha_num) != 0):
        raise ValueError("signs (a ternary layer) need R = 0 for every neuron")
    return s


def accumulate(a_bits: np.ndarray, mask: np.ndarray, alpha_num: np.ndarray, alpha_shift: int,
               signs: np.ndarray | None = None) -> np.ndarray:
    """acc[..., j] = 2**k * popc(a & b_j) + R_j * popc(a), exact int64.

    The same formula with integer inputs: acc = 2**k * S_j + R_j * X (S_j, X sums instead of popcounts).
    With ``signs`` (ternary, bit inputs): S_j = popc(b_j & XNOR(a, s_j)).
    """
    a = np.asarray(a_bits, dtype=np.int64)
    b = np.asarray(mask, dtype=np.int64)
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"input has {a.shape[-1]} bits per vector, mask expects MW={b.shape[0]}")
    if signs is not None:   # XNOR(a, s) = a where s = 1, 1 - a where s = 0
        sg = np.asarray(signs, dtype=np.int64)
        s = a @ (b * (2 * sg - 1)) + (b * (1 - sg)).sum(axis=0)
        return (s << alpha_shift) + np.asarray(alpha_num, dtype=np.int64) * a.sum(axis=-1, keepdims=True)
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
    *,
    integer_input: bool = False,
    signs: np.ndarray | None = None,
) -> np.ndarray:
    """Outputs of one sparse MVAU for input bit vectors ``a_bits[..., MW]``.

    With ``thresholds`` given: output bits (0/1, int64) per neuron.
    Without: the signed integer of equation (*) (``noActivation``).
    ``integer_input=True``: the inputs are integers x_i (any range, see
    ``input_range``), acc = 2**k S + R X, and noActivation outputs acc.
    ``signs``: a ternary layer's sign bits (module docstring; bit inputs only).
    """
    mask = np.asarray(mask, dtype=np.int64)
    mw, mh = mask.shape
    alpha_num = np.broadcast_to(np.asarray(alpha_num, dtype=np.int64), (mh,))
    signs = check_signs(signs, mask, alpha_num)
    if signs is not None and integer_input:
        raise ValueError("signs (a ternary layer) need bit inputs, not integer_input")
    acc = accumulate(a_bits, mask, alpha_num, alpha_shift, signs)
    if thresholds is None:
        if integer_input:
            return acc
        const = (mask.sum(axis=0) << alpha_shift) + alpha_num * mw
        return 2 * acc - const
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.int64), (mh,))
    inv = np.zeros(mh, dtype=np.int64) if invert is None else np.broadcast_to(np.asarray(invert, dtype=np.int64), (mh,))
    return (acc >= t).astype(np.int64) ^ inv


def acc_range(mask: np.ndarray, alpha_num: np.ndarray, alpha_shift: int,
              in_range: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron (min, max) of acc over all inputs: sizes accumulators and clips thresholds.

    ``in_range=(lo, hi)``: integer inputs, every x_i anywhere in [lo, hi] (integer-input mode);
    default: input bits.
    """
    mask = np.asarray(mask, dtype=np.int64)
    mw, mh = mask.shape
    r = np.broadcast_to(np.asarray(alpha_num, dtype=np.int64), (mh,))
    if in_range is not None:
        return int_acc_range(mask, r, alpha_shift, in_range)
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


def int_acc_range(mask: np.ndarray, alpha_num: np.ndarray, alpha_shift: int,
                  in_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of acc_j = sum_i (2**k b_ij + R_j) x_i over the box x_i in [lo, hi].

    acc is linear in x with coefficient 2**k + R_j on the c_j kept inputs and R_j
    on the others, so each extreme takes every x_i at lo or hi by the sign of its
    coefficient (exact for any sign of R and of the inputs).
    """
    lo, hi = (int(v) for v in in_range)
    if lo > hi:
        raise ValueError(f"input range ({lo}, {hi}) is empty")
    mask = np.asarray(mask, dtype=np.int64)
    mw, mh = mask.shape
    r = np.broadcast_to(np.asarray(alpha_num, dtype=np.int64), (mh,))
    c = mask.sum(axis=0)
    kept, other = (1 << alpha_shift) + r, r      # coefficients of x_i with b_ij = 1 and b_ij = 0
    acc_lo = c * np.minimum(kept * lo, kept * hi) + (mw - c) * np.minimum(other * lo, other * hi)
    acc_hi = c * np.maximum(kept * lo, kept * hi) + (mw - c) * np.maximum(other * lo, other * hi)
    return acc_lo, acc_hi
