"""Typed configuration of one sparse XNOR-popcount MVAU node for RTL generation.

Holds the folding (PE, SIMD), the weight mode and the per-neuron data of a
``SparseXnorMVAU`` node, validates them once, and derives every width the RTL
generator, the testbench and the estimators need, so they cannot disagree.

Widths are exact, derived from :func:`reference.acc_range`:

* ``acc_width``: signed width in which ``acc = 2**k*S + R*P`` is computed. Two's
  complement arithmetic is exact modulo ``2**acc_width``; the width covers the
  final accumulator range, the clipped thresholds and each operand
  (``S << k``, ``R*P``), so the wrapped result is the true value.
* thresholds are clipped to ``[lo_j, hi_j + 1]`` (``acc >= T`` is then the
  same predicate on every reachable ``acc``), so they fit ``acc_width``.
* ``out_width``: 1 for thresholded layers, otherwise the signed width of the
  ``noActivation`` output range.

A ternary layer (``signs``, reference.py) has R = 0 and the same widths (0 <= S <= c_j).

Input elements are bits (``in_bits = 1``, the default) or, in the
integer-input mode, ``in_bits``-wide integers (two's complement when
``in_signed``), acc = 2**k*S + R*X with sums instead of popcounts (reference.py).
Its widths, all signed: ``part_width`` (one step's sum in a lane),
``s_width`` (S_j), ``x_width`` (X); ``acc_width`` also covers ``s_width + k``
and X, so every operand of the lane adder is exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from sbnn.hls.kernel import WEIGHT_MODES
from sbnn.hls.sparse_mvau.reference import acc_range, check_signs, input_range, sparse_mvau_reference
from sbnn.hls.streams import pad8


MAX_IN_BITS = 16   # widest integer input element


def signed_width(lo: int, hi: int) -> int:
    """Smallest n with -2**(n-1) <= lo and hi <= 2**(n-1) - 1 (at least 1)."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass
