"""Deploy package: contents, config.json, README, and the shipped driver.py running standalone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from sbnn.bitstreams import driver as driver_mod
from sbnn.bitstreams import packing as packing_mod
from sbnn.bitstreams.deploy import make_deploy_package
from sbnn.bitstreams.packing import pack_frames, random_frames
from sbnn.bitstreams.simbackend import node_io
from sbnn.bitstreams.vivado import generate_vivado_project
from sbnn.errors import UserError
from sbnn.hls import streams as streams_mod

from support_rtl import tiny_node_config, write_node_rtl


@pytest.fixture
def project(tmp_path):
    cfg = tiny_node_config(MW=48, MH=10, PE=5, SIMD=12, seed=3)
    rtl = write_node_rtl(cfg, tmp_path / "stitched")
    i, o, meaning = node_io(cfg)
    proj = generate_vivado_project(rtl, cfg.name, {"input": i, "output": o}, "ultra96-v2", tmp_path / "vivado",
                                   extra={"meaning": meaning})
    return cfg, proj


def test_package_without_bitstream(project, tmp_path):
    cfg, proj = project
    a = random_frames(node_io(cfg)[0], 20, 1)
    labels = cfg.reference(a).argmax(axis=1)
    pkg = make_deploy_package(proj, tmp_path / "deploy", images=a, labels=labels, expected_accuracy=0.9317)
    assert not pkg.complete and "without bitstream" in pkg.message
    assert not list(pkg.path.glob("*.bit")) and not list(pkg.path.glob("*.hwh"))
    for name, mod in (("driver.py", driver_mod), ("packing.py", packing_mod), ("streams.py", streams_mod)):
        assert (pkg.path / name).read_text() == open(mod.__file__).read(), f"{name} is shipped verbatim"
    conf = json.loads((pkg.path / "config.json").read_text())
    assert conf["board"] == "ultra96-v2" and conf["fclk_mhz"] == 150.0 and conf["bitfile"] == "sbnn_accel.bit"
    assert conf["input"]["shape"] == [48] and conf["input"]["elems_per_beat"] == 12 and conf["input"]["dma_bits"] == 16
    assert conf["output"]["kind"] == "int" and conf["output"]["meaning"] == "scores"
    assert conf["runtime_weights"] is None and conf["ip"] == {"dma": "dma", "out_beats": "out_beats", "accel": "accel"}
    readme = (pkg.path / "README.md").read_text()
    # PYNQ >= 2.7: pynq lives in the PYNQ virtualenv; the folder copied is the one written
    assert "sudo /usr/local/share/pynq-venv/bin/python3 driver.py --throughput 10000" in readme
    assert "sudo python3 driver.py" not in readme and "source /etc/profile.d/pynq_venv.sh" in readme
    assert "scp -r deploy xilinx@<board>:~/" in readme and "\n    cd deploy\n" in readme
    assert "93.17 %" in readme and "not built yet" in readme and "vivado -mode batch -source build_vivado.tcl" in readme
    assert np.array_equal(np.load(pkg.path / "test_images.npy"), a)


def test_package_states_the_accuracy_of_its_own_images_apart_from_rtlsim(project, tmp_path):
    """The expected accuracy is the one on the shipped images; the rtlsim figure (other, more frames) is
    labelled with its frame count and never presented as what the shipped images give."""
    cfg, proj = project
    a = random_frames(node_io(cfg)[0], 20, 1)
    pkg = make_deploy_package(proj, tmp_path / "deploy", images=a, labels=cfg.reference(a).argmax(axis=1),
                              expected_accuracy=0.85, rtlsim_accuracy=0.9317, rtlsim_frames=1000)
    conf = json.loads((pkg.path / "config.json").read_text())
    assert conf["expected_accuracy"] == 0.85 and conf["expected_accuracy_images"] == 20
    assert conf["accuracy_rtlsim"] == 0.9317 and conf["accuracy_rtlsim_frames"] == 1000
    readme = (pkg.path / "README.md").read_text()
    assert "Expected accuracy on the 20 shipped test images (`expected_accuracy` in config.json)" in readme
    assert "**85.00 %** (the hardware's outputs for exactly these images)" in readme
    assert "Over the 1,000 frames verified in rtlsim at build time" in readme and "93.17 %" in readme
    assert not list(pkg.path.glob("*.tmp")), "config.json, README.md and the .npy files are written atomically"


def test_package_refuses_bad_test_images(project, tmp_path):
    _, proj = project
    msg = r"deploy test images: expected dtype uint8 \(shape \(N, 48\)\), got dtype float64"
    with pytest.raises(UserError, match=msg):
        make_deploy_package(proj, tmp_path / "deploy", images=np.zeros((3, 48)))


STANDALONE = r"""
import hashlib, json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from driver import Accelerator, SimBackend
assert "sbnn" not in sys.modules, "the shipped driver must not need sbnn"
conf = json.load(open(sys.argv[1] + "/config.json"))
seen = []
def transfer(p):
    seen.append(p.copy())
    return np.zeros((p.shape[0], conf["output"]["frame_bytes"]), np.uint8)
