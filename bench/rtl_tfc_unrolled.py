"""Stretch target: a TFC-style network (784-64-64-64-10) at >= 90 % sparsity, fully
unrolled (1 frame per clock), on an xc7z020 by the Yosys estimate?

Flow: train a TFC MLP in the {alpha, beta} domain at EC = 0.1 (or --ec) briefly
on Fashion-MNIST (accuracy is not the point here), export, compile with every
layer fully unrolled (SparseXnorMVAU PE = MH, SIMD = MW, baked; input
Thresholding PE = 784; LabelSelect PE = 10), stitch, rtlsim 1,000 test images
against FINN's HW-graph execution, and estimate resources per layer (Yosys for
our layers, FINN's estimates for FINN's) against the xc7z020 (PYNQ-Z2).

Writes bench/results/rtl_tfc_unrolled.json and prints the resource table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sbnn.bitstreams.boards import DEFAULT_BOARD
from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.flow.sim import format_report, run_sim
from sbnn.hls.resources import design_resources, fit_violations, format_resources, part_limits
from sbnn.hls.stitch import load_design
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

OUT = Path(__file__).parent / "results" / "rtl_tfc_unrolled.json"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ec", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--board", default=DEFAULT_BOARD)
    ap.add_argument("--work", help="work directory (default: a temporary one)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sbnn_tfc_"))
    times = {}
    t = time.perf_counter()
    cfg = TrainConfig(dataset="fashion-mnist", model="tfc", epochs=args.epochs, train_subset=args.train_subset,
                      batch_size=256, domain="alpha-beta", ec=args.ec)
    if (work / "run" / "checkpoint.pt").is_file() and (work / "run" / "metrics.json").is_file():
        metrics = json.loads((work / "run" / "metrics.json").read_text())   # reuse the run in --work
    else:
        metrics = train(cfg, work / "run", progress=False)
    export_checkpoint(work / "run" / "checkpoint.pt", work / "tfc.onnx", evaluate=False)
    times["train_export_s"] = time.perf_counter() - t
    fold = {"Defaults": {"weight_mode": "baked"}, "Thresholding_rtl_0": {"PE": 784}, "LabelSelect_hls_0": {"PE": 10}}
    for i, (mw, mh) in enumerate(((784, 64), (64, 64), (64, 64), (64, 10))):
        fold[f"SparseXnorMVAU_{i}"] = {"PE": mh, "SIMD": mw}
    (work / "folding.json").write_text(json.dumps(fold))
    t = time.perf_counter()
    crep = compile_model(work / "tfc.onnx", work / "b", folding=work / "folding.json", quiet=True)
    times["compile_s"] = time.perf_counter() - t
    print(crep["table"])
    t = time.perf_counter()
    srep = run_sim(work / "b", args.frames, stitch_dir=work / "st", out_json=work / "sim.json")
    times["sim_total_s"] = time.perf_counter() - t
    print(format_report(srep))
    board = part_limits(args.board)
    t = time.perf_counter()
    res = design_resources(load_design(srep["stitched_dir"]), family=board.family)
    times["resources_s"] = time.perf_counter() - t
    print(format_resources(res))
    bad = fit_violations(res["total"], board.name)
    print(f"{board.part} ({board.name}): LUT {res['total']['LUT']:,} of {board.lut:,} "
          f"({100 * res['total']['LUT'] / board.lut:.1f} %), FF {res['total']['FF']:,} of {board.ff:,}: "
          + ("FITS" if not bad else "DOES NOT FIT: " + ", ".join(bad)))
    sparsity = {r["name"]: r["sparsity"] for r in crep["layers"] if r["op"] == "SparseXnorMVAU"}
    out = {"network": "TFC 784-64-64-64-10", "ec": args.ec, "layer_sparsity": sparsity,
           "test_accuracy_torch": metrics.get("test_accuracy"), "folding": fold,
           "sim": {k: srep[k] for k in ("frames", "bit_exact", "mismatching_frames", "latency_cycles",
                                        "cycles_per_frame", "est_cycles_per_frame", "sim_cycles_per_s",
                                        "verilator_build_s", "accuracy_rtl") if k in srep},
           "resources": res, "board": board.name, "part": board.part, "fits": not bad, "fit_violations": bad,
           "lut_share_of_part": res["total"]["LUT"] / board.lut,
           "times_s": {k: round(v, 1) for k, v in times.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
