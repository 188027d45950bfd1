"""The deploy README's board checklist: exact commands, the lines the driver prints, the figures to expect.

Default tier: the checklist of a package, its figures (accuracy on the shipped images, frames/s at the
board clock from rtlsim's cycles per frame) as given and as config.json records them, and the expected
lines exactly as driver.py formats them. Slow tier: an `sbnn build` whose checklist figures are the
build's own measurements (report.json's shipped-image accuracy, rtlsim.json's cycles per frame).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sbnn.bitstreams.deploy import make_deploy_package
from sbnn.bitstreams.packing import random_frames
from sbnn.bitstreams.simbackend import node_io
from sbnn.bitstreams.vivado import generate_vivado_project

from support_rtl import tiny_node_config, write_node_rtl


def _checklist(readme: str) -> str:
    return readme.split("## Board checklist\n", 1)[1].split("\n## ", 1)[0]


def test_checklist_states_the_measured_figures(tmp_path):
    cfg = tiny_node_config(MW=48, MH=10, PE=5, SIMD=12, seed=3)
    i, o, meaning = node_io(cfg)
    proj = generate_vivado_project(write_node_rtl(cfg, tmp_path / "st"), cfg.name, {"input": i, "output": o},
                                   "zcu104", tmp_path / "vivado", extra={"meaning": meaning})
    a = random_frames(i, 20, 1)
    pkg = make_deploy_package(proj, tmp_path / "deploy", images=a, labels=cfg.reference(a).argmax(axis=1),
                              expected_accuracy=0.85, rtlsim_cycles_per_frame=98.5)
    conf = json.loads((pkg.path / "config.json").read_text())
    assert conf["rtlsim_cycles_per_frame"] == 98.5 and conf["expected_fps"] == round(187.5e6 / 98.5, 1)
    text = _checklist((pkg.path / "README.md").read_text())
    cmd = "sudo /usr/local/share/pynq-venv/bin/python3 driver.py --throughput 10000"
    assert f"In `~/deploy`, run `{cmd}`" in text
    # the lines driver.py prints, with its own formats
    assert "       classified 20 frames in <seconds> s (<rate> frames/s end to end)\n" in text
    assert "       accuracy 0.8500 (expected 0.8500 on these images)\n" in text
    assert "10000 frames, batch 1000\n" in text
    assert "about 1,903,553 frames/s (rtlsim: 98.5 cycles per frame at 187.5 MHz)" in text
    assert "Build the bitstream first" in text   # no Vivado here: the package has no .bit yet
    steps = re.findall(r"^(\d+)\. ", text, flags=re.M)
    assert steps == [str(k) for k in range(1, len(steps) + 1)]


def test_checklist_without_images_or_rtlsim(tmp_path):
    cfg = tiny_node_config()
    i, o, meaning = node_io(cfg)
    proj = generate_vivado_project(write_node_rtl(cfg, tmp_path / "st"), cfg.name, {"input": i, "output": o},
                                   "pynq-z2", tmp_path / "vivado", extra={"meaning": meaning})
    pkg = make_deploy_package(proj, tmp_path / "pkg", expected_accuracy=0.9)
    conf = json.loads((pkg.path / "config.json").read_text())
    assert conf["rtlsim_cycles_per_frame"] is None and conf["expected_fps"] is None
    text = _checklist((pkg.path / "README.md").read_text())
    assert "accuracy" not in text and "frames/s (rtlsim" not in text and "test_images.npy" not in text
    assert "`ls ~/pkg`" in text and "scp -r pkg xilinx@<board>:~/" in (pkg.path / "README.md").read_text()


@pytest.mark.slow
def test_build_checklist_figures_come_from_the_build(tmp_path):
    """A whole `sbnn build` (no Vivado on PATH): the README's accuracy and frames/s are the build's."""
    pytest.importorskip("finn")
    from sbnn.cli import main
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    train(TrainConfig(dataset="mnist-5k", model="mlp", hidden="16", epochs=1, train_subset=500, batch_size=128,
                      domain="alpha-beta", ec=0.1), tmp_path / "run", progress=False)
    build = tmp_path / "build"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]))
        mp.delenv("XILINX_VIVADO", raising=False)
        assert main(["build", str(tmp_path / "run" / "checkpoint.pt"), "--build-dir", str(build), "--frames", "50",
                     "--quiet"]) == 0
    report = json.loads((build / "report.json").read_text())
    cycles = json.loads((build / "rtlsim" / "rtlsim.json").read_text())["cycles_per_frame"]
    conf = json.loads((build / "deploy" / "config.json").read_text())
    acc, n = report["deploy"]["expected_accuracy"], report["deploy"]["expected_accuracy_images"]
    assert acc is not None and n == len(np.load(build / "deploy" / "test_labels.npy"))
    assert conf["rtlsim_cycles_per_frame"] == cycles and conf["expected_fps"] == round(100e6 / cycles, 1)
    text = _checklist((build / "deploy" / "README.md").read_text())
    assert f"accuracy {acc:.4f} (expected {acc:.4f} on these images)" in text
    assert f"classified {n} frames" in text
    assert f"about {100e6 / cycles:,.0f} frames/s (rtlsim: {cycles:g} cycles per frame at 100 MHz)" in text
