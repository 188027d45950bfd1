"""Seconds per training epoch, SFC (256x3) on full Fashion-MNIST, side by side for each weight domain.

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
from sbnn.training.trainer import train

DOMAINS = [("bipolar", None), ("alpha-beta", 0.1), ("zero-beta", 0.1), ("alpha-beta-learned", 0.1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_speed.json"))
    args = ap.parse_args()
    rows = []
    load_start = round(os.getloadavg()[0], 2)
    print(f"{'domain':22s} {'s/epoch':>8s} {'test acc':>9s}   ({args.epochs} epochs, torch threads {torch.get_num_threads()})")
    for kind, ec in DOMAINS:
        cfg = TrainConfig(dataset="fashion-mnist", model="sfc", domain=kind, ec=ec, epochs=args.epochs,
                          gamma=0.04 if kind == "alpha-beta-learned" else 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            m = train(cfg, tmp, progress=False)
        rows.append({"domain": kind, "ec": ec, "seconds_per_epoch": round(m["seconds_per_epoch"], 2),
                     "test_accuracy": m["test_accuracy"], "epochs": args.epochs})
        print(f"{kind:22s} {m['seconds_per_epoch']:8.2f} {m['test_accuracy']:9.4f}")
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
