"""Running Vivado: a fake `vivado` on PATH, Vivado missing (not an error), Vivado failing (one-line error)."""

from __future__ import annotations

import json
import os

import pytest

from sbnn.bitstreams.deploy import make_deploy_package
from sbnn.bitstreams.simbackend import node_io
from sbnn.bitstreams.vivado import generate_vivado_project, run_vivado
from sbnn.errors import UserError

from support_rtl import tiny_node_config, write_fake_vivado, write_node_rtl


@pytest.fixture
def project(tmp_path):
    cfg = tiny_node_config()
    rtl = write_node_rtl(cfg, tmp_path / "stitched")
    i, o, meaning = node_io(cfg)
    return generate_vivado_project(rtl, cfg.name, {"input": i, "output": o}, "pynq-z2", tmp_path / "vivado",
                                   extra={"meaning": meaning})


@pytest.fixture
def fake_vivado(tmp_path, monkeypatch):
    exe = write_fake_vivado(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    return exe


def test_fake_vivado_run_and_deploy(project, fake_vivado, tmp_path):
    res = run_vivado(project)
    calls = [json.loads(ln) for ln in (fake_vivado.parent / "vivado_calls.jsonl").read_text().splitlines()]
    assert len(calls) == 1
    assert calls[0]["argv"] == ["-mode", "batch", "-source", "build_vivado.tcl"]
    assert os.path.samefile(calls[0]["cwd"], project)
    assert res.built and res.status == "built" and res.vivado == str(fake_vivado)
    assert res.bit == project / "output" / "sbnn_accel.bit" and res.hwh == project / "output" / "sbnn_accel.hwh"
    assert "fake vivado done" in res.log.read_text() and res.summary["wns_ns"] == 0.125
    pkg = make_deploy_package(project, tmp_path / "deploy", vivado_result=res)
    assert pkg.complete
    assert (pkg.path / "sbnn_accel.bit").read_bytes() == b"FAKEBIT"
    assert (pkg.path / "sbnn_accel.hwh").is_file()
    assert {"driver.py", "packing.py", "config.json", "README.md"} <= set(pkg.files)


def test_vivado_missing_is_not_an_error(project, tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    res = run_vivado(project)
    assert res.status == "project_ready" and not res.built and res.bit is None
    assert res.message.startswith("project ready, vivado not found")
    assert str(project) in res.message and "vivado -mode batch -source build_vivado.tcl" in res.message
    assert "\n" not in res.message
    assert res.to_dict()["status"] == "project_ready"


def test_vivado_failure_is_one_line_error_with_log(project, fake_vivado, monkeypatch):
    monkeypatch.setenv("FAKE_VIVADO_MODE", "fail")
    with pytest.raises(UserError) as ei:
        run_vivado(project)
    msg = str(ei.value)
    assert "\n" not in msg and "vivado failed (exit 1)" in msg and "module 'missing_core' not found" in msg
    assert msg.endswith(str(project / "vivado_build.log")) and (project / "vivado_build.log").is_file()


def test_vivado_without_outputs_is_an_error(project, fake_vivado, monkeypatch):
    (project / "output").mkdir(exist_ok=True)
    (project / "output" / "sbnn_accel.bit").write_bytes(b"STALE")  # must not pass for this run's bitstream
    monkeypatch.setenv("FAKE_VIVADO_MODE", "nofiles")
    msg = r"vivado finished but output/sbnn_accel\.bit was not produced; see .*vivado_build\.log"
    with pytest.raises(UserError, match=msg):
        run_vivado(project)
