"""Block-structured vs element-wise {alpha, beta} masks: accuracy and memory-mode cycles/frame, measured in rtlsim.

Why. A folded sparse MVAU in memory weight mode spends one cycle per PE x SIMD
block that holds any b = 1 bit, so an element-wise mask at EC 0.1 saves few
cycles: a 4 x 4 block is all-zero with probability 0.9^16 = 0.19. A
block-structured mask (``sbnn train --block RxC``) zeroes whole blocks; at a
fold with PE = R, SIMD = C the cycles fall with EC. This bench measures both
and what the block constraint costs in accuracy.

Flow, per EC and mask kind (element-wise, block): train TFC (784-64-64-64-10,
dense +-1 classifier) on Fashion-MNIST with the same schedule (EC ramps from
0.5 over the first half of training), export, compile with every sparse MVAU in
memory mode at the same fold (PE = R, SIMD = C of the block for the three
hidden layers), stitch, rtlsim the first N test images against FINN's
HW-graph execution. Recorded: PyTorch test accuracy (whole test set, before
and after export's freezing), rtlsim accuracy on the N frames and the
bit-exact flag, measured steady-state cycles/frame, per layer the element and
block sparsity of the compiled mask at its fold, modelled cycles and the
weight-ROM BRAM18 count (``hls/sparse_mvau/estimates.py``).

    .venv/bin/python bench/block_sparsity.py            # about 20 minutes on a loaded 2-core machine

Writes bench/results/block_sparsity.json and .md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.flow.sim import run_sim
from sbnn.hls.sparse_mvau.estimates import cycles_per_frame_of, memory_bram18
from sbnn.training.blocks import parse_block
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import METRICS, train

RESULTS = Path(__file__).parent / "results"
TFC_LAYERS = ((784, 64), (64, 64), (64, 64), (64, 10))   # (MW inputs, MH neurons) per MVAU


def folding(block: tuple[int, int]) -> dict:
    """Memory mode everywhere; the sparse layers at PE x SIMD = the block; the classifier and input fast."""
    r, c = block
    fold = {"Defaults": {"weight_mode": "memory"}, "Thresholding_rtl_0": {"PE": 16}}
    for i, (mw, mh) in enumerate(TFC_LAYERS[:-1]):
        fold[f"SparseXnorMVAU_{i}"] = {"PE": r, "SIMD": c, "weight_mode": "memory"}
    mw, mh = TFC_LAYERS[-1]
    fold[f"SparseXnorMVAU_{len(TFC_LAYERS) - 1}"] = {"PE": mh, "SIMD": 16, "weight_mode": "memory"}
    return fold


def train_or_reuse(cfg: TrainConfig, out: Path) -> dict:
    """A finished run with the same config in ``out`` is reused (the bench can be resumed)."""
    m = out / METRICS
    if m.is_file():
        metrics = json.loads(m.read_text())
        if not cfg.differences(metrics["config"]):
            return metrics
        raise SystemExit(f"{out} holds a run with other settings; pass another --work")
    return train(cfg, out, progress=False)


def layer_figures(hw_graph: Path) -> list[dict]:
    """Per sparse MVAU of the compiled graph: its real mask's sparsity, block sparsity at its fold, cycles, BRAM."""
    rows = []
    for node in ModelWrapper(str(hw_graph)).graph.node:
        if node.op_type != "SparseXnorMVAU":
            continue
        inst = getCustomOp(node)
        cfg = inst.get_config()
        mask = np.asarray(inst.get_mask())
        mw, mh = mask.shape
        pe, simd = cfg.PE, cfg.SIMD
        nz = mask.reshape(mw // simd, simd, mh // pe, pe).any(axis=(1, 3))
        rows.append({"name": node.name, "MW": mw, "MH": mh, "PE": pe, "SIMD": simd,
                     "element_sparsity": round(1 - float(mask.mean()), 4),
                     "block_sparsity": round(1 - float(nz.mean()), 4),
                     "model_cycles": int(cycles_per_frame_of(mask, pe, simd)), "bram18": int(memory_bram18(cfg))})
    return rows


def run_point(work: Path, ec: float, block: tuple[int, int] | None, fold_block: tuple[int, int], args) -> dict:
    kind = "element" if block is None else "block"
    name = f"{kind}_ec{ec:g}"
    d = work / name
    t0 = time.perf_counter()
    cfg = TrainConfig(dataset=args.dataset, model="tfc", epochs=args.epochs, ec=ec, ec_ramp_end=0.5,
                      train_subset=args.train_subset, seed=args.seed,
                      block=None if block is None else f"{block[0]}x{block[1]}")
    metrics = train_or_reuse(cfg, d / "run")
    t_train = time.perf_counter() - t0
    exp = export_checkpoint(d / "run" / "checkpoint.pt", d / "model.qonnx.onnx")
    (d / "folding.json").write_text(json.dumps(folding(fold_block), indent=1))
    t0 = time.perf_counter()
    compile_model(d / "model.qonnx.onnx", d / "build", folding=d / "folding.json", weight_mode="memory")
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim = run_sim(d / "build", args.frames, stitch_dir=d / "stitched", out_json=d / "sim.json")
    t_sim = time.perf_counter() - t0
    layers = layer_figures(d / "build" / "hw_graph.onnx")
    sparse = layers[:-1]   # the classifier is dense +-1
    weights = sum(r["MW"] * r["MH"] for r in sparse)
    return {
        "ec": ec, "kind": kind, "block": cfg.block, "fold": f"{fold_block[0]}x{fold_block[1]}",
        "torch_test_accuracy": metrics["test_accuracy"], "test_samples": metrics["test_samples"],
        "accuracy_after_freeze": exp["accuracy_after_freeze"],
        "rtlsim_frames": sim["frames"], "rtlsim_accuracy": sim.get("accuracy_rtl"), "bit_exact": sim["bit_exact"],
        "rtlsim_cycles_per_frame": sim["cycles_per_frame"], "est_cycles_per_frame": sim["est_cycles_per_frame"],
        "bottleneck": sim["bottleneck"], "latency_cycles": sim["latency_cycles"],
        "element_sparsity": round(sum(r["element_sparsity"] * r["MW"] * r["MH"] for r in sparse) / weights, 4),
        "block_sparsity": round(sum(r["block_sparsity"] * r["MW"] * r["MH"] for r in sparse) / weights, 4),
        "bram18": sum(r["bram18"] for r in layers), "layers": layers,
        "times_s": {"train": round(t_train, 1), "compile": round(t_compile, 1), "sim": round(t_sim, 1)},
    }


def table(rows: list[dict]) -> str:
    head = ("EC", "mask", "block", "fold PE×SIMD", "element sparsity", "block sparsity", "rtlsim cycles/frame",
            "model cycles/frame", "BRAM18", "bit-exact", "torch acc", "rtlsim acc")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append(f"| {r['ec']:g} | {r['kind']} | {r['block'] or '–'} | {r['fold']} | {r['element_sparsity']:.3f} | "
                   f"{r['block_sparsity']:.3f} | {r['rtlsim_cycles_per_frame']:.1f} | {r['est_cycles_per_frame']} | "
                   f"{r['bram18']} | {'yes' if r['bit_exact'] else 'NO'} | {r['torch_test_accuracy']:.4f} | "
                   f"{r['rtlsim_accuracy']:.4f} |")
    return "\n".join(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", default="4x4", help="block shape RxC, also the fold PE x SIMD (default 4x4)")
    ap.add_argument("--ecs", default="0.5,0.25,0.1,0.05")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-subset", type=int, help="first N training images (default: all)")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--frames", type=int, default=1000, help="test frames in rtlsim (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="work directory (default: a temporary one); finished runs in it are reused")
    ap.add_argument("--out", default=str(RESULTS / "block_sparsity.json"))
    args = ap.parse_args(argv)
    block = parse_block(args.block)
    ecs = [float(v) for v in args.ecs.split(",") if v.strip()]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sbnn_blocks_"))
    rows = []
    for ec in ecs:
        for kind_block in (None, block):
            rows.append(run_point(work, ec, kind_block, block, args))
            r = rows[-1]
            print(f"EC {ec:g} {r['kind']}: {r['rtlsim_cycles_per_frame']:.1f} cycles/frame, bit-exact "
                  f"{r['bit_exact']}, acc {r['torch_test_accuracy']:.4f} (rtlsim {r['rtlsim_accuracy']:.4f}), "
                  f"times {r['times_s']}", flush=True)
    md = table(rows)
    print(md)
    out = {"network": "TFC 784-64-64-64-10, dense +-1 classifier", "dataset": args.dataset,
           "epochs": args.epochs, "train_subset": args.train_subset, "block": args.block, "frames": args.frames,
           "folding": folding(block), "points": rows}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    path.with_suffix(".md").write_text(
        f"# Block-structured vs element-wise masks (TFC, {args.dataset}, {args.epochs} epochs, "
        f"memory weight mode)\n\nWritten by `bench/block_sparsity.py`; rtlsim on the first {args.frames} test "
        f"images, torch accuracy on the whole test set. Sparse layers folded at PE×SIMD = {args.block}, "
        "the dense classifier at PE 10, SIMD 16, input thresholds at PE 16.\n\n" + md + "\n")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return out


if __name__ == "__main__":
    main()
