"""Folding choices of one sparse MVAU: every (weight mode, PE, SIMD) with its modelled cycles and cost.

The folder (``export/folding.py``) asks each node for the cheapest option that meets a cycle target. Cost
is one number so that LUTs and BRAM compare: ``LUT + lut_per_bram18 * BRAM18``, where ``lut_per_bram18`` is
the part's LUT count over its RAMB18 count (190 on an xc7z020): a design that fills the part's BRAM is as
"full" as one that fills its LUTs. Ties go to the smaller PE x SIMD (narrower streams), then to the slower
fold (a faster fold than asked buys nothing, and costs registers).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sbnn.hls.kernel import divisors
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, compute_steps, cycles_per_frame_of, lut_estimate
from sbnn.hls.sparse_mvau.pipeline import baked_step_mux_deep


@dataclass(frozen=True)
class FoldOption:
    mode: str
    pe: int
    simd: int
    cycles: int        # per frame (all input vectors of the frame)
    lut: float
    bram18: int
    cost: float        # lut + lut_per_bram18 * bram18


def fold_options(cfg: SparseMVAUConfig, modes: tuple[str, ...], lut_per_bram18: float,
                 vectors: int = 1, avoid: frozenset = frozenset()) -> list[FoldOption]:
    """Every folding of ``cfg`` in each of ``modes``, with the cycle and resource models; without the folds
    named in ``avoid`` as (cfg.name, mode, PE, SIMD), unless that would leave none."""
    opts = _all_options(cfg, modes, lut_per_bram18, vectors)
    kept = [o for o in opts if (cfg.name, o.mode, o.pe, o.simd) not in avoid]
    return kept or opts


# node content -> its options: the folder's searches ask for the same nodes' options at every step, and on
# LFC's 1024 x 1024 layers one evaluation takes seconds (the memory-mode terms look at the mask per fold)
_OPTIONS: OrderedDict[bytes, list[FoldOption]] = OrderedDict()
_OPTIONS_KEPT = 64


def _content_key(cfg: SparseMVAUConfig, *args) -> bytes:
    """Everything the options depend on: the node's shape and per-neuron data (not its folding or name) and the
    LUT model's coefficients."""
    # the coefficients too: a refit in the same process (bench/cost_model_refit.py) must not see old options
    h = hashlib.sha256(repr((cfg.MW, cfg.MH, cfg.alpha_shift, cfg.no_activation, cfg.in_bits, cfg.in_signed,
                             *args, sorted((m, sorted(c.items())) for m, c in estimates.LUT_COEF.items()))).encode())
    for a in (cfg.mask, cfg.alpha_num, cfg.thresholds, cfg.invert, cfg.signs):
        arr = None if a is None else np.ascontiguousarray(a)
        h.update(b"none" if arr is None else repr((arr.shape, arr.dtype.str)).encode() + arr.tobytes())
    return h.digest()


def _all_options(cfg: SparseMVAUConfig, modes: tuple[str, ...], lut_per_bram18: float,
                 vectors: int) -> list[FoldOption]:
    key = _content_key(cfg, tuple(modes), lut_per_bram18, vectors)
    if key in _OPTIONS:
        _OPTIONS.move_to_end(key)
        return list(_OPTIONS[key])
    out = _evaluate_options(cfg, modes, lut_per_bram18, vectors)
    _OPTIONS[key] = out
    if len(_OPTIONS) > _OPTIONS_KEPT:
        _OPTIONS.popitem(last=False)
    return list(out)


def _evaluate_options(cfg: SparseMVAUConfig, modes: tuple[str, ...], lut_per_bram18: float,
                      vectors: int) -> list[FoldOption]:
    out = []
    for pe in divisors(cfg.MH):
        for simd in divisors(cfg.MW):
            cyc = cycles_per_frame_of(cfg.mask, pe, simd) * vectors
            for mode in modes:
                if mode == "memory" and compute_steps(cfg.mask, pe, simd) == 1 and len(modes) > 1:
                    continue   # a one-word ROM is a constant: the baked design, with a ROM's overhead
                c = cfg.refolded(pe, simd, mode)
                if len(modes) > 1 and baked_step_mux_deep(c):
                    continue   # likely over the clock's depth budget (pipeline.py); memory mode is not
                lut, bram = float(lut_estimate(c)), int(bram18_estimate(c))
                out.append(FoldOption(mode, pe, simd, int(cyc), lut, bram, lut + lut_per_bram18 * bram))
    return out


def pick_fold(options: list[FoldOption], target_cycles: int) -> FoldOption:
    """The cheapest option within ``target_cycles``; the fastest (then cheapest) when none is."""
    ok = [o for o in options if o.cycles <= target_cycles]
    if ok:
        return min(ok, key=lambda o: (o.cost, o.pe * o.simd, -o.cycles))
    return min(options, key=lambda o: (o.cycles, o.cost))


def min_cycles(options: list[FoldOption]) -> int:
    return int(np.min([o.cycles for o in options]))
