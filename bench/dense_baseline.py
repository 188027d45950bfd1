"""Measure and record the dense +-1 baseline of a sparse run (training/baseline.py).

    python bench/dense_baseline.py                    # the embedded default of `sbnn build`
    python bench/dense_baseline.py runs/x/checkpoint.pt

Trains the run's dense twin (same architecture, data, schedule and seed; bipolar weights) on this machine
and writes its test accuracy into training/baselines/recorded.json, replacing an older record of the same
config. Build reports quote it from then on.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

from sbnn.flow.build import embedded_default_config
from sbnn.training.baseline import RECORDED, dense_twin, recorded_baselines
from sbnn.training.checkpoint import load_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", help="checkpoint.pt of the sparse run (default: the embedded default)")
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    if args.checkpoint:
        sparse = TrainConfig.from_dict(load_checkpoint(args.checkpoint)["config"], where=args.checkpoint)
        command = f"python bench/dense_baseline.py {args.checkpoint}"
    else:
        sparse, command = embedded_default_config(), "python bench/dense_baseline.py"
    twin = dense_twin(sparse)
    with tempfile.TemporaryDirectory() as out:
        metrics = train(twin, out, data_dir=args.data_dir, progress=sys.stderr.isatty(), device="cpu")
    record = {"config": twin.to_dict(), "test_accuracy": metrics["test_accuracy"],
              "test_samples": metrics["test_samples"], "epochs": twin.epochs,
              "recorded": datetime.date.today().isoformat(), "command": command}
    kept = [r for r in recorded_baselines() if r["config"] != record["config"]]
    RECORDED.parent.mkdir(parents=True, exist_ok=True)
    RECORDED.write_text(json.dumps([*kept, record], indent=2) + "\n")
    print(f"dense +-1 twin of {sparse.model} on {sparse.dataset}: test accuracy {metrics['test_accuracy']:.4f} "
          f"on {metrics['test_samples']} images; recorded in {RECORDED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
