"""Bit-exactness chain on the full Fashion-MNIST test set for +-1, {0, beta} and {alpha, beta} SFC models.

For each model: export (freeze + QONNX), compile (FINN + SparseXnorMVAU), then compare
PyTorch eval predictions, qonnx execution of the QONNX model and FINN Python execution
of the compiled HW graph on all 10,000 test images, plus every SparseXnorMVAU output
against the streamlined float graph, and (for +-1) FINN's own binaryXnorMode MVAU oracle.

Run:  .venv/bin/python bench/bitexact_chain.py [--ckpt-dir DIR] [--epochs 3 --train-subset 20000]
With --ckpt-dir, DIR/sfc_<domain>/checkpoint.pt are used when present; missing ones are
trained (SFC 784-256x3-10, EC 0.1). Writes bench/results/bitexact_chain.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.export.verify import bitexact_chain, pixels_for_hw
from sbnn.hls.sparse_mvau.oracle import oracle_compare
from sbnn.training.config import TrainConfig
from sbnn.training.datasets import load_dataset
from sbnn.training.trainer import train

DOMAINS = ["bipolar", "zero-beta", "alpha-beta"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt-dir", help="directory with sfc_<domain>/checkpoint.pt (trained there if missing)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-subset", type=int, default=20000)
    ap.add_argument("--images", type=int, default=None, help="test images (default: all 10,000)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bitexact_chain.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sbnn_bitexact_"))
    ckdir = Path(args.ckpt_dir) if args.ckpt_dir else work
    results = {"machine": platform.platform(), "dataset": "fashion-mnist", "models": {}}
    for dom in DOMAINS:
        ckpt = ckdir / f"sfc_{dom}" / "checkpoint.pt"
        if not ckpt.is_file():
            cfg = TrainConfig(dataset="fashion-mnist", model="sfc", domain=dom, ec=0.1, epochs=args.epochs,
                              train_subset=args.train_subset)
            train(cfg, ckpt.parent, progress=False)
        metrics = json.loads((ckpt.parent / "metrics.json").read_text()) if (ckpt.parent / "metrics.json").is_file() else {}
        t = time.perf_counter()
        exp = export_checkpoint(ckpt, work / f"sfc_{dom}.onnx")
        t_exp = time.perf_counter() - t
        build = work / f"build_sfc_{dom}"
        t = time.perf_counter()
        comp = compile_model(work / f"sfc_{dom}.onnx", build)
        t_comp = time.perf_counter() - t
        res = bitexact_chain(ckpt, work / f"sfc_{dom}.onnx", build, n=args.images)
        entry = {
            "checkpoint_config": {k: metrics.get("config", {}).get(k) for k in
                                  ("model", "domain", "ec", "epochs", "train_subset", "dense_classifier")},
            "train_test_accuracy": metrics.get("test_accuracy"),
            "export": {k: exp[k] for k in ("accuracy_before_freeze", "accuracy_after_freeze",
                                           "predictions_changed_by_freeze", "layers")},
            "export_s": round(t_exp, 2), "compile_s": round(t_comp, 2),
            "layers_table": comp["table"], **res,
        }
        if dom == "bipolar":
            _, test_set, _ = load_dataset("fashion-mnist")
            x = test_set.tensors[0].numpy()[: args.images]
            t = time.perf_counter()
            entry["finn_binary_xnor_oracle"] = oracle_compare(build, pixels_for_hw(x, comp["input_max_value"]))
            entry["times_s"]["oracle_s"] = round(time.perf_counter() - t, 2)
        results["models"][f"sfc_{dom}"] = entry
        layer_bad = sum(la["mismatching_values"] for la in res["layers"])
        print(f"sfc {dom:10s}: {res['images']} images, mismatches torch/qonnx {res['torch_vs_qonnx_mismatches']}, "
              f"torch/hw {res['torch_vs_hw_mismatches']}, qonnx/hw {res['qonnx_vs_hw_mismatches']}, "
              f"layer values {layer_bad}; accuracy {res['accuracy_hw']:.4f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
