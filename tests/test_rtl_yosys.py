"""Yosys (yowasp, synth_xilinx xc7) accepts the generated RTL and shows the point
of sparsity: a baked layer at EC = 0.1 needs far fewer LUTs than the same layer
as a classic dense BNN (+-1 weights, random mask with EC = 0.5).

The all-ones mask (sparsity exactly 0) is not the dense baseline: all neurons
then compute the same popcount and Yosys shares it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
from sbnn.hls import yosys
from sbnn.hls.yosys import YosysNotFoundError, parse_stat, synth_stats


def layer(ec: float, mode: str = "baked", pe: int = 16, simd: int = 64) -> SparseMVAUConfig:
    rng = np.random.default_rng(3)
    mask = (rng.random((64, 16)) < ec).astype(np.int64)
    return SparseMVAUConfig(64, 16, pe, simd, 1, mask, -1, thresholds=rng.integers(-8, 8, 16), weight_mode=mode,
                            name=f"l_{mode}_{int(ec * 100)}")


def test_sparse_baked_layer_uses_far_fewer_luts(tmp_path):
    try:
        dense = node_stats(layer(0.5), cache_dir=tmp_path)
    except YosysNotFoundError as e:
        pytest.skip(str(e))
    sparse = node_stats(layer(0.1), cache_dir=tmp_path)
    assert dense["LUT"] > 300
    assert sparse["LUT"] < 0.5 * dense["LUT"], (sparse["LUT"], dense["LUT"])
    assert dense["DSP"] == sparse["DSP"] == 0        # R*P is shift-add, never a multiplier
    # first-order model within a factor 2 of Yosys
    for cfg, st in ((layer(0.5), dense), (layer(0.1), sparse)):
        assert 0.5 * st["LUT"] <= estimates.lut_estimate(cfg) <= 2 * st["LUT"], (estimates.lut_estimate(cfg), st)
    # cached: a second call returns the same numbers without running yosys
    assert node_stats(layer(0.1), cache_dir=tmp_path) == sparse


def test_memory_mode_synthesizes(tmp_path):
    try:
        st = node_stats(layer(0.3, "memory", pe=4, simd=16), cache_dir=tmp_path)
    except YosysNotFoundError as e:
        pytest.skip(str(e))
    assert st["LUT"] > 0 and st["FF"] > 0 and st["DSP"] == 0


def test_parse_stat_counts():
    text = """
   Number of cells:                500
     CARRY4                          7
     FDRE                          100
     FDSE                            2
     LUT2                           10
     LUT6                           20
     RAMB18E1                        1
     RAMB36E1                        2
"""
    st = parse_stat(text)
    assert (st["LUT"], st["FF"], st["BRAM18"], st["CARRY4"], st["DSP"]) == (30, 102, 5, 7, 0)


def test_netlist_cut_short_is_an_error_naming_the_disk_and_caches_nothing(tmp_path, monkeypatch):
    """Yosys exits 0 when a write fails (a full disk in CI cut a netlist short): the result is refused with the
    free space named, and no cache entry is written."""
    fake = [sys.executable, "-c", "open('stat.txt', 'w').write('   1 LUT6\\n'); "
            "open('netlist.json', 'w').write('{\"modules\": {\"m')"]
    monkeypatch.setattr(yosys, "find_yosys", lambda: fake)
    with pytest.raises(RuntimeError, match=r"netlist of m is cut short .* MiB free under .*free disk space"):
        synth_stats("module m; endmodule", "m", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.json"))
