"""Sweep wall time with 1 worker against 2 workers, on this machine, for each executor.

The same small sweep (SFC on a Fashion-MNIST subset, the dense baseline and the four schemes at one EC, one
or more seeds) runs into fresh folders: local with --jobs 1 (whole machine for one point at a time), local
with --jobs 2 (process pool, cores split), and Ray with a local runtime of 2 CPUs (one point per CPU). The
ratio 1-worker / 2-worker time is the speed-up; the Ray figure includes starting the runtime.

Run: .venv/bin/python bench/sweep_scaling.py [--epochs N] [--train-subset N] [--seeds 0,1]
Writes bench/results/sweep_scaling.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch

from sbnn.training.config import TrainConfig
from sbnn.training.sweep import sweep
from sbnn.training.sweep_exec import ExecutorConfig

RESULTS = Path(__file__).parent / "results"
SETUPS = {"local, 1 worker": ExecutorConfig(jobs=1), "local, 2 workers": ExecutorConfig(jobs=2),
          "ray, 2 CPUs (local runtime)": ExecutorConfig(kind="ray", jobs=2)}


def timed_sweep(base: TrainConfig, ecs: list[float], seeds: list[int], ex: ExecutorConfig) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = sweep(base, ecs, tmp, progress=False, device="cpu", seeds=seeds, executor=ex)
        return time.perf_counter() - t0, sum(r["seeds"] for r in rows)


def markdown(result: dict) -> str:
    s, load = result["settings"], result["load_average_1min"]
    lines = [f"Sweep wall time, {s['runs']} runs ({s['model'].upper()}, {s['dataset']}, "
             f"{s['train_subset'] or 'all'} training samples, {s['epochs']} epoch(s), EC {s['ecs']}, "
             f"seeds {s['seeds']}), {result['machine']['cpu_count']} cores, load average "
             f"{load['start']} → {load['end']}.", "",
             "| executor | wall time (s) | speed-up vs 1 worker |", "|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['executor']} | {r['wall_s']:.1f} | {r['speedup']:.2f}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, help="first N training samples (default: all 60,000)")
    ap.add_argument("--ecs", default="0.1")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default=str(RESULTS / "sweep_scaling"), help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    ecs = [float(v) for v in args.ecs.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    base = TrainConfig(dataset="fashion-mnist", model="sfc", epochs=args.epochs, train_subset=args.train_subset)
    load_start = round(os.getloadavg()[0], 2)
    rows, runs = [], 0
    for name, ex in SETUPS.items():
        wall, runs = timed_sweep(base, ecs, seeds, ex)
        rows.append({"executor": name, "wall_s": round(wall, 2)})
        print(f"{name:30s} {wall:7.1f} s")
    for r in rows:
        r["speedup"] = round(rows[0]["wall_s"] / r["wall_s"], 2)
    result = {"machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                          "ray": ray.__version__},
              # these machines are shared: the load says how far to trust the figures
              "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
              "settings": {"dataset": base.dataset, "model": base.model, "epochs": args.epochs,
                           "train_subset": args.train_subset, "ecs": ecs, "seeds": seeds, "runs": runs},
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
