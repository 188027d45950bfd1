"""The rtlsim's simulation forms (sbnn.hls.sim_forms) behave exactly like the synthesis forms they stand for.

The generated sparse MVAU carries three Verilator-only texts (bench/rtlsim_speed.py measures why): the
output FIFO's two entries as one array written at one place (so the lanes' threshold compares run only on a
push), a baked layer's wired sums as word popcounts (``$countones`` of masked 64-bit words, which Yosys
cannot synthesise) and a binary memory-mode layer's masked blocks in one wide register. Every output beat
and the cycle it leaves the node must be the same with and without them, on both weight modes, ternary,
dense-XNOR and shared lanes, folded and unfolded, with backpressure and input gaps; Yosys, Vivado and
iverilog read the synthesis form, which is the generator's text before the simulation forms byte for byte,
so its cached Yosys figures stay valid.
"""

from __future__ import annotations

import subprocess
from unittest import mock

import numpy as np
import pytest

from sbnn.hls.sim_forms import SIM_DEFINE, sim_alternative, synthesis_view
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.dense_xnor_rtl import dense_xnor_config
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many
from sbnn.hls.sparse_mvau.sample_layers import classifier, hidden_layer
from sbnn.hls.sparse_mvau.verilog_text import masked_popcount
from sbnn.hls.verilator import SimOptions, verilator_env
from sbnn.hls.yosys import synth_stats
from support_rtl import require_verilator


def ternary_layer(mw: int, mh: int, pe: int, simd: int, mode: str, seed: int) -> SparseMVAUConfig:
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) < 0.3).astype(np.int64)
    return SparseMVAUConfig(mw, mh, pe, simd, 3, mask, np.zeros(mh, np.int64),
                            rng.integers(-8, 9, mh) << 3, rng.integers(0, 2, mh), mode,
                            signs=rng.integers(0, 2, (mw, mh)), name=f"tern_{mode}_{seed}")


def dense_layer(seed: int):
    rng = np.random.default_rng(seed)
    return dense_xnor_config(rng.integers(0, 2, (96, 8)), rng.integers(40, 57, 8), rng.integers(0, 2, 8), pe=4,
                             simd=32, name="dense_xnor_sf")


def shared_lane_layer(seed: int) -> SparseMVAUConfig:
    """Memory mode, a block-constant mask except one lane in one block: lanes 0, 2.. share one datapath, lane 1
    has its own (rtlgen's lane_rep), so the wide simulation form holds two blocks."""
    rng = np.random.default_rng(seed)
    mask = np.kron((rng.random((8, 4)) < 0.5).astype(np.int64), np.ones((8, 8), np.int64))
    sf, nf = np.argwhere(mask[::8, ::8])[0]
    mask[sf * 8:(sf + 1) * 8, nf * 8 + 1] = 0
    return SparseMVAUConfig(64, 32, 8, 8, 5, mask, np.full(32, -7), rng.integers(-300, 300, 32),
                            rng.integers(0, 2, 32), "memory", name="shared_lanes")


def layers() -> list[SparseMVAUConfig]:
    return [hidden_layer(128, 32, 4, 128, "baked", seed=1),            # unfolded input, 2 words per sum
            hidden_layer(256, 64, 8, 32, "baked", seed=2, ec=0.2),    # folded: running sums
            ternary_layer(80, 16, 4, 16, "baked", 3),                 # {~cbuf[i]} terms
            dense_layer(4),                                           # ncbuf terms
            hidden_layer(256, 64, 4, 32, "memory", seed=5),
            classifier(64, 10, 10, 4, "memory", seed=6),              # noActivation outputs
            shared_lane_layer(7),
            ternary_layer(64, 16, 4, 16, "memory", 8)]                # sign ROM: per-lane registers


