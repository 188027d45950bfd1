"""sbnn deletes only what it can prove it wrote, and one process at a time writes a build directory.

Each data-loss case of the old flow is reproduced here: `sbnn compile` removed a whole --build-dir that
held a step_*.onnx (user files included), `sbnn build` removed its own input when it lay in a stage
folder, a rerun without Vivado deleted a bitstream copied by hand into deploy/, and two builds could
write one directory at once. One tiny model (784-16-10, one epoch on 500 images) and one build of it
serve every case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("finn")

from sbnn import workdir  # noqa: E402
from sbnn.cli import main  # noqa: E402
from sbnn.errors import UserError  # noqa: E402

# no vivado on PATH (the build stops at a ready project); the venv's bin first: Verilator's make calls `python`
PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
FRAMES = "20"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    cfg = TrainConfig(dataset="mnist-5k", model="mlp", hidden="16", epochs=1, train_subset=500, batch_size=128,
                      domain="alpha-beta", ec=0.1)
    train(cfg, out, progress=False)
    return out / "checkpoint.pt"


def _build_args(ckpt, build) -> list[str]:
    return ["build", str(ckpt), "--build-dir", str(build), "--frames", FRAMES, "--quiet"]


@pytest.fixture(scope="module")
def tiny_build(tiny_ckpt, tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("tiny_build") / "b"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", PATH)
        mp.delenv("XILINX_VIVADO", raising=False)
        assert main(_build_args(tiny_ckpt, build)) == 0
    return build


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sbnn: error:") and "Traceback" not in err, err
    return err


def test_rtlsim_stage_simulates_the_stitched_design_as_is(tiny_build):
    """The rtlsim stage reads the stitch stage's folder and writes nothing there (no second stitch)."""
    stitch_done = (tiny_build / "stitch" / ".done").stat().st_mtime_ns
    written = [p for p in (tiny_build / "stitch").rglob("*")
               if p.is_file() and p.name not in (".done", workdir.MARKER, workdir.LOCK)]
    assert written and max(p.stat().st_mtime_ns for p in written) <= stitch_done
    sim = json.loads((tiny_build / "rtlsim" / "rtlsim.json").read_text())
    assert sim["stitched_dir"] == str(tiny_build / "stitch") and sim["stitch_s"] == 0 and sim["bit_exact"]
    assert sim["data"] == "test", "the data set comes from the compile report"


# ---- sbnn compile ------------------------------------------------------------------------
def test_compile_refuses_a_foreign_build_dir_and_keeps_its_files(tiny_build, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "step_01_experiment.onnx").write_text("my own model")   # the old compile wiped the dir for this
    rc = main(["compile", str(tiny_build / "export" / "model.qonnx.onnx"), "--build-dir", str(mine)])
    assert rc == 2
    assert "not created by sbnn" in _one_line_error(capsys)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "step_01_experiment.onnx"]


def test_compile_rerun_removes_only_what_it_wrote(tiny_build, tmp_path, capsys):
    model = tiny_build / "export" / "model.qonnx.onnx"
    b = tmp_path / "b"
    assert main(["compile", str(model), "--build-dir", str(b)]) == 0
    (b / "notes.txt").write_text("added by hand")
    assert main(["compile", str(model), "--build-dir", str(b), "--weight-mode", "memory"]) == 0
    capsys.readouterr()
    assert (b / "notes.txt").read_text() == "added by hand"
    rep = json.loads((b / "compile_report.json").read_text())
    assert rep["weight_mode"] == "memory" and (b / "step_06_infer_kernels.onnx").is_file()
    # an input inside what a rerun would remove: refused before anything is removed
    step = b / "step_01_qonnx_cleanup.onnx"
    with pytest.raises(UserError) as e:
        from sbnn.export.compile import compile_model
        compile_model(step, b)
    assert "lies inside" in str(e.value) and "\n" not in str(e.value)
    assert step.is_file() and (b / "compile_report.json").is_file()


