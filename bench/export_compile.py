"""Wall time of `sbnn export` and `sbnn compile` for SFC (784-256x3-10) and LFC (784-1024x3-10) on this machine.

Run:  .venv/bin/python bench/export_compile.py [--ckpt-dir DIR]
Uses DIR/{sfc,lfc}_alpha-beta/checkpoint.pt when present, otherwise trains them for one
epoch on 5,000 images (this is about timing, not accuracy). Times: export (freeze +
Brevitas export_qonnx + cleanup, without the test-set evaluation), compile with the
default folding, and compile with --target-fps 100000 at 100 MHz (SetFolding over every
PE/SIMD pair). Writes bench/results/export_compile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt-dir")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "export_compile.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sbnn_bench_compile_"))
    ckdir = Path(args.ckpt_dir) if args.ckpt_dir else work
    rows = []
    for model in ("sfc", "lfc"):
        ckpt = ckdir / f"{model}_alpha-beta" / "checkpoint.pt"
        if not ckpt.is_file():
            train(TrainConfig(dataset="fashion-mnist", model=model, domain="alpha-beta", ec=0.1, epochs=1,
                              train_subset=5000), ckpt.parent, progress=False)
        onnx_path = work / f"{model}.onnx"
        t = time.perf_counter()
        export_checkpoint(ckpt, onnx_path, evaluate=False)
        t_exp = time.perf_counter() - t
        t = time.perf_counter()
        rep = compile_model(onnx_path, work / f"build_{model}")
        t_comp = time.perf_counter() - t
        t = time.perf_counter()
        rep_fps = compile_model(onnx_path, work / f"build_{model}_fps", target_fps=100000, fclk_mhz=100)
        t_fps = time.perf_counter() - t
        row = {"model": model, "export_s": round(t_exp, 2), "compile_s": round(t_comp, 2),
               "compile_target_fps_s": round(t_fps, 2), "onnx_bytes": onnx_path.stat().st_size,
               "table_default": rep["table"], "table_target_fps_100k": rep_fps["table"],
               "est_fps_target": rep_fps["est_fps"]}
        rows.append(row)
        print(f"{model}: export {t_exp:.1f} s, compile {t_comp:.1f} s, compile --target-fps 1e5 {t_fps:.1f} s")
        print(rep_fps["table"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
