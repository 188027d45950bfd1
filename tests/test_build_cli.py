"""`sbnn build`: board validation, clear errors, and the embedded-default main job's report."""

import json
import os
import re
import sys
from pathlib import Path

import pytest

from sbnn.bitstreams.boards import BOARDS, get_board
from sbnn.cli import main
from sbnn.errors import UserError

# no vivado on PATH; the venv's bin first, because Verilator's generated makefile runs `python`
NO_VIVADO_PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def test_board_catalog():
    assert {"pynq-z1", "pynq-z2", "ultra96-v2", "zcu104", "kv260"} <= set(BOARDS)
    z2 = get_board("PYNQ-Z2")
    assert z2.part.startswith("xc7z020") and z2.ps == "ps7" and z2.fclk_mhz == 100.0
    assert get_board("kv260").ps == "ps8"
    with pytest.raises(UserError, match="unknown board 'de10'.*pynq-z2"):
        get_board("de10")


def test_unknown_board_is_one_line_error(tmp_path, capsys):
    rc = main(["build", "--board", "de10", "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "unknown board 'de10'" in err
    assert not (tmp_path / "b").exists(), "nothing is created for invalid input"


def test_missing_model_is_one_line_error(tmp_path, capsys):
    rc = main(["build", str(tmp_path / "nope.pt"), "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.pt not found" in err and "Traceback" not in err


def _check_report(build, frames):
    report = json.loads((build / "report.json").read_text())
    assert report["board"] == "pynq-z2" and report["part"].startswith("xc7z020") and report["fclk_mhz"] == 100.0
    assert report["frames_verified"] == frames and report["bit_exact"] is True
    assert report["accuracy_pytorch"] > 0.75, "TFC on the bundled MNIST subset"
    assert report["accuracy_rtlsim"] == report["accuracy_qonnx"], "same frames, bit-exact hardware"
    assert report["weight_sparsity"] == pytest.approx(0.9, abs=0.01)
    base = report["dense_baseline"]
    assert base["source"].startswith("recorded run") and base["accuracy"] > report["accuracy_pytorch"] - 0.02
    assert report["cycles_per_frame"] == pytest.approx(report["cycles_per_frame_estimate"], rel=0.05)
    assert report["latency_cycles"] >= report["cycles_per_frame"]
    assert set(report["resources"]) >= {"LUT", "FF", "BRAM36", "DSP"} and report["resources"]["LUT"] > 0
    assert len(report["layers"]) >= 4 and all("cycles" in layer for layer in report["layers"])
    assert report["vivado"]["status"] in ("project_ready", "built")
    assert (build / "vivado" / "build_vivado.tcl").is_file()
    assert (build / "deploy" / "driver.py").is_file()
    md = (build / "report.md").read_text()
    assert "| dense ±1 baseline, same architecture and data (PyTorch) |" in md and "sparsity costs" in md
    assert "**bit-exact**" in md and f"{frames:,} real test frames" in md and "| SparseXnorMVAU_0 |" in md
    assert (build / "report_layers.png").stat().st_size > 10_000
    return report


# The README's `make build` (1,000 frames) is slow-tier (~90 s); the default tier covers the build's stages in
# the build-dir, resume and stitch tests.
@pytest.mark.slow
@pytest.mark.parametrize("frames", [1000])
def test_embedded_default_full_flow(tmp_path, capsys, frames, monkeypatch):
    monkeypatch.setenv("PATH", NO_VIVADO_PATH)   # no vivado: the build stops at a ready project, not an error
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    build = tmp_path / "b"
    rc = main(["build", "--build-dir", str(build), "--frames", str(frames)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "vivado not found" in err
    _check_log(err, reused=False)
    report = _check_report(build, frames)
    # the acceptance of the throughput-first default (issue 14): finn-examples' tfc_w1a1 rate (837,019 FPS at
    # 100 MHz: <= 119 cycles/frame) with every layer and stream within the clock's logic-depth budget
    assert report["cycles_per_frame"] <= 119
    timing = report["timing"]
    assert timing["risks"] == [], timing["risks"]
    measured = [x for x in timing["layers"] + timing["boundaries"] if x["weighted"] is not None]
    assert len(measured) >= 4 and all(x["weighted"] <= timing["budget"]["levels"] for x in measured)
    # a second run resumes: finished stages (training, rtlsim) are not repeated
    before = (build / "train" / "checkpoint.pt").stat().st_mtime_ns
    sim_before = (build / "rtlsim" / "rtlsim.json").stat().st_mtime_ns
    assert main(["build", "--build-dir", str(build), "--frames", str(frames)]) == 0
    _check_log(capsys.readouterr().err, reused=True)
    assert (build / "train" / "checkpoint.pt").stat().st_mtime_ns == before
    assert (build / "rtlsim" / "rtlsim.json").stat().st_mtime_ns == sim_before
    _check_report(build, frames)


def _check_log(err, reused):
    """The build's progress in a log (stderr is not a terminal here): a line as each stage starts and one with
    its time as it ends (none for a reused stage), one line per epoch, a summary; no bar, no tool output."""
    lines = err.splitlines()
    assert "\r" not in err and len(err) < 5000, err
    stages = [ln.split(": ")[1] for ln in lines if ln.startswith("sbnn build: [")]
    names = ("train", "export", "compile", "stitch", "estimate", "rtlsim", "deploy")
    if reused:
        assert stages == [f"[{i}/7] {s}" for i, s in enumerate(names[:-1], 1)] + ["[7/7] deploy"] * 2, stages
        assert sum("done, reused" in ln for ln in lines) == 6
    else:
        assert stages == [f"[{i}/7] {s}" for i, s in enumerate(names, 1) for _ in (0, 1)], stages
    ends = [ln for ln in lines if ": finished in " in ln]
    assert len(ends) == (1 if reused else 7) and all(re.search(r"in (\d+\.\d s|\d+ min \d+ s)$", ln) for ln in ends)
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epochs) == (0 if reused else 10), epochs
    done = [ln for ln in lines if ln.startswith("sbnn build: done in ")]
    assert len(done) == 1 and "bit-exact on" in done[0] and "cycles/frame" in done[0] and " LUT, " in done[0]
    # anything else is one of a few "sbnn build:" lines (logic depth, report written, vivado, where things are)
    assert [ln for ln in lines if not ln.startswith(("sbnn build: ", "epoch "))] == []
    assert len(lines) <= len(stages) + len(epochs) + 6, lines
