"""The sparse MVAU RTL is written so that Verilator simulates it fast without changing the logic.

A baked layer selects, per lane and popcount group, one of its steps' sums of wired bits. Written as one
``always @*`` per selected signal,
Verilator's DFG pass turned each into a multiplexer whose arms it hoisted into variables computed every
cycle (``__VdfgRegularize*``: every step's popcount of every lane, each simulated cycle: SFC's fastest
folding ran 1.6x slower, bench/rtlsim_speed.py). rtlgen writes them as one ``case`` per selector
(verilog_text.case_select_many), which Verilator keeps as one branch. The neuron constants of a folded
thresholded layer stay one case per signal: Yosys maps them combined to more LUTs (rtlgen's comment). Same values: the RTL-vs-reference
tests (test_rtl_cycle_model.py, test_stitch_rtlsim.py) cover both modes; same LUTs: Yosys (README).
"""

from __future__ import annotations

import re
import subprocess
from unittest import mock

import pytest

from sbnn.hls.sim_forms import simulation_view, synthesis_view
from sbnn.hls.sparse_mvau import rtlgen
from sbnn.hls.sparse_mvau.sample_layers import hidden_layer
from sbnn.hls.sparse_mvau.verilog_text import case_select, case_select_many
from sbnn.hls.verilator import find_verilator, verilator_env


def per_signal(sel: str, selects: list, indent: str = "  ") -> list[str]:
    """The formulation before: one case_select (one always block) per signal."""
    return [ln for d, lhs, arms in selects for ln in case_select(d, lhs, sel, arms, indent)]


def hoisted_variables(verilog: str, tmp_path) -> int:
    """Variables Verilator's DFG pass introduced (computed every eval) in the C++ model of ``verilog``."""
    root = find_verilator()
    tmp_path.mkdir()
    (tmp_path / "m.v").write_text(verilog)
    res = subprocess.run([str(root / "bin" / "verilator"), "--cc", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                          "--Mdir", "obj", "m.v"], cwd=tmp_path, env=verilator_env(root), capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    header = "".join(p.read_text() for p in (tmp_path / "obj").glob("*___024root.h"))
    return len(re.findall(r"__VdfgRegularize\w*;", header))


def test_case_select_many_text():
    lines = case_select_many("t", [("[1:0]", "a", ["1", "2"]), ("", "k", ["x", "x"]), ("[3:0]", "c", ["c0", "c1"])])
    assert lines[0] == "  wire  k = x;"   # a constant is a wire, as in case_select
    assert sum("always @*" in ln for ln in lines) == 1 and sum("case (t)" in ln for ln in lines) == 1
    arm1 = lines.index("      1: begin")
    assert lines[arm1 + 1:arm1 + 3] == ["        a = 2;", "        c = c1;"]


def blocks_assigning(text: str, signal: str) -> int:
    """``always @*`` blocks of ``text`` that assign some ``<signal><lane>...``."""
    return sum(bool(re.search(rf"\b{signal}\d+(_\d+)? = ", b.split("endcase")[0])) for b in text.split("always @*")[1:])


@pytest.mark.parametrize("mode", ["baked", "memory"])
def test_selections_in_one_case(mode):
    text = rtlgen.generate_verilog(hidden_layer(64, 64, 8, 16, mode))   # 4 input folds x 8 neuron folds
    for view in (synthesis_view(text), simulation_view(text)):   # sim_forms.py: both forms keep one case
        if mode == "baked":
            assert blocks_assigning(view, "gs") == 1, "step popcount selections not in one case"
        assert blocks_assigning(view, "tc") == 8, "neuron thresholds: one case per lane (PE 8)"


def test_verilator_computes_only_the_selected_step(tmp_path):
    cfg = hidden_layer(64, 64, 8, 16, "baked")
    text = rtlgen.generate_verilog(cfg)
    assert hoisted_variables(synthesis_view(text), tmp_path / "one") == 0
    # the simulation form (sim_forms.py) writes each lane's running-sum update out, so the lanes' common start
    # value (Q_hi sign-extended) is one shared variable; no step's popcount is hoisted
    assert hoisted_variables(simulation_view(text), tmp_path / "sim") <= 1
    with mock.patch.object(rtlgen, "case_select_many", per_signal):   # the formulation before: hoisted
        assert hoisted_variables(synthesis_view(rtlgen.generate_verilog(cfg)), tmp_path / "per") > 10
