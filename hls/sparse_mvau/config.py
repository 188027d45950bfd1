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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sbnn.hls.kernel import WEIGHT_MODES
from sbnn.hls.sparse_mvau.reference import acc_range, sparse_mvau_reference
from sbnn.hls.streams import pad8


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
        self.alpha_num = np.broadcast_to(np.asarray(self.alpha_num, dtype=np.int64), (mh,)).copy()
        self._lo, self._hi = acc_range(self.mask, self.alpha_num, self.alpha_shift)
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
        steps = []
        for nf in range(self.NF):
            sfs = [sf for sf in range(self.SF) if self.block(nf, sf).any()]
            steps += [(nf, sf) for sf in (sfs or [0])]
        return steps

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
        r = self.alpha_num
        lo = min(int(self._lo.min()), int((r * self.MW).min()), 0)
        hi = max(int(self._hi.max()) + 1, int((r * self.MW).max()), self.MW << self.alpha_shift)
        return signed_width(lo, hi)

    @property
    def out_range(self) -> tuple[int, int]:
        if not self.no_activation:
            return 0, 1
        return int((2 * self._lo - self.out_const).min()), int((2 * self._hi - self.out_const).max())

    @property
    def out_width(self) -> int:
        return 1 if not self.no_activation else signed_width(*self.out_range)

    @property
    def in_stream_width(self) -> int:
        return self.SIMD

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
        """Expected outputs from the bit-true reference model."""
        return sparse_mvau_reference(a_bits, self.mask, self.alpha_num, self.alpha_shift,
                                     self.thresholds, self.invert)