def test_compile_report_is_independent_of_the_working_directory(tiny_build, tmp_path, monkeypatch):
    """Absolute paths and the data set recorded from the export (not guessed from file names)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from sbnn.export.compile import compile_model
    from sbnn.flow.sim import reference
    from sbnn.hls.stitch import load_design

    rep = json.loads((tiny_build / "compile" / "compile_report.json").read_text())
    assert rep["dataset"] == "mnist-5k"
    assert Path(rep["model"]).is_absolute() and Path(rep["build_dir"]).is_absolute()
    design = load_design(tiny_build / "stitch")
    monkeypatch.chdir(tmp_path)
    stim = reference(tiny_build / "compile" / "hw_graph.onnx", tiny_build / "compile", design, 5)
    assert stim.data == "test" and stim.labels is not None and stim.x.shape[0] == 5
    # a QONNX model from elsewhere (no sbnn metadata) has no data set: random stimulus, as before
    m = ModelWrapper(str(tiny_build / "export" / "model.qonnx.onnx"))
    del m.model.graph.metadata_props[:]
    m.save("foreign.onnx")
    rep = compile_model("foreign.onnx", "foreign_build", weight_mode="baked")
    assert rep["dataset"] is None and Path(rep["model"]) == (tmp_path / "foreign.onnx").resolve()
    stim = reference(tmp_path / "foreign_build" / "hw_graph.onnx", tmp_path / "foreign_build", design, 5)
    assert stim.data == "random"


def test_sim_refuses_a_foreign_stitch_dir(tiny_build, tmp_path, capsys):
    st = tmp_path / "st"
    (st / "rtl").mkdir(parents=True)
    (st / "rtl" / "mine.v").write_text("module mine; endmodule\n")   # stitch() would rmtree rtl/
    assert main(["sim", str(tiny_build / "compile"), "--frames", "2", "--stitch-dir", str(st)]) == 2
    assert "not created by sbnn" in _one_line_error(capsys)
    assert (st / "rtl" / "mine.v").is_file()


# ---- sbnn build --------------------------------------------------------------------------
def test_build_refuses_its_input_inside_the_build_dir(tiny_ckpt, tmp_path, capsys, monkeypatch):
    """Old flow: the checkpoint at DIR/export/checkpoint.pt was deleted with the export folder, then 'not found'."""
    monkeypatch.setenv("PATH", PATH)
    b = tmp_path / "b"
    ckpt = b / "export" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(tiny_ckpt, ckpt)
    assert main(_build_args(ckpt, b)) == 2
    err = _one_line_error(capsys)
    assert "not created by sbnn" in err and "not found" not in err
    assert ckpt.is_file()
    # the same inside a build folder sbnn owns: the export stage folder is about to be redone
    own = tmp_path / "own"
    workdir.claim(own, "build")
    workdir.claim(own / "export", "export")
    ckpt2 = own / "export" / "checkpoint.pt"
    shutil.copy(tiny_ckpt, ckpt2)
    assert main(_build_args(ckpt2, own)) == 2
    assert "lies inside" in _one_line_error(capsys)
    assert ckpt2.is_file() and not (own / "compile").exists(), "stopped before any stage ran"


def test_missing_or_foreign_options_json_means_rebuild(tiny_build):
    from sbnn.flow.build import OPTIONS, _to_redo, recorded_options
    from sbnn.flow.config import BuildConfig

    opts = json.loads((tiny_build / OPTIONS).read_text())
    cfg = BuildConfig(model=opts["model"], build_dir=str(tiny_build), frames=int(FRAMES))
    assert _to_redo(tiny_build, recorded_options(cfg))[0] == [], "same options: everything reused"
    saved = (tiny_build / OPTIONS).read_text()
    try:
        (tiny_build / OPTIONS).unlink()
        redo, _, why = _to_redo(tiny_build, recorded_options(cfg))
        assert redo == ["export", "compile", "stitch", "estimate", "rtlsim"] and "no options.json" in why
        (tiny_build / OPTIONS).write_text(json.dumps({k: v for k, v in opts.items() if k != "format"}))
        assert _to_redo(tiny_build, recorded_options(cfg))[0] == redo
    finally:
        (tiny_build / OPTIONS).write_text(saved)


def test_a_changed_compiler_redoes_compile_not_training(tiny_build, monkeypatch):
    """A cost-model refit or an RTL generator change (the compiler's sources) redoes compile and what follows."""
    from sbnn.flow import build
    from sbnn.flow.config import BuildConfig

    opts = json.loads((tiny_build / build.OPTIONS).read_text())
    assert opts["compiler_sha"] == build.compiler_sha()
    cfg = BuildConfig(model=opts["model"], build_dir=str(tiny_build), frames=int(FRAMES))
    monkeypatch.setattr(build, "compiler_sha", lambda: "another compiler")
    redo, changed, why = build._to_redo(tiny_build, build.recorded_options(cfg))
    assert changed == ["compiler_sha"] and "compiler_sha" in why
    assert redo == ["compile", "stitch", "estimate", "rtlsim"]


def test_hand_built_bitstream_is_kept_until_its_rtl_changes(tiny_build, tiny_ckpt, capsys, monkeypatch):
    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    deploy, vivado = tiny_build / "deploy", tiny_build / "vivado"
    bit, hwh = deploy / "sbnn_accel.bit", deploy / "sbnn_accel.hwh"
    # 1. copied by hand into deploy/ (what the deploy README says to do): a rerun without Vivado keeps it
    bit.write_bytes(b"HANDBIT")
    hwh.write_text("<hand/>")
    assert main(_build_args(tiny_ckpt, tiny_build)) == 0
    err = capsys.readouterr().err
    assert "kept the bitstream copied by hand" in err
    assert bit.read_bytes() == b"HANDBIT" and hwh.read_text() == "<hand/>"
    report = json.loads((tiny_build / "report.json").read_text())
    assert report["complete"] is True and "sbnn_accel.bit" in report["deploy"]["files"]
    assert not (deploy / ".kept_bitstream").exists()
    # 2. built by hand in the Vivado project (same RTL and Tcl): packaged into deploy/
    bit.unlink()
    hwh.unlink()
    (vivado / "output").mkdir(exist_ok=True)
    (vivado / "output" / "sbnn_accel.bit").write_bytes(b"VIVADOBIT")
    (vivado / "output" / "sbnn_accel.hwh").write_text("<vivado/>")
    assert main(_build_args(tiny_ckpt, tiny_build)) == 0
    capsys.readouterr()
    assert bit.read_bytes() == b"VIVADOBIT" and json.loads((tiny_build / "report.json").read_text())["complete"]
    # 3. the RTL changes: the bitstream no longer belongs to the design and is removed
    top = tiny_build / "stitch" / "rtl" / "sbnn_dataflow_top.v"
    original = top.read_text()
    try:
        top.write_text(original + "// changed\n")
        assert main(_build_args(tiny_ckpt, tiny_build)) == 0
        capsys.readouterr()
        assert not bit.exists() and not hwh.exists() and not (vivado / "output" / "sbnn_accel.bit").exists()
        assert json.loads((tiny_build / "report.json").read_text())["complete"] is False
    finally:
        top.write_text(original)


def test_deploy_states_the_accuracy_the_driver_measures_on_its_images(tiny_build, monkeypatch):
    """The shipped driver, over the stitched RTL in Verilator, measures on test_images.npy exactly the accuracy
    config.json and the README state; the rtlsim figure (other frames) is stated apart, with its frame count."""
    from sbnn.bitstreams.driver import Accelerator, SimBackend
    from sbnn.bitstreams.simbackend import stitched_rtlsim_transfer
    from sbnn.hls.stitch import load_design

    monkeypatch.setenv("PATH", PATH)
    deploy = tiny_build / "deploy"
    conf = json.loads((deploy / "config.json").read_text())
    images, labels = np.load(deploy / "test_images.npy"), np.load(deploy / "test_labels.npy")
    sim = json.loads((tiny_build / "rtlsim" / "rtlsim.json").read_text())
    assert conf["expected_accuracy_images"] == len(images) == 100 != int(FRAMES)
    assert conf["accuracy_rtlsim"] == sim["accuracy_rtl"] and conf["accuracy_rtlsim_frames"] == int(FRAMES)
    acc = Accelerator(deploy / "config.json", SimBackend(stitched_rtlsim_transfer(
        load_design(tiny_build / "stitch"), build_dir=tiny_build / "verilator"), "stitched"))
    assert acc.accuracy(images, labels) == conf["expected_accuracy"]
    readme = (deploy / "README.md").read_text()
    assert f"**{100 * conf['expected_accuracy']:.2f} %** (the hardware's outputs for exactly these images)" in readme
    assert f"Over the {FRAMES} frames verified in rtlsim" in readme


def test_interrupted_rebuild_with_changed_options_leaves_nothing_current(tiny_build, tiny_ckpt, capsys,
                                                                         monkeypatch):
    """Changed options invalidate the stages they affect and the old design's deploy package and Vivado
    project before the first redone stage starts: interrupted there, nothing of the old design looks current;
    what the option does not affect is kept, and the next run finishes the build."""
    from sbnn.flow import build as build_mod

    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    deploy, vivado, rtlsim = tiny_build / "deploy", tiny_build / "vivado", tiny_build / "rtlsim"
    assert (deploy / "config.json").is_file() and (rtlsim / "rtlsim.json").is_file()
    stitch_done = (tiny_build / "stitch" / ".done").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(build_mod, "stage_rtlsim", interrupted)
        assert main(["build", str(tiny_ckpt), "--build-dir", str(tiny_build), "--frames", "12", "--quiet"]) == 130
    capsys.readouterr()
    assert json.loads((tiny_build / "options.json").read_text())["frames"] == 12
    assert not (rtlsim / "rtlsim.json").exists() and not (rtlsim / ".done").exists()
    left = [p.name for p in [*deploy.iterdir(), *vivado.iterdir()] if p.name in
            ("config.json", "README.md", "driver.py", "test_images.npy", "test_labels.npy", "build_vivado.tcl", "rtl")]
    assert not left, f"the old design's deploy package / Vivado project still look current: {left}"
    assert not (tiny_build / "report.json").exists() and not (tiny_build / "report.md").exists()
    assert (tiny_build / "stitch" / ".done").read_bytes() == stitch_done, "stages before rtlsim are reused"
    assert (tiny_build / "estimate" / ".done").is_file()
    # the next run (the original options again) finishes the build
    assert main(_build_args(tiny_ckpt, tiny_build)) == 0
    capsys.readouterr()
    report = json.loads((tiny_build / "report.json").read_text())
    assert report["frames_verified"] == int(FRAMES) and (deploy / "config.json").is_file()
    assert (vivado / "build_vivado.tcl").is_file()


def _wait_for_lock(build: Path, proc: subprocess.Popen, timeout: float) -> None:
    t0 = time.time()
    lock = build / workdir.LOCK
    while not (lock.is_file() and lock.read_text().strip() == str(proc.pid)):
        if proc.poll() is not None:
            raise AssertionError(f"first build ended (rc {proc.returncode}) before taking the lock: "
                                 f"{proc.stderr.read()}")
        if time.time() - t0 > timeout:
            raise AssertionError(f"the first build did not take the lock within {timeout} s")
        time.sleep(0.1)


@pytest.mark.slow   # a whole build (20-40 s): the slow tier, which CI also runs
def test_two_builds_on_one_directory(tiny_ckpt, tmp_path):
    b = tmp_path / "b"
    env = {**os.environ, "PATH": PATH}
    cmd = [sys.executable, "-m", "sbnn.cli", *_build_args(tiny_ckpt, b)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # see test_build_resume_fit
    try:
        _wait_for_lock(b, first, 120)
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert first.poll() is None, "the first build must still be running"
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by PID {first.pid}" in lines[0], second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        try:
            first.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.communicate()
    # the first build was interrupted: its lock went with it, and the next run resumes there
    with workdir.DirLock(b):
        pass
