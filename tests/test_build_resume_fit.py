"""`sbnn build` at the build level: a design too big for the board stops early with a one-line error and
no report; a build interrupted by Ctrl-C resumes at the first unfinished stage and finishes bit-exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sbnn.cli import main

pytest.importorskip("finn")

# no vivado on PATH; the venv's bin first, because Verilator's generated makefile runs `python`
NO_VIVADO_PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def _train(out: Path, hidden: str, ec: float, subset: int) -> Path:
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    cfg = TrainConfig(dataset="mnist-5k", model="mlp", hidden=hidden, epochs=1, train_subset=subset,
                      batch_size=128, domain="alpha-beta", ec=ec)
    train(cfg, out, progress=False)
    return out / "checkpoint.pt"


@pytest.mark.slow   # a whole build (20-40 s): the slow tier, which CI also runs
def test_design_that_does_not_fit_stops_after_compile(tmp_path, capsys, monkeypatch):
    """784-256-256-10 at EC 0.5, fully unrolled (a huge --target-fps): ~300k LUT of popcounts, pynq-z2 has 53,200."""
    monkeypatch.setenv("PATH", NO_VIVADO_PATH)
    ckpt = _train(tmp_path / "run", "256,256", 0.5, 500)
    build = tmp_path / "b"
    t0 = time.perf_counter()
    rc = main(["build", str(ckpt), "--board", "pynq-z2", "--build-dir", str(build), "--target-fps", "1e9",
               "--quiet"])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == 2 and "Traceback" not in err, err
    # one error line, after the warning that 1e9 FPS is beyond the input stream anyway (test_lossy_warnings.py)
    assert len(lines) == 2 and lines[0].startswith("sbnn: warning: --target-fps 1,000,000,000 is out of reach")
    assert lines[1].startswith("sbnn: error:"), err
    assert "does not fit xc7z020clg400-1 (pynq-z2) by estimate" in err and "LUT" in err and "> 53,200" in err
    assert "--target-fps" in err, "the message says what to do"
    assert time.perf_counter() - t0 < 120, "fails before Yosys and rtlsim, not after them"
    assert (build / "compile" / ".done").is_file(), "the compile result is kept for inspection"
    assert not (build / "report.json").exists() and not (build / "report.md").exists()
    assert not (build / "stitch").exists() and not (build / "rtlsim").exists()
    # the same model folded (default PE = SIMD = 1) fits: the fix the message suggests is taken up on rerun
    comp = json.loads((build / "compile" / "compile_report.json").read_text())
    assert max(r["PE"] or 1 for r in comp["layers"] if r["op"] == "SparseXnorMVAU") > 1


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"build ended (rc {proc.returncode}) before {path} appeared: "
                                 f"{proc.stderr.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_interrupted_build_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", NO_VIVADO_PATH)  # no vivado
    ckpt = _train(tmp_path / "run", "32,32", 0.1, 2000)
    build = tmp_path / "b"
    args = ["build", str(ckpt), "--board", "pynq-z2", "--build-dir", str(build), "--frames", "300"]
    sbnn = [sys.executable, "-m", "sbnn.cli"]
    env = {**os.environ, "PATH": NO_VIVADO_PATH}
    # SIGINT back to its default in the child: a suite started in the background of a non-interactive shell
    # (nohup ... &) ignores SIGINT, the ignore is inherited, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(sbnn + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # interrupt while rtlsim runs (its Verilator build takes tens of seconds)
    _wait_for(build / "estimate" / ".done", proc, 600)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sbnn: interrupted") and "run the same command again to resume" in last
    assert "Traceback" not in err
    assert not (build / "report.json").exists() and not (build / "report.md").exists(), "must not look complete"
    assert not (build / "rtlsim" / ".done").exists()
    kept = {s: (build / s / ".done").stat().st_mtime_ns for s in ("export", "compile", "stitch", "estimate")}

    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == 0, err
    for stage in kept:
        assert f"{stage}: done, reused" in err
        assert (build / stage / ".done").stat().st_mtime_ns == kept[stage], f"{stage} was redone"
    report = json.loads((build / "report.json").read_text())
    assert report["bit_exact"] is True and report["frames_verified"] == 300
    assert report["accuracy_rtlsim"] == report["accuracy_qonnx"]
    assert (build / "report.md").is_file() and (build / "report_layers.png").stat().st_size > 10_000

    # other options redo only the stages they affect: more frames -> rtlsim again, compile kept
    rc = main(args[:-1] + ["400", "--quiet"])
    assert rc == 0
    assert (build / "compile" / ".done").stat().st_mtime_ns == kept["compile"]
    assert json.loads((build / "report.json").read_text())["frames_verified"] == 400
