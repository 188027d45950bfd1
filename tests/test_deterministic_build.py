"""The same checkpoint and options give the same build, byte for byte, in any directory.

Two builds of one tiny model (784-16-10, one epoch on 500 images) into two different build directories are
compared file by file. Only what must differ is masked: the build directory's own path, and the JSON fields
that are wall-clock durations or timestamps. Caches (Verilator, Yosys, FINN's scratch) are not artifacts and
are left out. The default tier compares export, compile and stitch (the RTL and weight files), then the Vivado project and
deploy package generated from each stitched design; the slow tier runs the whole build (estimate, rtlsim,
reports, deploy stage; no Vivado on PATH).

The converse: a build is reused only for the same inputs. A checkpoint replaced by another under the same
name (options.json records its hash) redoes the export and everything after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("finn")

from sbnn.bitstreams.deploy import make_deploy_package  # noqa: E402
from sbnn.bitstreams.vivado import generate_vivado_project, io_from_stitched  # noqa: E402
from sbnn.cli import main  # noqa: E402
from sbnn.hls.stitch import load_design  # noqa: E402
from sbnn.flow.build import CACHES  # noqa: E402

# no vivado on PATH (the build stops at a ready project); the venv's bin first: Verilator's make calls `python`
PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
# JSON keys whose values are wall-clock measurements (seconds, rates, dates), not properties of the design
VOLATILE_KEY = re.compile(r"(^|_)(s|seconds|time|timestamp|date|created|fps_measured|sim_cycles_per_s|"
                          r"cycles_per_s)$")
# durations in report.md's prose
VOLATILE_TEXT = re.compile(rb"wall time [0-9.]+ s")
SKIPPED = {*CACHES, ".sbnn.lock"}


def _train_tiny(out: Path, seed: int = 0) -> Path:
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    cfg = TrainConfig(dataset="mnist-5k", model="mlp", hidden="16", epochs=1, train_subset=500, batch_size=128,
                      domain="alpha-beta", ec=0.1, seed=seed)
    train(cfg, out, progress=False)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return _train_tiny(tmp_path_factory.mktemp("tiny") / "run")


def _two_build_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two different directories whose paths have the same length: FINN's parent graph stores the child
    graph's absolute path, and in the ONNX protobuf a path's length is part of the bytes masked around it."""
    return tmp_path / "one" / "build", tmp_path / "two" / "build"


def _build(ckpt: Path, build: Path, *extra: str, quiet: bool = True) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", PATH)
        mp.delenv("XILINX_VIVADO", raising=False)
        args = ["build", str(ckpt), "--build-dir", str(build), "--frames", "10", *extra]
        assert main(args + (["--quiet"] if quiet else [])) == 0


def _mask_json(value):
    if isinstance(value, dict):
        return {k: "<volatile>" if VOLATILE_KEY.search(k) else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def _masked(path: Path, build: Path) -> bytes:
    """The file's bytes with the build directory's path replaced; JSON durations/timestamps masked."""
    data = path.read_bytes()
    for p in {str(build), str(build.resolve())}:
        data = data.replace(p.encode(), b"<BUILD>")
    if path.suffix == ".md":
        return VOLATILE_TEXT.sub(b"wall time <volatile> s", data)
    if path.suffix == ".json":
        try:
            return json.dumps(_mask_json(json.loads(data)), indent=1).encode()
        except ValueError:
            pass
    return data


def _digests(build: Path, root: Path | None = None) -> dict[str, str]:
    """Masked digests of the files under ``root`` (default: the build directory itself)."""
    out = {}
    root = root or build
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in SKIPPED or not p.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(_masked(p, build)).hexdigest()
    return out


def _package(build: Path) -> Path:
    """The Vivado project and deploy package of the build's stitched design, as the deploy stage makes them
    (fixed stand-in images: the shipped images' determinism is the rtlsim stage's, checked in the slow tier)."""
    design = load_design(build / "stitch")
    io = io_from_stitched(design)
    pkg = build / "package"
    proj = generate_vivado_project(design.rtl_dir, design.top, io, "pynq-z2", pkg / "vivado", jobs=2,
                                   extra={"meaning": io["meaning"]})
    images = np.arange(3 * io["input"].elems, dtype=np.uint8).reshape(3, *io["input"].shape)
    make_deploy_package(proj, pkg / "deploy", images=images, labels=np.array([0, 1, 2]), expected_accuracy=1 / 3)
    return pkg


def _assert_same_builds(a: Path, b: Path) -> None:
    da, db = _digests(a), _digests(b)
    assert sorted(da) == sorted(db), f"different files: {sorted(set(da) ^ set(db))}"
    differing = [name for name in da if da[name] != db[name]]
    assert not differing, f"files that differ between two builds of the same model and options: {differing}"


@pytest.mark.slow   # a whole build (20-40 s): the slow tier, which CI also runs
def test_compile_stitch_and_package_are_byte_identical_across_build_dirs(tiny_ckpt, tmp_path):
    a, b = _two_build_dirs(tmp_path)
    _build(tiny_ckpt, a, "--stop-step", "stitch")
    _build(tiny_ckpt, b, "--stop-step", "stitch")
    names = _digests(a)
    assert any(n.startswith("stitch/rtl/") and n.endswith((".v", ".sv")) for n in names), sorted(names)
    assert any(n.startswith("compile/") for n in names) and "export/model.qonnx.onnx" in names
    _assert_same_builds(a, b)
    pa, pb = _digests(a, _package(a)), _digests(b, _package(b))
    assert {"vivado/build_vivado.tcl", "deploy/config.json", "deploy/README.md", "deploy/driver.py",
            "deploy/test_images.npy"} <= set(pa), sorted(pa)
    assert pa == pb, f"package files that differ: {sorted(k for k in pa if pa[k] != pb.get(k))}"


@pytest.mark.slow
def test_whole_build_is_byte_identical_across_build_dirs(tiny_ckpt, tmp_path):
    a, b = _two_build_dirs(tmp_path)
    _build(tiny_ckpt, a)
    _build(tiny_ckpt, b)
    names = _digests(a)
    assert {"report.json", "report.md", "rtlsim/rtlsim.json", "deploy/config.json", "deploy/README.md",
            "deploy/test_images.npy", "vivado/project.json"} <= set(names), sorted(names)
    _assert_same_builds(a, b)


def test_checkpoint_replaced_under_the_same_name_is_exported_again(tiny_ckpt, tmp_path, capsys):
    ckpt = tmp_path / "model" / "checkpoint.pt"
    ckpt.parent.mkdir()
    shutil.copy(tiny_ckpt, ckpt)
    build = tmp_path / "build"
    _build(ckpt, build, "--stop-step", "export")
    before = (build / "export" / "model.qonnx.onnx").read_bytes()
    other = _train_tiny(tmp_path / "other", seed=1)
    shutil.copy(other, ckpt)   # same path, same mtime resolution aside: only the content tells them apart
    capsys.readouterr()
    _build(ckpt, build, "--stop-step", "export", quiet=False)
    assert "options changed (model_sha): redoing export" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    _build(other, fresh, "--stop-step", "export")
    after = (build / "export" / "model.qonnx.onnx").read_bytes()
    assert after != before and after == (fresh / "export" / "model.qonnx.onnx").read_bytes()
