"""rtlsim speed: simulated clock cycles per second of stitched SFC and TFC designs, per Verilator option set.

Flow: train SFC (784-256-256-256-10) and TFC (784-64-64-64-10) in the {alpha, beta}
domain at EC 0.1 briefly on Fashion-MNIST (accuracy is not the point), export,
compile each at several folds (the fastest fit a plain ``sbnn compile`` gives,
memory mode at ~200 and ~400 cycles/frame, baked at the default fold and fully
unrolled), stitch, and rtlsim the test images (repeated until a run lasts
``--seconds``) through the Verilated model built with each option set of
VARIANTS. Every run is checked bit-exact against FINN's execution of the HW
graph on the same frames.

A variant is Verilator/g++ options plus the RTL text's formulation of the
sparse MVAU's step and neuron selections: ``one case`` (rtlgen today: every
lane's selections in one ``case``, verilog_text.case_select_many) or ``case
per signal`` (the generator before: one ``always @*`` per selected signal,
reproduced by stitching with case_select_many patched to emit one block per
signal). Both formulations are the same logic for synthesis; Verilator's DFG
pass turns the many small blocks into multiplexers whose arms it computes
every cycle (the profile that found it: perf, see README). ``portable popcount``:
Verilator's own popcount (bit tricks, a dozen instructions a word) instead of the
CPU's instruction (SimOptions.native_popcount, the default). ``synthesis forms``:
the model built without SBNN_RTLSIM, i.e. from the text Yosys and Vivado read
instead of the generator's simulation forms (sbnn.hls.sim_forms: the output
FIFO written at one place, baked sums as word popcounts; same beats on the
same cycles, tests/test_sim_forms.py); every other row uses the simulation forms.

Reported per design and option set: the Verilator build time (verilate + g++,
the cache is bypassed with a fresh build folder), the median over ``--reps``
interleaved runs of simulated cycles per wall-clock second of the simulation
loop (the testbench's own timer, build and stimulus packing excluded), and
cycles per CPU second of the simulator process: on a shared machine the wall
figure drops with the load while the CPU figure does not (for a single-threaded
model; a threaded one uses more CPU than wall time).

Writes bench/results/rtlsim_speed.json and rtlsim_speed.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.flow.sim import reference, stitch_into
from sbnn.hls.sparse_mvau import rtlgen
from sbnn.hls.sparse_mvau.verilog_text import case_select
from sbnn.hls.stitched_rtlsim import build_stitched, simulate_stitched
from sbnn.hls.verilator import DEFAULT_SIM, SimOptions
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

OUT = Path(__file__).parent / "results" / "rtlsim_speed.json"
SHAPES = {"sfc": (784, 256, 256, 256, 10), "tfc": (784, 64, 64, 64, 10)}
# design -> (model, compile options); "unrolled" = every layer at PE = MH, SIMD = MW (one frame per cycle)
DESIGNS = {
    "sfc_default": ("sfc", {}),
    "sfc_mem200": ("sfc", {"weight_mode": "memory", "target_fps": 5e5}),
    "sfc_mem400": ("sfc", {"weight_mode": "memory", "target_fps": 2.5e5}),
    "sfc_baked_default": ("sfc", {"weight_mode": "baked"}),
    "sfc_baked_unrolled": ("sfc", {"unrolled": True}),
    "tfc_default": ("tfc", {}),
    "tfc_mem200": ("tfc", {"weight_mode": "memory", "target_fps": 5e5}),
    "tfc_baked_unrolled": ("tfc", {"unrolled": True}),
}


@dataclass(frozen=True)
class Variant:
    sim: SimOptions
    one_case: bool = True   # the RTL formulation (module docstring)


PORTABLE = SimOptions(native_popcount=False)   # Verilator's own bit-trick popcount (the default before)
VARIANTS = {
    "case per signal portable popcount (before)": Variant(PORTABLE, one_case=False),
    "case per signal -fno-dfg": Variant(SimOptions(extra=("-fno-dfg",)), one_case=False),
    "one case portable popcount": Variant(PORTABLE),
    "one case synthesis forms": Variant(SimOptions(sim_forms=False)),   # the RTL Yosys reads, simulated
    "one case": Variant(DEFAULT_SIM),
    "one case -fno-dfg": Variant(SimOptions(extra=("-fno-dfg",))),
    "one case threads 2": Variant(SimOptions(threads=2)),
}
DEFAULT_VARIANT = Variant(DEFAULT_SIM)   # what sbnn builds: the generator's RTL, DEFAULT_SIM
MAX_FRAMES = 60000   # frames per run (the packed stimulus is built in int64: 784 x 8 bytes a frame)


def unrolled_folding(model: str) -> dict:
    dims = SHAPES[model]
    fold = {"Defaults": {"weight_mode": "baked"}, "Thresholding_rtl_0": {"PE": dims[0]},
            "LabelSelect_hls_0": {"PE": dims[-1]}}
    for i, (mw, mh) in enumerate(zip(dims[:-1], dims[1:])):
        fold[f"SparseXnorMVAU_{i}"] = {"PE": mh, "SIMD": mw}
    return fold


def trained_model(model: str, work: Path, epochs: int, subset: int) -> Path:
    run, onnx = work / f"run_{model}", work / f"{model}.onnx"
    if not (run / "metrics.json").is_file():   # reuse the run in --work
        train(TrainConfig(dataset="fashion-mnist", model=model, epochs=epochs, train_subset=subset,
                          batch_size=256, domain="alpha-beta", ec=0.1), run, progress=False)
    if not onnx.is_file():
        export_checkpoint(run / "checkpoint.pt", onnx, evaluate=False)
    return onnx


def compile_design(name: str, onnx: Path, model: str, opts: dict, work: Path) -> dict:
    opts = dict(opts)
    if opts.pop("unrolled", False):
        (work / f"{name}_folding.json").write_text(json.dumps(unrolled_folding(model)))
        opts["folding"] = work / f"{name}_folding.json"
    return compile_model(onnx, work / name, **opts)


def fold_summary(crep: dict) -> dict:
    mv = [r for r in crep["layers"] if r["op"] == "SparseXnorMVAU"]
    return {"cycles_per_frame": crep["max_cycles_per_frame"],
            "weight_modes": sorted({r["weight_mode"] for r in mv}),
            "pe_simd": [f"{r['PE']}x{r['SIMD']}" for r in mv],
            "mac_bits_per_cycle": sum(r["PE"] * r["SIMD"] for r in mv)}


def case_per_signal(sel: str, selects: list, indent: str = "  ") -> list[str]:
    """The generator's formulation before case_select_many: one case_select (one always block) per signal."""
    return [ln for d, lhs, arms in selects for ln in case_select(d, lhs, sel, arms, indent)]