def test_synthesis_view_is_the_synthesis_form_only():
    synth = ["  wire a = b;", "  reg [3:0] c;"]
    text = "\n".join(["module m;", *sim_alternative(["  wire a = !b;"], synth[:1]), synth[1], "endmodule"])
    assert synthesis_view(text) == "\n".join(["module m;", *synth, "endmodule"])
    assert sim_alternative(synth, synth) == synth, "no block when both forms are the same text"
    with pytest.raises(ValueError, match="unterminated"):
        synthesis_view(f"`ifdef {SIM_DEFINE}\n  wire a = b;\n")


def test_masked_popcount_counts_the_same_bits_by_word():
    terms = ["cbuf[3]", "cbuf[70]", "{~cbuf[64]}", "cbuf[0]"]
    got = masked_popcount(terms, 3, {"cbuf": 72})
    assert got == "$countones(cbuf[63:0] & 64'h9) + $countones(cbuf[71:64] & 8'h40) + $countones(~cbuf[71:64] & 8'h1)"
    for other in (["cbuf[1]", "x[2]"], ["cbuf[1]", "cbuf[1]"], ["cbuf[1]}"]):   # not one bit of a known vector
        assert "$countones" not in masked_popcount(other, 2, {"cbuf": 8})


def test_generated_text_has_both_forms_and_tools_see_the_synthesis_form():
    for cfg in layers():
        text = generate_verilog(cfg)
        synth = synthesis_view(text)
        assert f"`ifdef {SIM_DEFINE}" in text and SIM_DEFINE not in synth
        assert "$countones" not in synth and "fm[wp]" not in synth and "f0 <= ovec" in synth and "mball" not in synth
        if cfg.weight_mode == "baked":
            assert "$countones" in text, cfg.name
        elif cfg.signs is None:
            assert "mball" in text, cfg.name


@pytest.mark.parametrize("define", [False, True], ids=["synthesis form", "simulation form"])
def test_both_forms_are_lint_clean(define, tmp_path):
    root = require_verilator()
    for cfg in layers():
        v = tmp_path / f"{cfg.name}.v"
        v.write_text(generate_verilog(cfg))
        res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                              *([f"+define+{SIM_DEFINE}"] if define else []), str(v)],
                             env=verilator_env(root), capture_output=True, text=True)
        assert res.returncode == 0 and "%Warning" not in res.stderr, (cfg.name, res.stderr[-3000:])


def test_simulation_and_synthesis_forms_give_the_same_beats_on_the_same_cycles():
    require_verilator()
    rng = np.random.default_rng(7)
    jobs = [StreamJob(cfg, rng.integers(0, 2, (24, cfg.MW)), backpressure=bp, gaps=gp, seed=k)
            for k, cfg in enumerate(layers()) for bp, gp in ((0.0, 0.0), (0.4, 0.3))]
    fast = simulate_many(jobs, sim=SimOptions())
    plain = simulate_many(jobs, sim=SimOptions(sim_forms=False))
    for job, f, p in zip(jobs, fast, plain):
        expected = job.cfg.reference(job.inputs)
        assert np.array_equal(f.outputs, expected), f"{job.cfg.name}: simulation form differs from the reference"
        assert np.array_equal(p.outputs, expected), f"{job.cfg.name}: synthesis form differs from the reference"
        assert np.array_equal(f.frame_cycles, p.frame_cycles) and f.latency == p.latency, job.cfg.name


def test_a_yosys_figure_is_cached_by_the_synthesis_form(tmp_path):
    """synth_stats keys its cache on what Yosys reads: a text that only adds simulation forms is a hit."""
    cfg = hidden_layer(32, 8, 2, 8, "baked", seed=8)
    text = generate_verilog(cfg)
    assert "$countones" in text
    first = synth_stats(synthesis_view(text), cfg.name, cache_dir=tmp_path)
    with mock.patch("sbnn.hls.yosys.subprocess.run", side_effect=AssertionError("Yosys ran again")):
        assert synth_stats(text, cfg.name, cache_dir=tmp_path) == first
    assert first["LUT"] > 0
