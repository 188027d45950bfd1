"""Run every benchmark in this folder, one after the other (never in parallel: they time themselves).

Each bench prints its own table and writes bench/results/<name>.json. Rough wall times on the 2-core CI
machine: train_speed ~1-2 min, export_compile ~2 min, bitexact_chain ~10 min, rtl_tfc_unrolled ~5 min,
rtl_sparse_vs_dense 30-60 min the first time (Yosys on fully unrolled 256x256 layers; cached by RTL hash
under build/yosys afterwards), cnv_vs_finn about an hour the first time (Yosys on the full-width CNV's deep
weight ROMs; cached per layer under build/bench_cnv/yosys_cache afterwards), cost_model ~1 hour the first
time (Yosys on every layer of TFC/SFC/LFC at the folder's picks; cached under build/bench_cost), vs_finn
~25 min (trains TFC/LFC, four designs each), rtlsim_speed ~15 min, block_sparsity ~20 min.

Usage: python bench/run_all.py [--only name,name] [--skip name,name]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ("train_speed", "export_compile", "bitexact_chain", "rtl_tfc_unrolled", "rtl_sparse_vs_dense",
           "cnv_vs_finn", "cost_model", "vs_finn", "rtlsim_speed", "block_sparsity")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHES)}")
    ap.add_argument("--skip", default="", help="comma-separated benches to leave out")
    args = ap.parse_args(argv)
    only = [b for b in args.only.split(",") if b]
    skip = {b for b in args.skip.split(",") if b}
    unknown = [b for b in [*only, *skip] if b not in BENCHES]
    if unknown:
        print(f"run_all: unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in only or BENCHES:
        if name in skip:
            continue
        print(f"==== {name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py")])
        print(f"==== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.0f} s",
              flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