class SparseMVAUConfig:
    """One node: folding, mode and per-neuron data (mask in FINN layout (MW, MH))."""

    MW: int
    MH: int
    PE: int
    SIMD: int
    alpha_shift: int
    mask: np.ndarray
    alpha_num: np.ndarray
    thresholds: np.ndarray | None = None
    invert: np.ndarray | None = None
    weight_mode: str = "baked"
    no_activation: bool = False
    name: str = "sparse_mvau"
    in_bits: int = 1
    in_signed: bool = False
    signs: np.ndarray | None = None   # ternary layers: sign bit per weight (1: +c), reference.py
    _lo: np.ndarray = field(init=False, repr=False)
    _hi: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mw, mh, pe, simd = self.MW, self.MH, self.PE, self.SIMD
        if min(mw, mh, pe, simd) < 1:
            raise ValueError(f"MW={mw}, MH={mh}, PE={pe}, SIMD={simd} must all be >= 1")
        if mh % pe or mw % simd:
            raise ValueError(f"bad folding: PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
        if self.weight_mode not in WEIGHT_MODES:
            raise ValueError(f"weight_mode={self.weight_mode!r}, expected one of {WEIGHT_MODES}")
        if self.alpha_shift < 0:
            raise ValueError(f"alpha_shift={self.alpha_shift} must be >= 0")
        self.mask = np.asarray(self.mask, dtype=np.int64)
        if self.mask.shape != (mw, mh) or not np.isin(self.mask, (0, 1)).all():
            raise ValueError(f"mask must be a 0/1 array of shape (MW, MH)=({mw}, {mh}), got {self.mask.shape}")
        if not (self.in_bits == 1 and not self.in_signed) and not 2 <= self.in_bits <= MAX_IN_BITS:
            raise ValueError(f"in_bits={self.in_bits}, in_signed={self.in_signed}: inputs are bits (in_bits=1, "
                             f"unsigned) or integers of 2..{MAX_IN_BITS} bits")
        self.alpha_num = np.broadcast_to(np.asarray(self.alpha_num, dtype=np.int64), (mh,)).copy()
        self.signs = check_signs(self.signs, self.mask, self.alpha_num)
        if self.signs is not None and self.integer_input:
            raise ValueError("signs (a ternary layer) need bit inputs; integer-input ternary layers are not supported")
        rng = self.in_range if self.integer_input else None
        self._lo, self._hi = acc_range(self.mask, self.alpha_num, self.alpha_shift, rng)
        if self.no_activation:
            self.thresholds = None
            self.invert = None
        else:
            if self.thresholds is None:
                raise ValueError("thresholds are required unless no_activation=True")
            self.thresholds = np.broadcast_to(np.asarray(self.thresholds, dtype=np.int64), (mh,)).copy()
            inv = np.zeros(mh) if self.invert is None else self.invert
            self.invert = np.broadcast_to(np.asarray(inv, dtype=np.int64), (mh,)).copy()
            if not np.isin(self.invert, (0, 1)).all():
                raise ValueError("invert must hold 0/1 values")
        if not self.name.isidentifier():
            raise ValueError(f"module name {self.name!r} is not a Verilog identifier")

    # ---- folding -------------------------------------------------------
    def refolded(self, pe: int, simd: int, weight_mode: str | None = None) -> SparseMVAUConfig:
        """The same node at another folding (and weight mode): what the folder and the cost model compare.

        A shallow copy: the mask and the accumulator range do not depend on the folding (and stay shared)."""
        mode = weight_mode or self.weight_mode
        if pe < 1 or simd < 1 or self.MH % pe or self.MW % simd or mode not in WEIGHT_MODES:
            raise ValueError(f"bad folding: PE={pe} must divide MH={self.MH}, SIMD={simd} must divide "
                             f"MW={self.MW}, weight_mode={mode!r} one of {WEIGHT_MODES}")
        new = copy.copy(self)
        new.PE, new.SIMD, new.weight_mode = pe, simd, mode
        return new

    @property
    def SF(self) -> int:
        """Synapse folds: input beats per vector."""
        return self.MW // self.SIMD

    @property
    def NF(self) -> int:
        """Neuron folds: output beats per vector."""
        return self.MH // self.PE

    def block(self, nf: int, sf: int) -> np.ndarray:
        """Mask block (SIMD, PE) used by neuron fold nf at synapse fold sf."""
        s, p = self.SIMD, self.PE
        return self.mask[sf * s:(sf + 1) * s, nf * p:(nf + 1) * p]

    def schedule(self) -> list[tuple[int, int]]:
        """Visited (nf, sf) steps: non-zero blocks only, at least one per neuron fold.

        Both weight modes follow this schedule, so compute cycles per frame scale
        with the number of non-zero PE x SIMD blocks. A neuron fold whose blocks
        are all zero still needs one (empty) step to emit its output beat.
        """
        nz = np.asarray(self.mask).reshape(self.SF, self.SIMD, self.NF, self.PE).any(axis=(1, 3))   # (SF, NF)
        steps = []
        for nf in range(self.NF):
            sfs = np.flatnonzero(nz[:, nf]).tolist()
            steps += [(nf, sf) for sf in (sfs or [0])]
        return steps

    # ---- input elements ------------------------------------------------
    @property
    def integer_input(self) -> bool:
        """Integer-input mode: in_bits-wide integer elements instead of bits."""
        return self.in_bits > 1

    @property
    def in_range(self) -> tuple[int, int]:
        return input_range(self.in_bits, self.in_signed)

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        """x as int64 (..., MW); ValueError unless every element is an integer in ``in_range``."""
        a = np.asarray(x)
        if a.shape[-1:] != (self.MW,):
            raise ValueError(f"{self.name}: inputs must have shape (..., MW={self.MW}), got {a.shape}")
        v = a.astype(np.int64)
        lo, hi = self.in_range
        if not np.array_equal(v, a) or (v.size and (v.min() < lo or v.max() > hi)):
            kind = f"{self.in_bits}-bit {'signed' if self.in_signed else 'unsigned'}" if self.integer_input else "bits"
            raise ValueError(f"{self.name}: inputs must be integers in [{lo}, {hi}] ({kind})")
        return v

    def sum_width(self, n: int) -> int:
        """Signed width of a sum of n input elements (integer-input mode)."""
        lo, hi = self.in_range
        return signed_width(n * lo, n * hi)

    @property
    def part_width(self) -> int:
        """One step's sum in a lane: at most min(SIMD, c_max) elements (at least one element's width)."""
        return self.sum_width(max(1, min(self.SIMD, int(self.c.max()))))

    @property
    def s_width(self) -> int:
        """S_j: at most c_max elements (at least one element's width)."""
        return self.sum_width(max(1, int(self.c.max())))

    @property
    def x_width(self) -> int:
        return self.sum_width(self.MW)

    # ---- widths --------------------------------------------------------
    @property
    def count_width(self) -> int:
        """Unsigned width of S and P (0..MW)."""
        return self.MW.bit_length()

    @property
    def c(self) -> np.ndarray:
        """Per-neuron mask popcount c_j."""
        return self.mask.sum(axis=0)

    @property
    def clipped_thresholds(self) -> np.ndarray:
        return np.clip(self.thresholds, self._lo, self._hi + 1)

    @property
    def out_const(self) -> np.ndarray:
        """noActivation constant 2**k*c_j + R_j*MW."""
        return (self.c << self.alpha_shift) + self.alpha_num * self.MW

    @property
    def acc_width(self) -> int:
        if self.integer_input:
            return self._int_acc_width()
        r = self.alpha_num
        lo = min(int(self._lo.min()), int((r * self.MW).min()), 0)
        hi = max(int(self._hi.max()) + 1, int((r * self.MW).max()), self.MW << self.alpha_shift)
        return signed_width(lo, hi)

    def _int_acc_width(self) -> int:
        """Covers acc (and thresholds up to hi + 1), R*X for every R, S << k and X."""
        xlo, xhi = self.MW * self.in_range[0], self.MW * self.in_range[1]
        r = self.alpha_num
        lo = min(int(self._lo.min()), int(np.minimum(r * xlo, r * xhi).min()), 0)
        hi = max(int(self._hi.max()) + 1, int(np.maximum(r * xlo, r * xhi).max()))
        return max(signed_width(lo, hi), self.s_width + self.alpha_shift, self.x_width)

    @property
    def out_range(self) -> tuple[int, int]:
        if not self.no_activation:
            return 0, 1
        if self.integer_input:
            return int(self._lo.min()), int(self._hi.max())
        return int((2 * self._lo - self.out_const).min()), int((2 * self._hi - self.out_const).max())

    @property
    def out_width(self) -> int:
        return 1 if not self.no_activation else signed_width(*self.out_range)

    @property
    def in_stream_width(self) -> int:
        return self.SIMD * self.in_bits

    @property
    def out_stream_width(self) -> int:
        return self.PE * self.out_width

    @property
    def in_tdata_width(self) -> int:
        return pad8(self.in_stream_width)

    @property
    def out_tdata_width(self) -> int:
        return pad8(self.out_stream_width)

    def reference(self, a_bits: np.ndarray) -> np.ndarray:
        """Expected outputs from the bit-true reference model (bits, or integers in integer-input mode)."""
        return sparse_mvau_reference(a_bits, self.mask, self.alpha_num, self.alpha_shift,
                                     self.thresholds, self.invert, integer_input=self.integer_input,
                                     signs=self.signs)
