"""The ``sbnn`` command line: one entry point, one subcommand per stage.

User errors (:class:`sbnn.errors.UserError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sbnn.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"sbnn: error: {message} (see `{self.prog} --help`)\n")


def _add_train(sub) -> None:
    from sbnn.training.config import TrainConfig
    from sbnn.training.datasets import KNOWN_DATASETS
    from sbnn.training.domains import DOMAINS
    from sbnn.training.zoo import MODELS

    p = sub.add_parser("train", help="train a sparse binary network; writes checkpoint.pt and metrics.json")
    d = TrainConfig()
    p.add_argument("--config", help="JSON or YAML file of hyperparameters (flags override it)")
    p.add_argument("--out", default="runs/train", help="run directory (default: runs/train)")
    p.add_argument("--data-dir", help="directory holding the data set files (default: system location)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dataset", help=f"one of {', '.join(KNOWN_DATASETS)} (default {d.dataset})")
    p.add_argument("--model", help=f"one of {', '.join(MODELS)} (default {d.model})")
    p.add_argument("--hidden", help="MLP widths, e.g. 256,256,256")
    p.add_argument("--width", type=float, help="CNV channel multiplier / ResNet base width")
    p.add_argument("--depth", type=int, help="ResNet blocks per stage")
    p.add_argument("--domain", help=f"weight domain: {', '.join(DOMAINS)} (default {d.domain})")
    p.add_argument("--ec", type=float, help=f"expected connections in (0, 1) (default {d.ec})")
    p.add_argument("--per-channel", action="store_true", default=None, help="one (alpha, beta) per output channel")
    p.add_argument("--gamma", type=float, help="EC budget penalty strength for alpha-beta-learned")
    p.add_argument("--prune", help="magnitude pruning: none, layer or global")
    p.add_argument("--prune-target", type=float, help="final pruned share in [0, 1)")
    p.add_argument("--prune-start", type=float, help="schedule start, fraction of training")
    p.add_argument("--prune-end", type=float, help="schedule end, fraction of training")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--latent-clamp", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--train-subset", type=int, help="use only the first N training samples")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from sbnn.training.config import TrainConfig, load_config_file
    from sbnn.training.trainer import train

    values = load_config_file(args.config) if args.config else {}
    for name in TrainConfig.field_names():
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    cfg = TrainConfig.from_dict(values, where=args.config or "flags")
    cfg.weight_domain()  # validate the domain before loading data
    metrics = train(cfg, args.out, data_dir=args.data_dir, resume=args.resume, progress=not args.quiet)
    print(f"test accuracy {metrics['test_accuracy']:.4f}, weight sparsity {metrics['sparsity']:.3f}, "
          f"pruned {metrics['pruned']:.3f}; wrote {args.out}/checkpoint.pt and {args.out}/metrics.json")
    return 0


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="accuracy vs sparsity sweep over EC for {alpha,beta}, {0,beta}, +-1 pruning")
    p.add_argument("--out", default="runs/sweep", help="output directory (table, plot, per-run folders)")
    p.add_argument("--ecs", default="0.5,0.25,0.1,0.05,0.02", help="comma-separated EC values")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="sfc")
    p.add_argument("--data-dir")
    p.add_argument("--train-subset", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_sweep)


def _run_sweep(args) -> int:
    from sbnn.training.config import TrainConfig
    from sbnn.training.sweep import sweep

    try:
        ecs = [float(v) for v in args.ecs.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--ecs must be comma-separated numbers in (0, 1), got '{args.ecs}'") from None
    base = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs, seed=args.seed,
                       train_subset=args.train_subset)
    rows = sweep(base, ecs, args.out, data_dir=args.data_dir, progress=not args.quiet)
    print((Path(args.out) / "sweep.md").read_text())
    print(f"wrote {args.out}/sweep.csv, sweep.md and sweep.png ({len(rows)} runs)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sbnn", description="Sparse binary neural networks: train, export, compile, simulate, build.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_sweep(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"sbnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sbnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
