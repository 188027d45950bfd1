"""The ``sbnn`` command line: one entry point, one subcommand per stage.

User errors (:class:`sbnn.errors.UserError`) print one line and exit with
status 2; anything else is a bug and keeps its traceback.

This is the only module that imports lazily: each subcommand imports its stage
(``sbnn.flow.build``, ``sbnn.flow.sim``, ``sbnn.export.compile``, ...) when it
runs, so that ``sbnn --help`` does not load FINN. Everything else imports at
module level.
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--device", default="auto", help="auto (CUDA when torch sees a GPU, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes (torch DDP; gloo on CPU, nccl with "
                   "one GPU each); each batch of --batch-size is split between them (default 1; under torchrun "
                   "its ranks are used instead)")
    p.add_argument("--dataset", help=f"one of {', '.join(KNOWN_DATASETS)} (default {d.dataset})")
    p.add_argument("--model", help=f"one of {', '.join(MODELS)} (default {d.model})")
    p.add_argument("--hidden", help="MLP widths, e.g. 256,256,256")
    p.add_argument("--width", type=float, help="CNV channel multiplier / ResNet base width")
    p.add_argument("--depth", type=int, help="ResNet blocks per stage")
    p.add_argument("--domain", help=f"weight domain: {', '.join(DOMAINS)} (default {d.domain})")
    p.add_argument("--ec", type=float, help=f"expected connections in (0, 1) (default {d.ec})")
    p.add_argument("--per-channel", action="store_true", default=None, help="one (alpha, beta) per output channel")
    p.add_argument("--block", help="block-structured mask RxC (R output neurons x C inputs, e.g. 16x16): whole "
                   "blocks a fold with PE = R, SIMD = C skips in memory mode (default: element-wise)")
    p.add_argument("--sparse-classifier", dest="dense_classifier", action="store_false", default=None,
                   help="give the classifier the sparse domain too (default: dense +-1 classifier)")
    p.add_argument("--ec-ramp-end", type=float,
                   help="closed form: EC falls from 0.5 to --ec by this fraction of training (default 0: fixed)")
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
    from sbnn.training.distributed import launched_by_torchrun
    from sbnn.training.launch import train_spawned, train_under_torchrun
    from sbnn.training.trainer import train

    values = load_config_file(args.config) if args.config else {}
    for name in TrainConfig.field_names():
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    cfg = TrainConfig.from_dict(values, where=args.config or "flags")
    cfg.weight_domain()  # validate the domain before loading data
    run = dict(data_dir=args.data_dir, resume=args.resume, progress=not args.quiet, device=args.device)
    if launched_by_torchrun():
        metrics = train_under_torchrun(cfg, args.out, **run)
        if int(os.environ["RANK"]) != 0:
            return 0
    elif args.nproc != 1:
        metrics = train_spawned(cfg, args.out, args.nproc, **run)
    else:
        metrics = train(cfg, args.out, **run)
    print(f"test accuracy {metrics['test_accuracy']:.4f}, weight sparsity {metrics['sparsity']:.3f}, "
          f"pruned {metrics['pruned']:.3f}; wrote {args.out}/checkpoint.pt and {args.out}/metrics.json")
    return 0


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="accuracy vs sparsity sweep over EC for {alpha,beta}, {0,beta}, +-1 pruning")
    p.add_argument("--out", default="runs/sweep", help="output directory (table, plot, per-run folders)")
    p.add_argument("--ecs", default="0.5,0.25,0.1,0.05,0.02", help="comma-separated EC values")
    p.add_argument("--epochs", type=int, default=50, help="epochs per run (default 50: the README table)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="sfc")
    p.add_argument("--data-dir")
    p.add_argument("--train-subset", type=int)
    p.add_argument("--block", help="block-structured masks RxC for the {alpha,beta}, learned and {0,beta} points, as for train")
    p.add_argument("--gamma", type=float, help="EC penalty strength of every learned tau/phi point below EC 0.5 "
                   "(default: the reference code's grid, 0.02 at EC 0.25 ... 0.08 at 0.02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", help="comma-separated seeds, every point trained once per seed; the table gives "
                   "mean ± std (default: --seed)")
    p.add_argument("--jobs", type=int, default=1, help="train this many points at once (default 1; with "
                   "--executor ray and no --ray-address: the local Ray runtime's CPUs)")
    p.add_argument("--executor", default="local", help="local (this machine's processes, default) or ray (each "
                   "point a Ray task)")
    p.add_argument("--ray-address", help="Ray cluster to run on, e.g. 10.0.0.1:6379 (default: start a local "
                   "runtime); --out must be on a file system every node sees")
    p.add_argument("--cpus-per-point", type=float, default=1.0, help="Ray: CPUs each point asks for (default 1)")
    p.add_argument("--gpus-per-point", type=float, default=0.0, help="Ray: GPUs each point asks for (default 0; "
                   "e.g. 0.25 puts four points on one GPU)")
    p.add_argument("--threads-per-point", type=int, help="torch threads of each point (default: the cores split "
                   "between --jobs; on Ray --cpus-per-point); equal counts give bit-equal results")
    p.add_argument("--device", default="auto", help="auto (CUDA when torch sees a GPU, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--hardware", action="store_true", help="also export and compile every point at one fixed "
                   "folding and cost it (LUTs, weight memory bits, cycles/frame): sweep_hw.md, sweep_cost.png")
    p.add_argument("--hw-folding", help="with --hardware: the folding JSON (as for `sbnn compile --folding`) of "
                   "every point (default: PE, SIMD = the largest divisors of MH, MW up to 16, 32)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_sweep)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} must be comma-separated integers, e.g. {flag} 0,1,2 (got '{text}')") from None


def _run_sweep(args) -> int:
    from sbnn.training.config import TrainConfig
    from sbnn.training.sweep import sweep
    from sbnn.training.sweep_exec import ExecutorConfig

    try:
        ecs = [float(v) for v in args.ecs.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--ecs must be comma-separated numbers in (0, 1), got '{args.ecs}'") from None
    if not ecs:
        raise UserError(f"--ecs lists no EC value (got '{args.ecs}'); pass comma-separated values in (0, 1), "
                        "e.g. --ecs 0.5,0.1")
    base = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs, seed=args.seed,
                       train_subset=args.train_subset, block=args.block)
    seeds = _int_list(args.seeds, "--seeds") if args.seeds is not None else None
    executor = ExecutorConfig(kind=args.executor, jobs=args.jobs, ray_address=args.ray_address,
                              cpus_per_point=args.cpus_per_point, gpus_per_point=args.gpus_per_point,
                              threads_per_point=args.threads_per_point)
    rows = sweep(base, ecs, args.out, data_dir=args.data_dir, progress=not args.quiet, device=args.device,
                 seeds=seeds, executor=executor, gamma=args.gamma, hardware=args.hardware,
                 hw_folding=args.hw_folding)
    print((Path(args.out) / "sweep.md").read_text())
    runs = sum(r["seeds"] for r in rows)
    hw = ""
    if args.hardware:
        print((Path(args.out) / "sweep_hw.md").read_text())
        hw = ", sweep_hw.md, sweep_cost.png"
    print(f"wrote {args.out}/sweep.csv, sweep_runs.csv, sweep.md{hw} and sweep.png ({runs} runs)")
    return 0


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="the whole flow for a board; no MODEL = train and build the embedded default")
    p.add_argument("model", nargs="?", help="checkpoint.pt from `sbnn train`, or a QONNX .onnx (Brevitas "
                   "export_qonnx, `sbnn export`) (default: embedded default model)")
    p.add_argument("--config", help="build config file, JSON or YAML (FINN's DataflowBuildConfig names: board, "
                   "output_dir, target_fps, folding_config_file, steps, start_step, stop_step, ...); flags "
                   "override it")
    p.add_argument("--board", help="pynq-z1, pynq-z2, ultra96-v2, zcu104, kv260 (default pynq-z2)")
    p.add_argument("--build-dir", help="build directory (default build/<model>_<board>)")
    p.add_argument("--frames", type=int, help="test frames verified in rtlsim (default 1000)")
    p.add_argument("--folding", help="JSON of per-layer PE/SIMD (and weight_mode), as for `sbnn compile`")
    p.add_argument("--target-fps", type=float, help="fold for this many frames/s at the board clock (default: the "
                   "fastest design that fits the board)")
    p.add_argument("--weight-mode", help="auto (the cheaper per layer, default), baked (weights in logic) or "
                   "memory (ROM)")
    p.add_argument("--data-dir", help="directory of the model's data set files (CIFAR-10/100: python-pickle layout)")
    p.add_argument("--device", help="where the embedded default trains: auto (default), cpu, cuda or cuda:N")
    p.add_argument("--start-step", help="redo the build from this stage on (export, compile, stitch, estimate, "
                   "rtlsim, deploy; the stages before it must be done)")
    p.add_argument("--stop-step", help="stop after this stage (no report: the build is not complete)")
    p.add_argument("--dataset", dest="dataset", help="verify on this data set's test images (default: the one the "
                   "model records; random inputs when none)")
    p.add_argument("--images", dest="images", help="verify on these images instead: .npy, one image per row, "
                   "pixels as the board receives them (uint8 0..255 for 8-bit images)")
    p.add_argument("--input-max-value", type=int, help="pixel value a QONNX model reads as 1.0 (default: 255 for a "
                   "float input, so the hardware takes uint8 pixels)")
    p.add_argument("--labels", dest="labels", help=".npy of one class index per --images image (for the accuracy)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_run_build)


# flags of `sbnn build` that are build options (argparse dest -> config key); None = not given
_BUILD_FLAGS = ("model", "board", "build_dir", "frames", "folding", "target_fps", "weight_mode", "data_dir",
                "device", "start_step", "stop_step", "dataset", "images", "labels", "input_max_value")


def _run_build(args) -> int:
    from sbnn.flow.build import run_build
    from sbnn.flow.config_file import build_config_from, load_build_config

    flags = {k: getattr(args, k, None) for k in _BUILD_FLAGS}
    flags["progress"] = False if args.quiet else None
    cfg = load_build_config(args.config, flags) if args.config else build_config_from(flags, where="flags")
    report = run_build(cfg)
    if "stopped_after" in report:
        print(f"sbnn build: stopped after {report['stopped_after']} as asked; outputs so far in "
              f"{report['build_dir']} (run again without --stop-step to finish)", file=sys.stderr)
        return 0
    short = {k: report[k] for k in ("board", "part", "frames_verified", "bit_exact", "accuracy_qonnx",
                                     "accuracy_rtlsim", "cycles_per_frame", "latency_cycles", "fps_estimate",
                                     "resources", "weight_sparsity")}
    print(json.dumps(short, indent=2))
    print(f"sbnn build: {report['vivado']['message']}", file=sys.stderr)
    print(f"sbnn build: report in {report['build_dir']}/report.md (and report.json); deploy package in "
          f"{report['deploy']['path']}", file=sys.stderr)
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="freeze a checkpoint's {alpha,beta} layers and write a QONNX model")
    p.add_argument("checkpoint", help="checkpoint.pt written by `sbnn train`")
    p.add_argument("--out", help="output .onnx (default: model.qonnx.onnx next to the checkpoint)")
    p.add_argument("--frac-bits", type=int, default=8,
                   help="k: alpha/(beta-alpha) is fixed to R/2^k (default 8)")
    p.add_argument("--data-dir", help="data set directory, for the accuracy before/after freezing")
    p.add_argument("--no-eval", action="store_true", help="skip the test-set accuracy before/after freezing")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from sbnn.artifacts import check_output_file
    from sbnn.export.qonnx_export import export_checkpoint

    if args.out is not None:
        check_output_file(args.out, "--out", makes_folder=True)   # before the checkpoint is frozen and evaluated
    rep = export_checkpoint(args.checkpoint, args.out, args.frac_bits, evaluate=not args.no_eval,
                            data_dir=args.data_dir)
    for layer in rep["layers"]:
        if layer.get("ternary"):
            print(f"{layer['name']}: ternary {{-c, 0, +c}} (pruned +-1: mask and sign per kept weight)")
        else:
            print(f"{layer['name']}: alpha/(beta-alpha) = {layer['alpha_num']} / 2^{layer['alpha_shift']}")
    if "accuracy_before_freeze" in rep:
        print(f"test accuracy {rep['accuracy_before_freeze']:.4f} before freezing, {rep['accuracy_after_freeze']:.4f} "
              f"after ({rep['predictions_changed_by_freeze']} of {rep['test_samples']} predictions changed)")
    print(f"wrote {rep['model']} and {Path(rep['model']).with_suffix('.json')}")
    return 0


def _add_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile a QONNX model into a FINN dataflow graph of sparse XNOR-popcount MVAUs")
    p.add_argument("model", help="QONNX model written by `sbnn export`")
    p.add_argument("--build-dir", help="build directory (default: build/compile_<model name>)")
    p.add_argument("--folding", help="per-layer folding JSON: {node: {PE, SIMD, weight_mode}}")
    p.add_argument("--target-fps", type=float, help="fold for this many frames per second (default: the fastest "
                   "design that fits the --fpga-part)")
    p.add_argument("--fclk-mhz", type=float, default=100.0, help="clock for --target-fps (default 100)")
    p.add_argument("--weight-mode", default="auto", choices=("auto", "baked", "memory"),
                   help="weight storage of the sparse MVAUs: auto (the cheaper per layer, default), baked or memory")
    p.add_argument("--fpga-part", default="xc7z020clg400-1", help="FPGA part for FINN's layer specialization")
    p.add_argument("--input-max-value", type=int,
                   help="pixel value the model reads as 1.0 (255 for 8-bit images): the hardware takes integer "
                        "pixels (default: what `sbnn export` recorded; float input otherwise)")
    p.set_defaults(func=_run_compile)


def _run_compile(args) -> int:
    from sbnn.artifacts import check_onnx_artifact, check_output_dir
    from sbnn.export.compile import compile_model
    from sbnn.export.qonnx_input import check_metadata
    from sbnn.flow.config import CompileConfig

    cfg = CompileConfig.from_options(folding=args.folding, target_fps=args.target_fps, fclk_mhz=args.fclk_mhz,
                                     weight_mode=args.weight_mode, fpga_part=args.fpga_part,
                                     input_max_value=args.input_max_value)
    build = args.build_dir or str(Path("build") / f"compile_{Path(args.model).stem.replace('.', '_')}")
    check_output_dir(build, "--build-dir")
    check_onnx_artifact(args.model, "model", "pass a QONNX .onnx written by `sbnn export` or Brevitas export_qonnx")
    check_metadata(args.model)
    rep = compile_model(args.model, build, cfg)
    print(rep["table"])
    fps = f", est. {rep['est_fps']:.0f} FPS at {rep['fclk_mhz']:g} MHz" if rep.get("est_fps") else ""
    print(f"compiled in {rep['compile_wall_s']:.1f} s{fps}; wrote {build}/hw_graph.onnx, parent.onnx, "
          f"{len(rep['steps'])} intermediate models and compile_report.json")
    return 0


def _add_sim(sub) -> None:
    p = sub.add_parser("sim", help="stitch a compiled dataflow partition and simulate it in Verilator (rtlsim)")
    p.add_argument("target", help="build directory of `sbnn compile`, or its hw_graph.onnx")
    p.add_argument("--frames", type=int, default=1000, help="frames to stream (default 1000)")
    p.add_argument("--data", default="auto", choices=("auto", "test", "random"),
                   help="test images of the model's data set, or random inputs (default: test when known)")
    p.add_argument("--data-dir", help="data set directory (default: system location)")
    p.add_argument("--dataset", help="test images of this data set (default: the one the model records)")
    p.add_argument("--images", help="the user's images instead: .npy, one per row, as the hardware's graph input "
                   "takes them (uint8 pixels when the compile merged the pixel scaling)")
    p.add_argument("--labels", help=".npy of one class index per --images image (for the accuracy)")
    p.add_argument("--backpressure", type=float, default=0.0, help="probability per cycle that the sink stalls")
    p.add_argument("--gaps", type=float, default=0.0, help="probability per cycle that the source idles")
    p.add_argument("--seed", type=int, default=0, help="seed of backpressure, gaps and random inputs")
    p.add_argument("--max-cycles", type=int, help="simulation timeout in cycles (default: from the estimate)")
    p.add_argument("--stitch-dir", help="where the stitched RTL goes (default: <build>/stitched)")
    p.add_argument("--out", help="report JSON (default: sim_report.json in the stitch directory)")
    p.add_argument("--resources", metavar="BOARD",
                   help="also estimate LUT/FF/BRAM/DSP per layer (Yosys + FINN) and check the fit on this board")
    p.set_defaults(func=_run_sim)


def _run_sim(args) -> int:
    from sbnn.flow.sim import format_report, run_sim
    from sbnn.hls.resources import part_limits

    board = part_limits(args.resources) if args.resources else None   # a bad board stops before the simulation
    rep = run_sim(args.target, args.frames, backpressure=args.backpressure, gaps=args.gaps, seed=args.seed,
                  max_cycles=args.max_cycles, data=args.data, data_dir=args.data_dir, stitch_dir=args.stitch_dir,
                  dataset=args.dataset, images=args.images, labels=args.labels,
                  out_json=args.out)
    print(format_report(rep))
    if args.resources:
        from sbnn.hls.resources import check_fit, design_resources, fit_violations, format_resources
        from sbnn.hls.stitch import load_design

        res = design_resources(load_design(rep["stitched_dir"]), family=board.family, part=board.part)
        print(format_resources(res))
        rep["resources"] = {**res, "board": board.name, "part": board.part,
                            "fit_violations": fit_violations(res["total"], board.name)}
        Path(rep["json"]).write_text(json.dumps({k: v for k, v in rep.items() if k != "json"}, indent=2) + "\n")
        check_fit(res["total"], board.name)
    return 0 if rep["bit_exact"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sbnn", description="Sparse binary neural networks: train, export, compile, simulate, build.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_sweep(sub)
    _add_build(sub)
    _add_export(sub)
    _add_compile(sub)
    _add_sim(sub)
    return parser


# Third-party notices that are expected in this flow and say nothing actionable to an sbnn user.
_EXPECTED_WARNINGS = (
    "fast_hadamard_transform package not found",   # brevitas: optional CUDA kernels
    "brevitas.fx is deprecated",                   # brevitas: imported by its own graph utilities
    "Assuming 4D input is NCHW",                   # qonnx: our MLP inputs are NCHW images
)


def _quiet_third_party() -> None:
    import logging
    import warnings

    for msg in _EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=f".*{msg}.*")
    # FINN logs each absorbed Add without layout annotations (flattened MLP inputs); real errors still show
    logging.getLogger("finn_logger").setLevel(logging.ERROR)


def main(argv=None) -> int:
    _quiet_third_party()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"sbnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = {_run_build: "; finished stages are kept, run the same command again to resume",
                _run_train: "; the last finished epoch is in the checkpoint, add --resume to continue"}
        print(f"sbnn: interrupted{hint.get(args.func, '')}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
