"""Narrow thresholding: the per-neuron compare of the generated RTL, in Python.

The node thresholds ``acc = 2**k * S + Q >= T`` with ``Q = R*P`` (shared by all
neurons with the same R) and ``S = popc(a & b_j) <= c_j`` (a few bits). Doing
that at the full accumulator width in every neuron costs an AW-bit adder and an
AW-bit comparator per neuron, although only S is per-neuron data. Split both
sides at bit k (floor division, so ``0 <= lo < 2**k`` also for negatives):

    T = 2**k * T_hi + T_lo,   Q = 2**k * Q_hi + Q_lo

    acc >= T  <=>  S + Q_hi + g >= T_hi + 1,   g = [Q_lo >= T_lo]

(2**k (S + Q_hi - T_hi) >= T_lo - Q_lo, whose right side lies in
(-2**k, 2**k): the integer S + Q_hi - T_hi must be >= 0 if Q_lo >= T_lo,
else >= 1.) With T_lo = 0, g = 1. Q_hi is shared per R and g per (R, T_lo).

Moving Q_hi to the right, ``S + g >= E`` with ``E = T_hi + 1 - Q_hi`` shared per
distinct (R, T_hi). Because ``0 <= S + g <= c_j + 1``, E may be clamped to
``[0, 2**w - 1]`` with ``2**w - 1 >= c_j + 2`` without changing the result, so
each neuron only compares w = bitlen(c_max + 2) bits (``clamp_width``).
"""

from __future__ import annotations


def split(value: int, k: int) -> tuple[int, int]:
    """(hi, lo) with value = 2**k * hi + lo and 0 <= lo < 2**k (floor division)."""
    return value >> k, value & ((1 << k) - 1)


def split_compare(s: int, q: int, t: int, k: int) -> bool:
    """[2**k * s + q >= t] computed as s + Q_hi + g >= T_hi + 1."""
    t_hi, t_lo = split(t, k)
    q_hi, q_lo = split(q, k)
    g = int(q_lo >= t_lo)
    return s + q_hi + g >= t_hi + 1


def clamp_width(c_max: int) -> int:
    """Bits w of the clamped bound E: 2**w - 1 >= c_max + 2 (so E = 2**w - 1 is never reached by S + g)."""
    return (c_max + 2).bit_length()


def clamped_bound(t_hi: int, q_hi: int, w: int) -> int:
    """E = T_hi + 1 - Q_hi clamped to [0, 2**w - 1]."""
    return min(max(t_hi + 1 - q_hi, 0), (1 << w) - 1)


def narrow_compare(s: int, q: int, t: int, k: int, w: int) -> bool:
    """[2**k * s + q >= t] as the per-neuron w-bit compare S + g >= E (needs 0 <= s <= 2**w - 3)."""
    t_hi, t_lo = split(t, k)
    q_hi, q_lo = split(q, k)
    return s + int(q_lo >= t_lo) >= clamped_bound(t_hi, q_hi, w)
