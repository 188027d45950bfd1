"""Memory-mode RTL that pays for what the mask needs (issue #14, LFC at <= 1/5 of BNN-PYNQ's LUTs).

* ROM columns: a mask bit constant over the schedule is wired, equal columns share one ROM bit, so a
  block-constant mask (training/blocks.py at the fold's block shape) stores at most one mask column;
* lanes with the same mask bits (and R per neuron fold) share one popcount and running sum;
* the input buffer is a LUT-RAM of two banks read at ``{bank, sf}`` (no MW-bit buffers, no SF:1 mux);
* folded thresholded lanes start their running sum at Q_hi and compare {Z, Q_lo} = acc with T_j: no
  per-lane bound, no shared g comparators.
The structure is pinned on the text; the values on Verilator against reference.py.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np

from sbnn.hls.sim_forms import synthesis_view
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many
from sbnn.hls.verilator import find_verilator, verilator_env
from sbnn.hls.yosys import parse_stat


def block_layer(mw, mh, pe, simd, k, r, seed, kept=0.4, mode="memory", signs=False, lanes_differ=False):
    """Thresholded layer whose mask is constant on PE x SIMD blocks; ``lanes_differ`` clears one lane's bits
    in one block (that lane gets its own datapath). Thresholds span the whole accumulator range."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((mw // simd, mh // pe)) < kept).astype(np.int64)
    mask = np.kron(blocks, np.ones((simd, pe), dtype=np.int64))
    if lanes_differ:
        sf, nf = np.argwhere(blocks)[0]
        mask[sf * simd:(sf + 1) * simd, nf * pe + 1] = 0
    alpha = np.full(mh, r) if np.isscalar(r) else rng.choice(r, mh)
    sgn = rng.integers(0, 2, (mw, mh)) if signs else None
    if signs:
        alpha = np.zeros(mh, dtype=np.int64)
    lo = int(np.minimum(alpha, 0).sum() // mh * mw) - 4
    thr = rng.integers(lo - abs(int(alpha.min())) * mw, (int(mask.sum(0).max()) << k) + abs(int(alpha.max())) * mw
                       + 4, mh)
    return SparseMVAUConfig(mw, mh, pe, simd, k, mask, alpha, thr, rng.integers(0, 2, mh), mode, signs=sgn,
                            name=f"blk{seed}")


def test_block_constant_layer_has_one_datapath_and_a_one_column_rom():
    cfg = block_layer(64, 32, 8, 8, 5, -7, 0)
    text = synthesis_view(generate_verilog(cfg))   # the hardware (sim_forms.py: not the rtlsim's forms)
    assert len(re.findall(r"reg \[7:0\] mb\d+;", text)) == 1, "the 8 lanes share one masked block"
    assert len(re.findall(r"always @\(posedge ap_clk\) if \(go\) s\d+ <=", text)) == 1, "one running sum"
    rom_width = int(re.search(r"reg \[(\d+):0\] wrom", text).group(1)) + 1
    assert rom_width <= 1 + 3 + 2, "ROM word: at most one mask column + sf (3 bits) + {last, first}"
    assert "ibuf[{rb, st_sf}]" in text and not re.search(r"\b(cbuf|coll)\b", text)
    assert "gc_" not in text and "bnd" not in text, "folded lanes: no g comparators, no per-lane bound"


def masked_block_registers(cfg) -> int:
    """The lanes' masked-block registers in the hardware (the synthesis form, sim_forms.py)."""
    return len(re.findall(r"reg \[7:0\] mb\d+;", synthesis_view(generate_verilog(cfg))))


def test_lanes_with_other_masks_keep_their_own_datapath():
    assert masked_block_registers(block_layer(64, 32, 8, 8, 5, -7, 1, lanes_differ=True)) == 2
    # a ternary lane's signs are its own
    assert masked_block_registers(block_layer(64, 32, 8, 8, 0, 0, 2, signs=True)) == 8


def test_parse_stat_counts_lut_ram_as_luts():
    stat = "   Number of cells: 9\n     LUT6 3\n     RAM64M 2\n     RAM128X1D 1\n     FDRE 3\n"
    got = parse_stat(stat)
    assert got["LUTRAM"] == 2 * 4 + 4 and got["LUT"] == 3 + 12


def test_shared_and_folded_layers_bit_exact():
    cfgs = [block_layer(64, 32, 8, 8, 5, -7, 3), block_layer(64, 32, 8, 8, 3, [-3, 0, 5], 4, lanes_differ=True),
            block_layer(48, 16, 4, 4, 0, 2, 5, kept=0.25), block_layer(64, 16, 4, 8, 1, [1, -2], 6, mode="baked"),
            block_layer(32, 16, 4, 4, 0, 0, 7, signs=True, kept=0.6)]
    rng = np.random.default_rng(0)
    jobs = [StreamJob(c, rng.integers(0, 2, (40, c.MW)), 0.3, 0.3, 1) for c in cfgs]
    for job, res in zip(jobs, simulate_many(jobs)):
        ref = job.cfg.reference(job.inputs)
        assert 0.05 < ref.mean() < 0.95, "thresholds on both sides of the sums"
        assert np.array_equal(res.outputs, ref), job.cfg.name


def test_shared_lanes_lint_clean(tmp_path):
    root = find_verilator()
    for cfg in (block_layer(64, 32, 8, 8, 5, -7, 8), block_layer(64, 32, 8, 8, 3, [-3, 0, 5], 9, lanes_differ=True)):
        v = tmp_path / f"{cfg.name}.v"
        v.write_text(generate_verilog(cfg))
        res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(v)],
                             env=verilator_env(root), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
