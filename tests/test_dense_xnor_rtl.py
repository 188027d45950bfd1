"""The FINN-style dense XNOR baseline (dense_xnor_rtl.py): rtlsim equals its
reference popc(XNOR(a, w)) >= T, every input bit reaches every neuron, and the
Verilog is Verilator -Wall clean."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.dense_xnor_rtl import dense_xnor_config, dense_xnor_reference
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.rtlsim import simulate
from sbnn.hls.verilator import find_verilator, verilator_env

CONFIGS = [(16, 8, None, None), (16, 8, 2, 4), (12, 6, 3, 1), (7, 5, None, None)]  # MW, MH, PE, SIMD


def config(mw, mh, pe, simd, seed=0):
    rng = np.random.default_rng(seed + mw * mh)
    w = rng.integers(0, 2, (mw, mh))
    return dense_xnor_config(w, rng.integers(-1, mw + 3, mh), rng.integers(0, 2, mh), pe, simd, name="dx")


def test_reference_is_xnor_popcount():
    rng = np.random.default_rng(1)
    a, w = rng.integers(0, 2, (50, 9)), rng.integers(0, 2, (9, 4))
    t = rng.integers(0, 10, 4)
    cnt = (a[:, :, None] == w[None]).sum(axis=1)
    assert np.array_equal(dense_xnor_reference(a, w, t), (cnt >= t).astype(np.int64))


@pytest.mark.parametrize("mw,mh,pe,simd", CONFIGS)
def test_rtlsim_matches_reference(mw, mh, pe, simd):
    cfg = config(mw, mh, pe, simd)
    x = np.random.default_rng(2).integers(0, 2, (300, mw))
    res = simulate(cfg, x, backpressure=0.3, gaps=0.2)
    assert np.array_equal(res.outputs, cfg.reference(x))


def test_every_input_bit_is_wired():
    v = generate_verilog(config(16, 8, None, None))
    for i in range(16):
        assert f"cbuf[{i}]" in v or f"ncbuf[{i}]" in v
    assert v.count("ncbuf[") + v.count(" cbuf[") >= 16 * 8


@pytest.mark.parametrize("mw,mh,pe,simd", CONFIGS)
def test_verilator_lint_wall_clean(tmp_path, mw, mh, pe, simd):
    root = find_verilator()
    v = tmp_path / "dx.v"
    v.write_text(generate_verilog(config(mw, mh, pe, simd)))
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(v)], env=verilator_env(root),
                         capture_output=True, text=True)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
