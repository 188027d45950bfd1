"""A catalogue of bad inputs, one row per case, for every command (train, sweep, export, compile, sim, build
and the deploy package's driver.py).

Every case must stop with a non-zero status and exactly one stderr line ``<prog>: error: ...`` (no traceback),
leave the user's files as they were (hashes before/after) and leave nothing that looks like a finished result
(no new checkpoint.pt, report.json, .done, ...). The work itself is fenced off (:func:`no_work`): training,
stitching and the build's export/compile stages raise if they start, so a case also proves its error comes
from option validation, before any work. Adding a case is one line in ``CASES``.

All cases share one tiny model (a 64-16-10 MLP, one epoch on the 8x8 digits) and one build of it that
stopped after compile; the whole file runs in-process (one subprocess case checks the real console script).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
import torch

from sbnn.cli import main

pytest.importorskip("finn")

ERROR_LINE = re.compile(r"^(sbnn|driver\.py): error: \S")
# files whose appearance says "this finished": none may be newly created by a failing command
COMPLETE_NAMES = {"checkpoint.pt", "metrics.json", "report.json", "report.md", ".done", "compile_report.json",
                  "hw_graph.onnx", "sim_report.json", "sweep.csv", "sweep.md", "sweep.png", "model.qonnx.onnx",
                  "model.qonnx.json", "rtlsim.json", "resources.json"}
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SBNN_SCRIPT = Path(sys.executable).parent / "sbnn"


class WorkStarted(AssertionError):
    """Raised by the fences of :func:`no_work`: the command began real work before rejecting its input."""


# ---- shared tiny model and build --------------------------------------------------------------------------
@dataclass(frozen=True)
class Tiny:
    ckpt: Path       # checkpoint.pt of a one-epoch digits MLP
    build: Path      # `sbnn build ckpt --stop-step compile` of it (export and compile done)
    deploy: Path     # a deploy package (config.json, driver.py) of a one-node accelerator


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    from sbnn.bitstreams.deploy import make_deploy_package
    from sbnn.bitstreams.simbackend import node_io
    from sbnn.bitstreams.vivado import generate_vivado_project
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    from support_rtl import tiny_node_config, write_node_rtl

    root = tmp_path_factory.mktemp("bad_inputs")
    cfg = TrainConfig(dataset="digits", model="mlp", hidden="16", epochs=1, batch_size=64, seed=0)
    train(cfg, root / "run", progress=False)
    ckpt = root / "run" / "checkpoint.pt"
    build = root / "build"
    assert main(["build", str(ckpt), "--build-dir", str(build), "--frames", "20", "--quiet",
                 "--stop-step", "compile"]) == 0
    node = tiny_node_config(MW=16, MH=4, PE=2, SIMD=4)
    rtl = write_node_rtl(node, root / "node" / "stitched")
    i, o, meaning = node_io(node)
    proj = generate_vivado_project(rtl, node.name, {"input": i, "output": o}, "pynq-z2", root / "node" / "vivado",
                                   extra={"meaning": meaning})
    pkg = make_deploy_package(proj, root / "node" / "deploy")
    return Tiny(ckpt, build, pkg.path)


# ---- the environment a case builds its inputs in -------------------------------------------------------------
@dataclass
class Env:
    """Input files of one case, all under ``root``; ``outputs``: paths the command may write (not hashed)."""

    root: Path
    tiny: Tiny
    outputs: list[Path] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.root / name

    def out(self, name: str) -> Path:
        """A path the command writes to (it need not exist)."""
        p = self.root / name
        self.outputs.append(p)
        return p

    def file(self, name: str, data: str | bytes = "") -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def dir(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def json(self, name: str, value) -> Path:
        return self.file(name, json.dumps(value))

    def npy(self, name: str, array) -> Path:
        p = self.root / name
        np.save(p, np.asarray(array), allow_pickle=True)
        return p

    def ckpt(self) -> Path:
        p = self.root / "run" / "checkpoint.pt"
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.tiny.ckpt, p)
        return p

    def ckpt_without(self, key: str) -> Path:
        ck = torch.load(self.tiny.ckpt, weights_only=True)
        del ck[key]
        p = self.root / f"no_{key}" / "checkpoint.pt"
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ck, p)
        return p

    def onnx(self, name: str = "model.onnx", meta: dict | None = None) -> Path:
        """The tiny model as QONNX (``meta``: metadata_props to set)."""
        p = self.root / name
        model = onnx.load(str(self.tiny.build / "export" / "model.qonnx.onnx"))
        for k, v in (meta or {}).items():
            for props in (model.metadata_props, model.graph.metadata_props):   # qonnx reads both
                entry = next((m for m in props if m.key == k), None) or props.add()
                entry.key, entry.value = k, v
        onnx.save(model, str(p))
        return p

    def build(self) -> Path:
        """A copy of the tiny build (export and compile done) that reads as built from :meth:`ckpt`."""
        b = self.root / "build"
        if not b.exists():
            shutil.copytree(self.tiny.build, b)
            options = json.loads((b / "options.json").read_text())
            options["model"] = str(self.ckpt().resolve())
            (b / "options.json").write_text(json.dumps(options))
            self.outputs.append(b)
        return b

    def compile_dir(self) -> Path:
        return self.build() / "compile"

    def build_argv(self, *extra: str) -> list[str]:
        """`sbnn build` of the copied tiny build, stopping after compile unless ``extra`` says otherwise."""
        return ["build", str(self.ckpt()), "--build-dir", str(self.build()), "--frames", "20", "--quiet", *extra]

    def folding(self, value) -> Path:
        return self.json("folding.json", value)

    def deploy_argv(self, *extra: str) -> list[str]:
        return ["--config", str(self.tiny.deploy / "config.json"), *extra]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) // 2)])


# read-only mounts made by unwritable() as root, unmounted after each case
MOUNTED: list[Path] = []


def unwritable(path: Path) -> None:
    """``path`` as a directory the command cannot write: mode 0o500, or, as root (whom modes do not stop), a
    read-only tmpfs mounted there (the "under a read-only mount" class); skipped where root cannot mount."""
    path.mkdir(parents=True, exist_ok=True)
    if not AS_ROOT:
        path.chmod(0o500)
        return
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs ({res.stderr.strip()}): no unwritable "
                    "directory to test with")
    MOUNTED.append(path)


def unmount_all() -> None:
    while MOUNTED:
        subprocess.run(["umount", str(MOUNTED.pop())], check=True)


# ---- the catalogue -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Env], list[str]]
    setup: Callable[[Env], None] | None = None
    expect: str = ""                  # a word the error line must contain (says which check fired)
    prog: str = "sbnn"                # sbnn, or "driver" for the deploy package's driver.py
    needs_permissions: bool = False   # unwritable-directory cases (chmod, or a read-only mount as root)


def T(*args: str) -> Callable[[Env], list[str]]:
    """`sbnn train` of a tiny MLP into ``<root>/out`` with ``args`` on top."""
    return lambda e: ["train", "--out", str(e.out("out")), "--dataset", "digits", "--model", "mlp", "--hidden", "8",
                      "--epochs", "1", "--quiet", *args]


def TC(yaml_text: str) -> Callable[[Env], list[str]]:
    """`sbnn train --config` of a YAML file (no other flag: flags would override the file's values)."""
    return lambda e: ["train", "--out", str(e.out("out")), "--quiet", "--config", str(e.file("train.yaml", yaml_text))]


def SW(*args: str) -> Callable[[Env], list[str]]:
    return lambda e: ["sweep", "--out", str(e.out("sweep")), "--dataset", "digits", "--model", "mlp", "--epochs", "1",
                      "--quiet", *args]


def EX(*args: str) -> Callable[[Env], list[str]]:
    return lambda e: ["export", str(e.ckpt()), "--no-eval", *args]


def CO(*args: str, model: Callable[[Env], Path] | None = None) -> Callable[[Env], list[str]]:
    return lambda e: ["compile", str((model or Env.onnx)(e)), "--build-dir", str(e.out("cbuild")), *args]


def SI(*args: str, target: Callable[[Env], Path] | None = None) -> Callable[[Env], list[str]]:
    return lambda e: ["sim", str((target or Env.compile_dir)(e)), "--frames", "5", *args]


def BU(*args: str, model: Callable[[Env], Path] | None = None) -> Callable[[Env], list[str]]:
    """`sbnn build` of a model into a new build directory ``<root>/b``."""
    return lambda e: ["build", str((model or Env.ckpt)(e)), "--build-dir", str(e.out("b")), "--frames", "5",
                      "--quiet", *args]


def BC(yaml_text: str) -> Callable[[Env], list[str]]:
    return lambda e: ["build", str(e.ckpt()), "--config", str(e.file("build.yaml", yaml_text)),
                      "--build-dir", str(e.out("b")), "--quiet"]


def images(n: int = 5, dtype=np.uint8, shape=(64,)) -> np.ndarray:
    return np.zeros((n, *shape), dtype=dtype)


def IMG(x, y=None, *extra: str, cmd=BU) -> Callable[[Env], list[str]]:
    """A command with --images (and --labels) of the given arrays."""
    def argv(e: Env) -> list[str]:
        args = ["--images", str(e.npy("x.npy", x))]
        if y is not None:
            args += ["--labels", str(e.npy("y.npy", y))]
        return cmd(*args, *extra)(e)
    return argv


def FO(value, cmd=CO) -> Callable[[Env], list[str]]:
    return lambda e: cmd("--folding", str(e.folding(value)))(e)


def DR(*args: str) -> Callable[[Env], list[str]]:
    return lambda e: e.deploy_argv(*args)


HUGE = "x" * 20_000_000
NODE = "MVAU_0"   # any node name: entries are checked for shape before names are matched


CASES = [
    # -- train: output paths
    Case("train-out-is-file", lambda e: T()(e), lambda e: e.file("out", "mine"), "--out"),
    Case("train-out-parent-is-file", lambda e: T("--out", str(e.path("f") / "run"))(e), lambda e: e.file("f", "x"),
         "--out"),
    Case("train-out-unwritable", T(), lambda e: unwritable(e.path("out")), "--out", needs_permissions=True),
    # -- train: values torch or the model would reject late
    Case("train-lr-negative", T("--lr", "-0.1"), expect="--lr"),
    Case("train-lr-nan", T("--lr", "nan"), expect="--lr"),
    Case("train-lr-inf", T("--lr", "inf"), expect="--lr"),
    Case("train-lr-zero", T("--lr", "0"), expect="--lr"),
    Case("train-weight-decay-negative", T("--weight-decay", "-1"), expect="weight"),
    Case("train-dropout-above-1", T("--dropout", "1.5"), expect="dropout"),
    Case("train-dropout-negative", T("--dropout", "-0.1"), expect="dropout"),
    Case("train-dropout-nan", T("--dropout", "nan"), expect="dropout"),
    Case("train-ec-nan", T("--ec", "nan"), expect="EC"),
    Case("train-ec-inf", T("--ec", "inf"), expect="EC"),
    Case("train-latent-clamp-zero", T("--latent-clamp", "0"), expect="latent"),
    Case("train-gamma-nan", T("--gamma", "nan"), expect="gamma"),
    Case("train-prune-target-above-1", T("--prune", "layer", "--prune-target", "1.5"), expect="prune"),
    Case("train-prune-window-reversed", T("--prune", "layer", "--prune-target", "0.5", "--prune-start", "0.8",
                                          "--prune-end", "0.2"), expect="prune"),
    Case("train-subset-negative", T("--train-subset", "-5"), expect="train-subset"),
    Case("train-subset-zero", T("--train-subset", "0"), expect="train-subset"),
    Case("train-width-zero", T("--width", "0"), expect="width"),
    Case("train-width-negative", T("--width", "-2"), expect="width"),
    Case("train-width-nan", T("--width", "nan"), expect="width"),
    Case("train-width-text", T("--width", "wide"), expect="--width"),
    Case("train-subset-text", T("--train-subset", "half"), expect="--train-subset"),
    Case("train-depth-zero", T("--depth", "0"), expect="depth"),
    Case("train-hidden-garbage", T("--hidden", "a,b"), expect="hidden"),
    Case("train-hidden-zero", T("--hidden", "16,0"), expect="hidden"),
    Case("train-unknown-model", T("--model", "nosuch"), expect="model"),
    Case("train-unknown-dataset", T("--dataset", "nosuch"), expect="data set"),
    Case("train-lr-not-a-number", T("--lr", "abc"), expect="--lr"),
    # -- train: config file values of the wrong type
    Case("train-config-lr-string", TC("lr: abc\n"), expect="lr"),
    Case("train-config-lr-list", TC("lr: [0.1, 0.2]\n"), expect="lr"),
    Case("train-config-epochs-float", TC("epochs: 1.5\n"), expect="epochs"),
    Case("train-config-batch-size-string", TC("batch_size: many\n"), expect="batch_size"),
    Case("train-config-hidden-list-of-lists", TC("hidden: [[1]]\n"), expect="hidden"),
    Case("train-config-not-a-mapping", TC("- lr\n- 0.1\n"), expect="mapping"),
    Case("train-config-yaml-syntax", TC("lr: [0.1\n"), expect="yaml"),
    Case("train-config-unknown-key", TC("learning_rate: 0.1\n"), expect="unknown"),
    Case("train-config-lr-nan", TC("lr: .nan\n"), expect="lr"),
    # -- train: checkpoints missing expected keys (resume)
    Case("train-resume-without-optimizer", lambda e: ["train", "--out", str(e.ckpt_without("optimizer").parent),
                                                      "--resume", "--dataset", "digits", "--model", "mlp",
                                                      "--hidden", "16", "--epochs", "2", "--quiet"],
         expect="optimizer"),
    # -- sweep
    Case("sweep-ecs-comma", SW("--ecs", ","), expect="--ecs"),
    Case("sweep-ecs-empty", SW("--ecs", ""), expect="--ecs"),
    Case("sweep-ecs-not-numbers", SW("--ecs", "0.1,abc"), expect="--ecs"),
    Case("sweep-ecs-out-of-range", SW("--ecs", "0.1,1.5"), expect="EC"),
    Case("sweep-ecs-nan", SW("--ecs", "nan"), expect="EC"),
    Case("sweep-jobs-zero", SW("--ecs", "0.1", "--jobs", "0"), expect="--jobs"),
    Case("sweep-subset-negative", SW("--ecs", "0.1", "--train-subset", "-1"), expect="train-subset"),
    Case("sweep-out-is-file", SW("--ecs", "0.1"), lambda e: e.file("sweep", "mine"), "--out"),
    Case("sweep-gamma-nan", SW("--ecs", "0.1", "--gamma", "nan"), expect="gamma"),
    Case("sweep-hw-folding-not-json",
         lambda e: SW("--ecs", "0.1", "--hardware", "--hw-folding", str(e.file("fold.json", "{bad")))(e),
         expect="not valid JSON"),
    Case("sweep-hw-folding-bad-pe",
         lambda e: SW("--ecs", "0.1", "--hardware", "--hw-folding",
                      str(e.file("fold.json", '{"SparseXnorMVAU_0": {"PE": "x"}}')))(e), expect="PE"),
    # -- export
    Case("export-out-is-dir", lambda e: EX("--out", str(e.dir("outdir")))(e), expect="--out"),
    Case("export-out-parent-is-file", lambda e: EX("--out", str(e.file("f", "x") / "m.onnx"))(e), expect="--out"),
    Case("export-out-unwritable", lambda e: EX("--out", str(e.path("ro") / "m.onnx"))(e),
         lambda e: unwritable(e.path("ro")), "--out", needs_permissions=True),
    Case("export-ckpt-without-history", lambda e: ["export", str(e.ckpt_without("history")), "--no-eval"],
         expect="history"),
    Case("export-ckpt-without-data", lambda e: ["export", str(e.ckpt_without("data")), "--no-eval"], expect="data"),
    Case("export-ckpt-empty", lambda e: ["export", str(e.file("empty.pt")), "--no-eval"], expect="checkpoint"),
    Case("export-ckpt-is-dir", lambda e: ["export", str(e.dir("adir")), "--no-eval"], expect="checkpoint"),
    # -- compile: the model file
    Case("compile-empty-onnx", CO(model=lambda e: e.file("empty.onnx")), expect="empty"),
    Case("compile-garbage-onnx", CO(model=lambda e: e.file("garbage.onnx", os.urandom(4096))), expect="ONNX"),
    Case("compile-huge-metadata", CO(model=lambda e: e.onnx(meta={"sbnn.dataset": HUGE})), expect="metadata"),
    Case("compile-metadata-dataset-unknown", CO(model=lambda e: e.onnx(meta={"sbnn.dataset": "[1, 2]"})),
         expect="metadata"),
    Case("compile-metadata-input-max-not-number", CO(model=lambda e: e.onnx(meta={"sbnn.input_max_value": "abc"})),
         expect="metadata"),
    Case("compile-model-missing", CO(model=lambda e: e.path("nosuch.onnx")), expect="not found"),
    # -- compile: options and output paths
    Case("compile-target-fps-nan", CO("--target-fps", "nan"), expect="--target-fps"),
    Case("compile-target-fps-inf", CO("--target-fps", "inf"), expect="--target-fps"),
    Case("compile-target-fps-negative", CO("--target-fps", "-5"), expect="--target-fps"),
    Case("compile-fclk-inf", CO("--fclk-mhz", "inf"), expect="--fclk-mhz"),
    Case("compile-fclk-nan", CO("--fclk-mhz", "nan"), expect="--fclk-mhz"),
    Case("compile-input-max-zero", CO("--input-max-value", "0"), expect="--input-max-value"),
    Case("compile-build-dir-is-file", lambda e: ["compile", str(e.onnx()), "--build-dir", str(e.file("bf", "mine"))],
         expect="build"),
    Case("compile-build-dir-unwritable", CO(), lambda e: unwritable(e.path("cbuild")), "build",
         needs_permissions=True),
    # -- compile: malformed --folding entries
    Case("folding-pe-zero", FO({NODE: {"PE": 0, "SIMD": 1}}), expect="PE"),
    Case("folding-pe-string", FO({NODE: {"PE": "two", "SIMD": 1}}), expect="PE"),
    Case("folding-pe-negative", FO({NODE: {"PE": -2}}), expect="PE"),
    Case("folding-simd-float", FO({NODE: {"SIMD": 1.5}}), expect="SIMD"),
    Case("folding-pe-bool", FO({NODE: {"PE": True}}), expect="PE"),
    Case("folding-entry-not-object", FO({NODE: 4}), expect=NODE),
    Case("folding-entry-list", FO({NODE: [1, 2]}), expect=NODE),
    Case("folding-top-level-list", FO([{"PE": 1}]), expect="object"),
    Case("folding-weight-mode-bad", FO({NODE: {"weight_mode": "rom"}}), expect="weight_mode"),
    Case("folding-defaults-not-object", FO({"Defaults": 3}), expect="Defaults"),
    Case("folding-defaults-simd-zero", FO({"Defaults": {"SIMD": 0}}), expect="SIMD"),
    Case("folding-not-json", lambda e: CO("--folding", str(e.file("f.json", "{PE: 1")))(e), expect="JSON"),
    Case("build-folding-pe-zero", FO({NODE: {"PE": 0}}, cmd=BU), expect="PE"),
    # -- sim
    Case("sim-resources-bad-board", SI("--resources", "BADBOARD"), expect="BADBOARD"),
    Case("sim-frames-above-dataset", SI("--frames", "400", "--dataset", "digits"), expect="359"),
    Case("sim-frames-above-recorded-dataset", SI("--frames", "400", "--data", "test"), expect="359"),
    Case("sim-frames-above-images", IMG(images(3), None, cmd=SI), expect="--frames"),
    Case("sim-backpressure-nan", SI("--backpressure", "nan"), expect="--backpressure"),
    Case("sim-gaps-inf", SI("--gaps", "inf"), expect="--gaps"),
    Case("sim-max-cycles-zero", SI("--max-cycles", "0"), expect="--max-cycles"),
    Case("sim-out-is-dir", lambda e: SI("--out", str(e.dir("simout")))(e), expect="--out"),
    Case("sim-out-parent-missing", lambda e: SI("--out", str(e.path("nodir") / "r.json"))(e), expect="--out"),
    Case("sim-stitch-dir-is-file", lambda e: SI("--stitch-dir", str(e.file("sf", "mine")))(e), expect="stitch"),
    Case("sim-labels-negative", IMG(images(5), np.array([0, 1, -1, 2, 3]), cmd=SI), expect="negative"),
    Case("sim-images-pickle", IMG(np.array([{"a": 1}] * 5, dtype=object), cmd=SI), expect="pickle"),
    Case("sim-truncated-compile-report", SI(), lambda e: truncate(e.compile_dir() / "compile_report.json"),
         "compile_report.json"),
    Case("sim-truncated-hw-graph", SI(), lambda e: truncate(e.compile_dir() / "hw_graph.onnx"), "hw_graph.onnx"),
    Case("sim-empty-hw-graph", lambda e: SI(target=lambda e: e.file("g/hw_graph.onnx"))(e), expect="hw_graph.onnx"),
    Case("sim-truncated-parent", SI(), lambda e: truncate(e.compile_dir() / "parent.onnx"), "parent.onnx"),
    # -- build: verification data
    Case("build-frames-above-dataset", BU("--frames", "400", "--dataset", "digits"), expect="359"),
    Case("build-frames-above-recorded-dataset", BU("--frames", "400"), expect="359"),
    Case("build-frames-above-images", IMG(images(3), None), expect="--frames"),
    Case("build-frames-zero", BU("--frames", "0"), expect="--frames"),
    Case("build-labels-negative", IMG(images(5), np.array([0, 1, -1, 2, 3])), expect="negative"),
    Case("build-labels-above-classes", IMG(images(5), np.array([0, 1, 10, 2, 3])), expect="classes"),
    Case("build-zero-images", IMG(images(0), None, "--frames", "1"), expect="--images"),
    Case("build-labels-count-mismatch", IMG(images(5), np.arange(4)), expect="labels"),
    Case("build-labels-float", IMG(images(5), np.zeros(5, dtype=np.float32)), expect="labels"),
    Case("build-images-strings", IMG(np.array([["a"] * 64] * 5)), expect="not numbers"),
    Case("build-images-object-pickle", IMG(np.array([{"a": 1}] * 5, dtype=object)), expect="pickle"),
    Case("build-images-wrong-size", IMG(images(5, shape=(63,))), expect="values per image"),
    Case("build-images-nan", IMG(np.full((5, 64), np.nan, dtype=np.float32)), expect="NaN"),
    Case("build-images-above-max", IMG(np.full((5, 64), 300, dtype=np.int32)), expect="outside the pixels"),
    Case("build-images-not-npy", lambda e: BU("--images", str(e.file("x.txt", "1 2 3")))(e), expect=".npy"),
    # -- build: options, output paths, models
    Case("build-target-fps-nan", BU("--target-fps", "nan"), expect="--target-fps"),
    Case("build-target-fps-inf", BU("--target-fps", "inf"), expect="--target-fps"),
    Case("build-unknown-board", BU("--board", "BADBOARD"), expect="BADBOARD"),
    Case("build-build-dir-is-file", lambda e: ["build", str(e.ckpt()), "--build-dir", str(e.file("bf", "mine")),
                                               "--quiet"], expect="build"),
    Case("build-build-dir-unwritable", BU(), lambda e: unwritable(e.path("b")), "build", needs_permissions=True),
    Case("build-empty-onnx", BU(model=lambda e: e.file("empty.onnx")), expect="empty"),
    Case("build-garbage-onnx", BU(model=lambda e: e.file("garbage.onnx", os.urandom(4096))), expect="ONNX"),
    Case("build-huge-metadata", BU(model=lambda e: e.onnx(meta={"sbnn.dataset": HUGE})), expect="metadata"),
    Case("build-ckpt-without-data", BU(model=lambda e: e.ckpt_without("data")), expect="data"),
    Case("build-ckpt-garbage", BU(model=lambda e: e.file("run2/checkpoint.pt", b"\x80\x04garbage")),
         expect="checkpoint"),
    # -- build --config: wrong types
    Case("build-config-frames-string", BC("frames: abc\n"), expect="frames"),
    Case("build-config-frames-float", BC("frames: 1.5\n"), expect="frames"),
    Case("build-config-target-fps-list", BC("target_fps: [1, 2]\n"), expect="target_fps"),
    Case("build-config-target-fps-nan", BC("target_fps: .nan\n"), expect="target_fps"),
    Case("build-config-board-number", BC("board: 5\n"), expect="board"),
    Case("build-config-progress-string", BC("progress: sometimes\n"), expect="progress"),
    Case("build-config-steps-number", BC("steps: 5\n"), expect="steps"),
    Case("build-config-clock-zero", BC("synth_clk_period_ns: 0\n"), expect="synth_clk_period_ns"),
    Case("build-config-not-mapping", BC("- frames\n"), expect="mapping"),
    Case("build-config-unknown-key", BC("frame: 5\n"), expect="frame"),
    # -- build: truncated or corrupt artifacts of an earlier build
    Case("build-truncated-compile-report", lambda e: e.build_argv("--stop-step", "compile"),
         lambda e: truncate(e.build() / "compile" / "compile_report.json"), "compile_report.json"),
    Case("build-truncated-export-done", lambda e: e.build_argv("--stop-step", "compile"),
         lambda e: truncate(e.build() / "export" / ".done"), ".done"),
    Case("build-truncated-hw-graph", lambda e: e.build_argv("--stop-step", "stitch"),
         lambda e: truncate(e.build() / "compile" / "hw_graph.onnx"), "hw_graph.onnx"),
    # -- the deploy package's driver.py (checks before the board is touched)
    Case("driver-images-pickle", lambda e: DR("--images", str(e.npy("x.npy", np.array([{}] * 3, dtype=object))))(e),
         expect="pickle", prog="driver"),
    Case("driver-images-missing", lambda e: DR("--images", str(e.path("nosuch.npy")))(e), expect="not found",
         prog="driver"),
    Case("driver-images-wrong-size", lambda e: DR("--images", str(e.npy("x.npy", np.zeros((3, 5), np.int8))))(e),
         expect="images", prog="driver"),
    Case("driver-labels-count-mismatch", lambda e: DR("--images", str(e.npy("x.npy", np.zeros((3, 16), np.int8))),
                                                      "--labels", str(e.npy("y.npy", np.zeros(2, np.int64))))(e),
         expect="labels", prog="driver"),
    Case("driver-batch-negative", DR("--batch", "-1"), expect="--batch", prog="driver"),
    Case("driver-throughput-negative", DR("--throughput", "-5"), expect="--throughput", prog="driver"),
    Case("driver-out-is-dir", lambda e: DR("--throughput", "5", "--out", str(e.dir("od")))(e), expect="--out",
         prog="driver"),
    Case("driver-config-garbage", lambda e: ["--config", str(e.file("config.json", "{not json"))], expect="config",
         prog="driver"),
    Case("driver-config-missing-stream", lambda e: ["--config", str(e.json("config.json", {
        "input": json.loads((e.tiny.deploy / "config.json").read_text())["input"]}))], expect="output", prog="driver"),
    Case("driver-config-empty-stream", lambda e: ["--config", str(e.json("config.json", {"input": {}, "output": {}}))],
         expect="input", prog="driver"),
    Case("driver-config-not-object", lambda e: ["--config", str(e.json("config.json", [1]))], expect="config",
         prog="driver"),
]


# ---- running a case ------------------------------------------------------------------------------------------
@pytest.fixture
def no_work(monkeypatch):
    """Fences around the real work: training, stitching, the build's export/compile and the compile's passes."""
    import sbnn.export.compile as compile_mod
    import sbnn.flow.build as build_mod
    import sbnn.flow.sim as sim_mod
    import sbnn.training.trainer as trainer_mod

    def fence(what):
        def started(*args, **kwargs):
            raise WorkStarted(f"{what} started before the bad input was rejected")
        return started

    monkeypatch.setattr(trainer_mod, "load_dataset", fence("training"))
    monkeypatch.setattr(sim_mod, "stitch", fence("stitching"))
    monkeypatch.setattr(build_mod, "export_checkpoint", fence("the build's export stage"))
    monkeypatch.setattr(build_mod, "copy_qonnx", fence("the build's export stage"))
    monkeypatch.setattr(compile_mod, "_run_steps", fence("the compile's passes"))


def snapshot(root: Path, skip: list[Path]) -> dict[Path, str]:
    """sha256 of every file under ``root`` outside the ``skip`` paths."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not any(p == s or s in p.parents for s in skip):
            out[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def looks_complete(root: Path, before: set[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p not in before and p.name in COMPLETE_NAMES]


def run_command(case: Case, argv: list[str]) -> int:
    if case.prog == "driver":
        from sbnn.bitstreams import driver
        return driver.main(argv)
    try:
        return main(argv)
    except SystemExit as exc:   # argparse's own errors
        return exc.code


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_before_any_work(case, tiny, tmp_path, capsys, no_work):
    env = Env(tmp_path / "case", tiny)
    env.root.mkdir()
    try:
        argv = case.argv(env)
        if case.setup:
            case.setup(env)
        inputs = snapshot(env.root, env.outputs)
        all_before = {p for p in env.root.rglob("*") if p.is_file()}
        capsys.readouterr()
        rc = run_command(case, argv)
        # what the command left, seen while a read-only mount still covers its target
        after_inputs = snapshot(env.root, env.outputs)
        complete = looks_complete(env.root, all_before)
    finally:
        unmount_all()
        for p in env.root.rglob("*"):   # the chmod cases: let pytest clean up
            if p.is_dir():
                p.chmod(0o755)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc not in (0, None), f"exit status {rc}; stderr: {err}"
    assert "Traceback" not in out + err, err
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]), f"want one error line, got:\n{err}"
    assert case.expect in lines[0], f"error line lacks {case.expect!r}: {lines[0]}"
    assert after_inputs == inputs, "the user's input files changed"
    assert not complete, "a failing command left a result that looks finished"


def test_catalogue_covers_every_command_and_enough_cases():
    commands = {c.prog if c.prog == "driver" else c.id.split("-")[0] for c in CASES}
    assert {"train", "sweep", "export", "compile", "sim", "build", "driver", "folding"} <= commands
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


# ---- the other side: values that must be accepted ------------------------------------------------------------
def test_yaml_exponent_numbers_are_numbers(tmp_path):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; it is a number to anyone writing a config."""
    from sbnn.training.config import TrainConfig, load_config_file

    p = tmp_path / "c.yaml"
    p.write_text("lr: 1e-3\nweight_decay: 5E-4\nec: 0.1\nepochs: 2\n")
    cfg = TrainConfig.from_dict(load_config_file(p), where=str(p))
    assert cfg.lr == pytest.approx(1e-3) and cfg.weight_decay == pytest.approx(5e-4) and cfg.epochs == 2


def test_console_script_exit_status_and_no_traceback(tmp_path):
    """The real `sbnn` entry point: an empty --ecs stops with status 2 and one line, before any training."""
    if not SBNN_SCRIPT.exists():
        pytest.skip(f"no console script at {SBNN_SCRIPT}")
    res = subprocess.run([str(SBNN_SCRIPT), "sweep", "--ecs", ",", "--out", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1 and "--ecs" in res.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_damaged_yosys_cache_entry_is_a_miss(tmp_path):
    """A cut-short Yosys cache entry is synthesised again instead of stopping the estimate with a traceback."""
    from sbnn.hls.yosys import YosysNotFoundError, synth_stats

    verilog = "module t(input [3:0] a, output y); assign y = ^a; endmodule\n"
    try:
        first = synth_stats(verilog, "t", cache_dir=tmp_path)
    except YosysNotFoundError as exc:
        pytest.skip(str(exc))
    [entry] = tmp_path.glob("*.json")
    truncate(entry)
    assert synth_stats(verilog, "t", cache_dir=tmp_path) == first
    assert json.loads(entry.read_text()) == first
