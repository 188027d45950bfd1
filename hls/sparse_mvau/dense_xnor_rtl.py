"""FINN-style dense binary MVAU (binaryXnorMode) in RTL: the honest dense baseline.

FINN's dense binarized MVAU computes, per neuron j, ``popc(XNOR(a, w_j))`` over
ALL MW connections (weights w in {0, 1} standing for -1/+1) and thresholds it:

    out_j = (popc(~(a ^ w_j)) >= T_j) XOR inv_j

With baked (constant) weights, XNOR with w = 1 is a wire and with w = 0 an
inverter, so every one of the MW bits enters each neuron's popcount. This
module expresses exactly that with the sparse generator's stream interface,
receiver, control and output FIFO (rtlgen._Gen, so the two are compared at the
same folding, handshake and pipeline), replacing only the datapath: the
per-step sums wire ``cbuf[i]`` (w = 1) or ``ncbuf[i] = ~cbuf[i]`` (w = 0) for
every i, and the lane compares the count with T_j at count_width + 2 bits.

``DenseXnorConfig`` is a ``SparseMVAUConfig`` with an all-ones mask and R = 0,
k = 0 (so widths, schedule, cycle model and acc range ``[0, MW]`` all apply:
popc(xnor) has the same range as S with c_j = MW) plus the weight bits; its
``reference`` is the XNOR popcount, and ``rtlgen.generate_verilog`` picks this
generator through the ``GENERATOR`` class attribute, so rtlsim.simulate and
yosys_estimate.node_stats take it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import _Gen, case_select, slit


def dense_xnor_reference(a_bits: np.ndarray, weights: np.ndarray, thresholds: np.ndarray,
                         invert: np.ndarray | None = None) -> np.ndarray:
    """out[..., j] = (popc(XNOR(a, w_j)) >= T_j) ^ inv_j with w of shape (MW, MH), 0/1 int64."""
    a = np.asarray(a_bits, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    cnt = a @ w + (1 - a) @ (1 - w)          # matches: a = w = 1 or a = w = 0
    out = (cnt >= np.asarray(thresholds, dtype=np.int64)).astype(np.int64)
    return out if invert is None else out ^ np.asarray(invert, dtype=np.int64)


class _DenseXnorGen(_Gen):
    folded_thr = False   # lanes compare the count with T_j themselves (lane_output), running sums start at 0

    def decode_prelude(self) -> list[str]:
        return ["  /* verilator lint_off UNUSEDSIGNAL */",
                f"  wire [{self.c.MW - 1}:0] ncbuf = ~cbuf;",
                "  /* verilator lint_on UNUSEDSIGNAL */"]

    def arm_terms(self, p: int, nf: int, sf: int) -> list[str]:
        """Every input bit of the step enters the count: cbuf[i] where w = 1, ~cbuf[i] where w = 0."""
        c, j = self.c, nf * self.c.PE + p
        return [f"cbuf[{i}]" if c.weights[i, j] else f"ncbuf[{i}]" for i in range(sf * c.SIMD, (sf + 1) * c.SIMD)]

    def shared_products(self) -> list[str]:
        return []   # R = 0 and the lanes compare the count with T_j directly (lane_output)

    def lane_output(self, p: int) -> list[str]:
        c, CW, sel = self.c, self.CW, self.nf_at(self.D)
        js = [nf * c.PE + p for nf in range(c.NF)]
        thr = c.clipped_thresholds          # in [0, MW + 1]: fits CW + 2 bits signed
        L = case_select(f"signed [{CW + 1}:0]", f"thr{p}", sel, [slit(int(thr[j]), CW + 2) for j in js])
        L += case_select("", f"inv{p}", sel, [f"1'b{int(c.invert[j])}" for j in js])
        L.append(f"  wire o{p} = ($signed({{2'b0, stot{p}}}) >= thr{p}) ^ inv{p};")
        return L


@dataclass
class DenseXnorConfig(SparseMVAUConfig):
    """A dense binary (XNOR) MVAU node; build it with :func:`dense_xnor_config`."""

    weights: np.ndarray | None = None
    GENERATOR: ClassVar[type] = _DenseXnorGen

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.no_activation or self.weight_mode != "baked":
            raise ValueError("DenseXnorConfig: thresholded baked layers only")
        self.weights = np.asarray(self.weights, dtype=np.int64)
        if self.weights.shape != (self.MW, self.MH) or not np.isin(self.weights, (0, 1)).all():
            raise ValueError(f"weights must be a 0/1 array of shape (MW, MH)=({self.MW}, {self.MH})")

    def reference(self, a_bits: np.ndarray) -> np.ndarray:
        return dense_xnor_reference(a_bits, self.weights, self.thresholds, self.invert)


def dense_xnor_config(weights: np.ndarray, thresholds: np.ndarray, invert: np.ndarray | None = None,
                      pe: int | None = None, simd: int | None = None, name: str = "dense_xnor") -> DenseXnorConfig:
    """Dense XNOR node for weights (MW, MH) in {0, 1}; PE/SIMD default to fully unrolled."""
    w = np.asarray(weights, dtype=np.int64)
    mw, mh = w.shape
    return DenseXnorConfig(mw, mh, pe or mh, simd or mw, 0, np.ones((mw, mh), np.int64), 0, thresholds=thresholds,
                           invert=invert, weight_mode="baked", name=name, weights=w)
