"""Clear failures (bad folding, missing Verilator, timeouts) and lint cleanliness
of the generated Verilog (Verilator -Wall, with the waivers documented in rtlgen)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.rtlsim import simulate
from sbnn.hls.verilator import RtlsimTimeout, VerilatorNotFoundError, find_verilator, verilator_env


def cfg(mw=16, mh=8, pe=2, simd=4, mode="baked", no_act=False, r=-1, k=1, seed=0):
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) < 0.3).astype(np.int64)
    mask[:, 0] = 0
    thr = None if no_act else rng.integers(-4, 8, mh)
    return SparseMVAUConfig(mw, mh, pe, simd, k, mask, r, thr, weight_mode=mode, no_activation=no_act)


@pytest.mark.parametrize("pe,simd", [(3, 4), (2, 5)])
def test_bad_folding_is_one_clear_line(pe, simd):
    with pytest.raises(ValueError) as e:
        cfg(pe=pe, simd=simd)
    msg = str(e.value)
    assert "\n" not in msg and f"PE={pe}" in msg and f"SIMD={simd}" in msg and "MH=8" in msg and "MW=16" in msg


def test_missing_verilator_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SBNN_VERILATOR_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(VerilatorNotFoundError) as e:
        simulate(cfg(), np.zeros((2, 16), np.int64), build_dir=tmp_path)
    assert str(e.value).startswith("Verilator not found") and "\n" not in str(e.value)


def test_missing_tools_on_empty_path(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(VerilatorNotFoundError, match="needs `perl` on PATH"):
        find_verilator()


def test_timeout_reports_cycles_reached():
    c = cfg(pe=1, simd=1)
    with pytest.raises(RtlsimTimeout) as e:
        simulate(c, np.ones((50, 16), np.int64), max_cycles=100)
    assert "max_cycles=100" in str(e.value) and "100 cycles simulated" in str(e.value)


@pytest.mark.parametrize("mode", ["baked", "memory"])
@pytest.mark.parametrize("pe,simd,no_act,r,k", [(1, 1, False, -1, 1), (2, 4, True, 3, 2), (8, 16, False, 0, 0),
                                                 (4, 2, True, -5, 1), (8, 1, False, 2, 0)])
def test_verilator_lint_wall_clean(tmp_path, mode, pe, simd, no_act, r, k):
    root = find_verilator()
    v = tmp_path / "sparse_mvau.v"
    v.write_text(generate_verilog(cfg(pe=pe, simd=simd, mode=mode, no_act=no_act, r=r, k=k)))
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(v)], env=verilator_env(root),
                         capture_output=True, text=True)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