acc = Accelerator(sys.argv[1] + "/config.json", SimBackend(transfer))
x = np.load(sys.argv[1] + "/test_images.npy")
print(acc.infer(x).tolist())
print(hashlib.sha256(np.concatenate(seen).tobytes()).hexdigest())
"""


def test_shipped_driver_runs_standalone(project, tmp_path):
    """driver.py + packing.py + streams.py from the package, outside sbnn: same packed words as the host, clear CLI errors."""
    cfg, proj = project
    a = random_frames(node_io(cfg)[0], 9, 2)
    pkg = make_deploy_package(proj, tmp_path / "deploy", images=a)
    res = subprocess.run([sys.executable, "-c", STANDALONE, str(pkg.path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    labels, digest = res.stdout.split("\n")[:2]
    assert json.loads(labels) == [0] * 9
    assert digest == hashlib.sha256(pack_frames(a, node_io(cfg)[0]).tobytes()).hexdigest()
    # on the host there is no pynq: the board CLI stops with one line and status 2
    res = subprocess.run([sys.executable, str(pkg.path / "driver.py")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("driver.py: error: pynq is not installed")
    res = subprocess.run([sys.executable, str(pkg.path / "driver.py"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--throughput" in res.stdout


def _fake_stitch_dir(tmp_path):
    from support_rtl import write_finn_style_rtl

    out = tmp_path / "stitched"
    write_finn_style_rtl(out / "rtl", in_bits=8, out_bits=8)
    (out / "stitch.json").write_text(json.dumps({
        "top": "sbnn_dataflow_top", "out_dir": str(out), "hw_graph": "-", "files": ["sbnn_dataflow_top.v"],
        "nodes": [{"name": "ls", "op_type": "LabelSelect_hls", "impl": "sbnn-labelselect", "module": "ls",
                   "in_width": 8, "out_width": 8, "exp_cycles": 10, "files": []}],
        "in_dtype": "UINT8", "out_dtype": "UINT8", "in_shape": [1, 784], "out_shape": [1, 1], "in_fold": 1,
        "in_beats": 784, "out_fold": 1, "out_beats": 1, "in_width": 8, "out_width": 8, "est_cycles_per_frame": 784,
        "bottleneck": "ls", "rtl_hash": "0"}))
    return out


def test_vivado_and_deploy_stages_without_vivado(tmp_path, monkeypatch):
    from sbnn.bitstreams.deploy import vivado_and_deploy

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    rep = vivado_and_deploy(_fake_stitch_dir(tmp_path), "pynq-z1", tmp_path / "vivado", tmp_path / "deploy",
                            images=np.zeros((2, 784), np.uint8), labels=np.array([3, 4]), expected_accuracy=0.5)
    assert rep["complete"] is False and rep["vivado"]["status"] == "project_ready"
    assert rep["deploy"]["complete"] is False and "test_labels.npy" in rep["deploy"]["files"]
    conf = json.loads((tmp_path / "deploy" / "config.json").read_text())
    assert conf["output"]["meaning"] == "class_index" and conf["expected_accuracy"] == 0.5
    assert conf["board"] == "pynq-z1" and conf["input"]["dma_bits"] == 8


def test_vivado_and_deploy_needs_a_stitched_design(tmp_path):
    from sbnn.bitstreams.deploy import vivado_and_deploy

    with pytest.raises(UserError, match="holds no stitched design"):
        vivado_and_deploy(tmp_path, "pynq-z2", tmp_path / "v", tmp_path / "d")


def test_repackaging_picks_up_a_bitstream_built_by_hand(project, tmp_path):
    _, proj = project
    out = proj / "output"
    out.mkdir(exist_ok=True)
    (out / "sbnn_accel.bit").write_bytes(b"BIT")
    (out / "sbnn_accel.hwh").write_text("<hwh/>")
    pkg = make_deploy_package(proj, tmp_path / "deploy")
    assert pkg.complete and (pkg.path / "sbnn_accel.bit").read_bytes() == b"BIT"
    assert "not built yet" not in (pkg.path / "README.md").read_text()