def stitch_formulation(build: Path, out: Path, part: str, one_case: bool):
    """Stitch the compiled design, its sparse MVAU RTL generated in the ``one_case`` formulation or not."""
    if one_case:
        return stitch_into(build / "hw_graph.onnx", out, part, 10.0)
    with mock.patch.object(rtlgen, "case_select_many", case_per_signal):
        return stitch_into(build / "hw_graph.onnx", out, part, 10.0)


def timed_run(design, x: np.ndarray, expected: np.ndarray, build_dir: Path, sim: SimOptions) -> dict:
    """One rtlsim of ``x``; simulated cycles per wall second of the loop and per CPU second of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = simulate_stitched(design, x, build_dir=build_dir, sim=sim)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"frames": len(x), "sim_cycles": res.sim_cycles, "wall_s": res.sim_wall_s, "cpu_s": cpu,
            "cycles_per_s": res.sim_cycles_per_s, "cycles_per_cpu_s": res.sim_cycles / cpu if cpu > 0 else None,
            "bit_exact": bool(np.array_equal(res.outputs.reshape(len(x), -1), expected)),
            "cycles_per_frame": res.cycles_per_frame}


def bench_design(name: str, crep: dict, work: Path, variants: dict, args) -> dict:
    build = work / name   # compile_design's build directory
    designs = {f: stitch_formulation(build, work / f"{name}_stitched_{'one' if f else 'per'}", crep["fpga_part"], f)
               for f in sorted({v.one_case for v in variants.values()})}
    stim = reference(build / "hw_graph.onnx", build, next(iter(designs.values())), args.frames, data="test")
    x, expected = stim.x, stim.expected.reshape(len(stim.x), -1).astype(np.int64)
    builds, probes, tiles, runs = {}, {}, {}, {v: [] for v in variants}
    for vname, var in variants.items():
        design, sim = designs[var.one_case], var.sim
        t0 = time.perf_counter()
        _, build_s = build_stitched(design, work / "verilator", sim)   # a fresh folder: never cached
        builds[vname] = round(build_s or time.perf_counter() - t0, 1)
        probes[vname] = p = timed_run(design, x, expected, work / "verilator", sim)   # warm-up, calibration
        want_frames = args.seconds * p["cycles_per_s"] / (p["sim_cycles"] / len(x))
        tiles[vname] = max(1, min(math.ceil(want_frames / len(x)), MAX_FRAMES // len(x)))
        print(f"  {name} {vname}: build {builds[vname]:.0f} s, probe {p['cycles_per_s'] / 1e6:.2f} M cycles/s, "
              f"{tiles[vname]} x {len(x)} frames per run", flush=True)
    for _ in range(args.reps):   # interleaved: every option set sees the same load
        for vname, var in variants.items():
            t = tiles[vname]
            runs[vname].append(timed_run(designs[var.one_case], np.tile(x, (t, 1)), np.tile(expected, (t, 1)),
                                         work / "verilator", var.sim))
    out = {}
    for vname, rs in runs.items():
        out[vname] = {
            "build_s": builds[vname],
            "m_cycles_per_s": round(statistics.median(r["cycles_per_s"] for r in rs) / 1e6, 3),
            "m_cycles_per_cpu_s": round(statistics.median(r["cycles_per_cpu_s"] for r in rs) / 1e6, 3),
            "wall_s": round(statistics.median(r["wall_s"] for r in rs), 2),
            "bit_exact": probes[vname]["bit_exact"] and all(r["bit_exact"] for r in rs),
            "cycles_per_frame": rs[0]["cycles_per_frame"], "runs": rs}
    return out


def table(results: dict) -> str:
    """Markdown rows per design and option set; the option set that is DEFAULT_SIM is marked with *."""
    head = ("| design | cycles/frame | weights | PE x SIMD | option set | build s | M cycles/s (wall) | "
            "M cycles/CPU-s | run s | bit-exact |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, d in results.items():
        f = d["fold"]
        for vname, v in d["variants"].items():
            lines.append(f"| {name} | {f['cycles_per_frame']} | {'/'.join(f['weight_modes'])} | "
                         f"{' '.join(f['pe_simd'])} | {vname}{' *' if VARIANTS[vname] == DEFAULT_VARIANT else ''} | "
                         f"{v['build_s']:.0f} | {v['m_cycles_per_s']:.2f} | "
                         f"{v['m_cycles_per_cpu_s']:.2f} | {v['wall_s']:.1f} | {'yes' if v['bit_exact'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DESIGNS), help=f"comma-separated subset of {', '.join(DESIGNS)}")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the option sets")
    ap.add_argument("--frames", type=int, default=1000, help="distinct test images (repeated to fill --seconds)")
    ap.add_argument("--seconds", type=float, default=2.0, help="wall time a timed run aims at")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=5000)
    ap.add_argument("--work", help="work directory (default: a temporary one); its trained models are reused")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    names = [n for n in args.designs.split(",") if n]
    vnames = [v for v in args.variants.split(",") if v]
    bad = [n for n in names if n not in DESIGNS] + [v for v in vnames if v not in VARIANTS]
    if bad:
        ap.error(f"unknown design or option set: {', '.join(bad)}")
    variants = {v: VARIANTS[v] for v in vnames}
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sbnn_rtlsim_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run", dir=work))   # fresh Verilator builds: their time is measured
    load0 = os.getloadavg()
    results = {}
    for name in names:
        model, opts = DESIGNS[name]
        crep = compile_design(name, trained_model(model, work, args.epochs, args.train_subset), model, opts, run_dir)
        results[name] = {"model": model, "compile_options": {k: v for k, v in opts.items()},
                         "fold": fold_summary(crep), "variants": bench_design(name, crep, run_dir, variants, args)}
        print(table({name: results[name]}).split("\n", 2)[-1], flush=True)
    out = {"what": "simulated cycles per second of stitched designs, per Verilator/g++ option set and RTL formulation",
           "options": {v: {"opt_fast": s.sim.opt_fast, "opt_slow": s.sim.opt_slow, "threads": s.sim.threads,
                           "native_popcount": s.sim.native_popcount, "sim_forms": s.sim.sim_forms,
                           "extra": list(s.sim.extra),
                           "flags": s.sim.flags(), "one_case": s.one_case}
                       for v, s in variants.items()},
           "default": next((v for v, s in variants.items() if s == DEFAULT_VARIANT), None),
           "cpus": os.cpu_count(), "loadavg_start": load0, "loadavg_end": os.getloadavg(),
           "frames_distinct": args.frames, "seconds_target": args.seconds, "reps": args.reps, "designs": results}
    md = table(results)
    print(md)
    dest = Path(args.out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    dest.with_suffix(".md").write_text(
        f"# rtlsim speed ({os.cpu_count()} CPUs, load average {load0[0]:.1f} at start, "
        f"{out['loadavg_end'][0]:.1f} at end)\n\n{md}\n\n"
        "`*`: the default (the generator's RTL, sbnn.hls.verilator.DEFAULT_SIM). One case / case per signal: the "
        "sparse MVAU RTL's selections in one `case` (rtlgen now) or one `always @*` per signal (before; same logic "
        "for synthesis). Portable popcount: Verilator's bit-trick popcount instead of the CPU's popcount instruction "
        "(SimOptions.native_popcount). Synthesis forms: the model built from the text Yosys and Vivado read, without "
        "the rtlsim's simulation forms (sbnn.hls.sim_forms; every other row has them). g++ -O2 for the per-cycle "
        "code and -O0 for the run-once initialisation in every row. "
        "Wall: the testbench's timer around the simulation loop; CPU-s: the "
        "simulator process's CPU time (the figure an otherwise idle core gives a single-threaded model). Build: "
        "verilate + g++ in a fresh folder. Every run compared bit-exact with FINN's execution of the HW graph.\n")
    print(f"wrote {dest} and {dest.with_suffix('.md')}")
    return out


if __name__ == "__main__":
    main()
