"""Seconds per training epoch, SFC (256x3) on full Fashion-MNIST, side by side for each sweep scheme.

Each row trains exactly what ``sbnn sweep`` trains for that scheme (sweep.run_config) at EC 0.1,
for a few epochs, one after the other in one process.

Run: .venv/bin/python bench/train_speed.py [--epochs N]
Prints one row per domain and writes bench/results/train_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from sbnn.training.config import TrainConfig
from sbnn.training.sweep import BASELINE, SCHEMES, run_config
from sbnn.training.trainer import train

EC = 0.1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_speed.json"))
    args = ap.parse_args()
    rows = []
    load_start = round(os.getloadavg()[0], 2)
    print(f"{'scheme':22s} {'s/epoch':>8s} {'test acc':>9s}   ({args.epochs} epochs, torch threads {torch.get_num_threads()})")
    base = TrainConfig(dataset="fashion-mnist", model="sfc", epochs=args.epochs)
    for scheme in (BASELINE, *SCHEMES):
        cfg = run_config(base, scheme, None if scheme == BASELINE else EC)
        with tempfile.TemporaryDirectory() as tmp:
            m = train(cfg, tmp, progress=False)
        rows.append({"scheme": scheme, "domain": cfg.domain, "ec": cfg.ec, "prune_target": cfg.prune_target,
                     "seconds_per_epoch": round(m["seconds_per_epoch"], 2), "test_accuracy": m["test_accuracy"],
                     "epochs": args.epochs})
        print(f"{scheme:22s} {m['seconds_per_epoch']:8.2f} {m['test_accuracy']:9.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpu_count": torch.get_num_threads(), "python": platform.python_version(),
                                           "torch": torch.__version__},
                               # these machines are shared: the load says how far to trust the figures
                               "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
