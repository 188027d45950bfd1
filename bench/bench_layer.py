"""Sparse vs dense comparison of one SFC-style layer, baked and memory mode (a quick probe; not a test).

"Dense" is the classic BNN layer (+-1 weights: R = -1, k = 1, random mask with
EC = 0.5), the fair baseline: an all-ones mask (sparsity 0) would make every
neuron compute the same popcount, which Yosys shares, so it is no baseline.
"Sparse" keeps the same arithmetic with EC = ``sparse_ec``. Element sparsity
saves LUTs in baked mode; in memory mode only zero PE x SIMD blocks save
cycles, so ``block_structured=True`` prunes whole blocks of the memory-mode
layer to that EC instead (a fully unrolled baked layer is a single block).

Usage: python bench/bench_layer.py (prints one row per (mode, dense|sparse)). The full study, with
FINN's dense datapath as the baseline, is rtl_sparse_vs_dense.py; run_all.py does not run this probe.
"""

from __future__ import annotations

import time

import numpy as np

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlsim import simulate
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats


def layer_mask(mw: int, mh: int, ec: float, pe: int, simd: int, block_structured: bool,
               rng: np.random.Generator) -> np.ndarray:
    if block_structured:
        keep = rng.random((mw // simd, mh // pe)) < ec
        return np.kron(keep, np.ones((simd, pe))).astype(np.int64) * (rng.random((mw, mh)) < 0.5)
    return (rng.random((mw, mh)) < ec).astype(np.int64)


def compare_sparse_dense(mw: int = 256, mh: int = 256, sparse_ec: float = 0.1, memory_pe: int = 16,
                         memory_simd: int = 32, frames: int = 2000, block_structured: bool = False,
                         family: str = "xc7", seed: int = 0, build_dir=None, cache_dir=None) -> dict:
    """{(mode, "dense"|"sparse"): {LUT, FF, BRAM18, DSP, CARRY4, lut_model, cycles_per_frame,
    cycles_model, latency, sim_cycles_per_s, synth_s, sim_s}} for baked (fully unrolled)
    and memory (PE=memory_pe, SIMD=memory_simd) modes."""
    out = {}
    for mode, pe, simd in (("baked", mh, mw), ("memory", memory_pe, memory_simd)):
        for kind, ec in (("dense", 0.5), ("sparse", sparse_ec)):
            rng = np.random.default_rng(seed)
            mask = layer_mask(mw, mh, ec, pe, simd, block_structured and kind == "sparse" and mode == "memory", rng)
            cfg = SparseMVAUConfig(mw, mh, pe, simd, 1, mask, -1, thresholds=mask.sum(axis=0) - mw // 2,
                                   weight_mode=mode, name=f"sfc_{mode}_{kind}")
            t0 = time.time()
            stats = {k: v for k, v in node_stats(cfg, family, cache_dir).items() if k != "cells"}
            t1 = time.time()
            x = rng.integers(0, 2, (frames, mw))
            res = simulate(cfg, x, build_dir=build_dir)
            t2 = time.time()
            if not np.array_equal(res.outputs, cfg.reference(x)):
                raise AssertionError(f"{mode}/{kind}: rtlsim disagrees with the reference")
            out[(mode, kind)] = {**stats, "lut_model": round(estimates.lut_estimate(cfg)),
                                 "cycles_per_frame": res.cycles_per_frame,
                                 "cycles_model": estimates.cycles_per_frame(cfg), "latency": res.latency,
                                 "sim_cycles_per_s": res.sim_cycles_per_s, "synth_s": t1 - t0, "sim_s": t2 - t1,
                                 "nnz": int(mask.sum()), "bram18_model": estimates.bram18_estimate(cfg)}
    return out


if __name__ == "__main__":
    for key, row in compare_sparse_dense().items():
        print(key, row)
