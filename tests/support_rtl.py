"""Small fixtures for the RTL, Vivado, driver and deploy tests (and for integration tests of ``sbnn build``).

* :func:`require_verilator`: Verilator's root, or skip the test with the reason it is missing.
* :func:`tiny_node_config`: a single sparse MVAU node used as a whole accelerator.
* :func:`write_node_rtl`: its generated Verilog as a "stitched" RTL folder (top ports s_axis/m_axis).
* :func:`write_finn_style_rtl`: a stand-in top with FINN's stitched-IP port names (s_axis_0/m_axis_0).
* :func:`write_fake_vivado`: an executable ``vivado`` that records its argv/cwd and writes the
  .bit/.hwh where build_vivado.tcl says they go (``FAKE_VIVADO_MODE``: ok | fail | nofiles).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.verilator import VerilatorNotFoundError, find_verilator


def require_verilator() -> Path:
    """VERILATOR_ROOT for tests that run Verilator; skips the calling test when it is not installed."""
    try:
        return find_verilator()
    except VerilatorNotFoundError as exc:
        pytest.skip(str(exc))


def tiny_node_config(MW: int = 16, MH: int = 4, PE: int = 2, SIMD: int = 4, no_activation: bool = True,
                     seed: int = 0, name: str = "tiny_accel"):
    rng = np.random.default_rng(seed)
    mask = (rng.random((MW, MH)) < 0.4).astype(np.int64)
    kw = {} if no_activation else {"thresholds": rng.integers(-4, 12, MH), "invert": rng.integers(0, 2, MH)}
    return SparseMVAUConfig(MW=MW, MH=MH, PE=PE, SIMD=SIMD, alpha_shift=1, mask=mask,
                            alpha_num=rng.integers(-2, 2, MH), no_activation=no_activation, name=name, **kw)


def write_node_rtl(cfg, rtl_dir) -> Path:
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    (rtl_dir / f"{cfg.name}.v").write_text(generate_verilog(cfg, name=cfg.name))
    return rtl_dir


def write_finn_style_rtl(rtl_dir, top: str = "sbnn_dataflow_top", in_bits: int = 24, out_bits: int = 8) -> Path:
    """A registered pass-through with FINN stitched-IP port names, plus a thresholds .dat file."""
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    (rtl_dir / f"{top}.v").write_text(f"""// stand-in stitched top (FINN naming)
module {top} (
  input  wire ap_clk,
  input  wire ap_rst_n,
  input  wire [{in_bits - 1}:0] s_axis_0_tdata,
  input  wire s_axis_0_tvalid,
  output wire s_axis_0_tready,
  output wire [{out_bits - 1}:0] m_axis_0_tdata,
  output wire m_axis_0_tvalid,
  input  wire m_axis_0_tready
);
  reg [{out_bits - 1}:0] data;
  reg valid;
  assign s_axis_0_tready = !valid || m_axis_0_tready;
  assign m_axis_0_tdata = data;
  assign m_axis_0_tvalid = valid;
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      valid <= 1'b0;
      data <= {out_bits}'d0;
    end else if (s_axis_0_tready) begin
      valid <= s_axis_0_tvalid;
      data <= s_axis_0_tdata[{out_bits - 1}:0] ^ s_axis_0_tdata[{in_bits - 1}:{in_bits - out_bits}];
    end
  end
endmodule
""")
    (rtl_dir / "Thresholding_0_threshs_0_0.dat").write_text("00\n01\n")
    (rtl_dir / "notes.txt").write_text("not RTL: must not be copied\n")
    return rtl_dir


FAKE_VIVADO = r'''#!{python}
"""Fake vivado for tests: records argv and cwd, writes the .bit/.hwh build_vivado.tcl names."""
import json, os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "vivado_calls.jsonl"), "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\n")
mode = os.environ.get("FAKE_VIVADO_MODE", "ok")
print("****** Vivado v2099.1 (fake)")
if mode == "fail":
    print("ERROR: [Synth 8-439] module 'missing_core' not found")
    sys.exit(1)
tcl = open(sys.argv[sys.argv.index("-source") + 1]).read()
out_dir = re.search(r"^set out_dir\s+\[file join \$script_dir (\S+)\]", tcl, re.M).group(1)
bit = re.search(r"^set bit_file\s+\[file join \$out_dir (\S+)\]", tcl, re.M).group(1)
hwh = re.search(r"^set hwh_file\s+\[file join \$out_dir (\S+)\]", tcl, re.M).group(1)
if mode != "nofiles":
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, bit), "wb") as fh:
        fh.write(b"FAKEBIT")
    fclk = os.environ.get("FAKE_VIVADO_FCLK_MHZ") or re.search(r"^set fclk_mhz\s+(\S+)", tcl, re.M).group(1)
    with open(os.path.join(out_dir, hwh), "w") as fh:   # the PS's achieved PL clock, as Vivado records it
        fh.write('<EDKSYSTEM><MODULES><MODULE INSTANCE="zynq_ps" MODTYPE="processing_system7"><PARAMETERS>'
                 '<PARAMETER NAME="PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ" VALUE="%s"/></PARAMETERS></MODULE>'
                 '</MODULES></EDKSYSTEM>\n' % fclk)
    with open(os.path.join(out_dir, "vivado_summary.json"), "w") as fh:
        fh.write('{{"wns_ns": 0.125, "whs_ns": 0.05, "vivado_version": "2099.1"}}\n')
print("fake vivado done")
'''


def write_fake_vivado(bin_dir) -> Path:
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "vivado"
    exe.write_text(FAKE_VIVADO.format(python=sys.executable))
    exe.chmod(0o755)
    return exe


# ---- Tcl dry run: the generated build_vivado.tcl under a plain Tcl interpreter with stubbed Vivado commands
_STUBS = r'''
set ::calls {}
proc unknown {cmd args} {
    lappend ::calls [concat [list $cmd] $args]
    switch -- $cmd {
        get_board_parts { return $::stub_board_parts }
        get_ipdefs { return [lindex $args end] }
        get_property {
            switch -- [lindex $args 0] {
                PROGRESS { return "100%" }
                DIRECTORY { return $::stub_run_dir }
                VLNV { return [lindex $args end] }
                STATS.WNS { return 0.25 }
                STATS.WHS { return 0.05 }
                CONFIG.FREQ_HZ { return 99999001 }
                default { return "" }
            }
        }
        get_bd_pins - get_bd_intf_pins - get_bd_cells - get_files - create_bd_cell { return [lindex $args end] }
        ipx::current_core { return core0 }
        ipx::get_bus_interfaces { return "" }
        ipx::get_bus_parameters { return "" }
        version { return 2099.1 }
        launch_runs {
            if {[lindex $args 0] eq "impl_1"} {
                file mkdir $::stub_run_dir
                set fh [open [file join $::stub_run_dir ${::design_name}_wrapper.bit] w]; puts $fh bit; close $fh
                set hd [file join $::proj_dir $::design_name.gen sources_1 bd $::design_name hw_handoff]
                file mkdir $hd
                set fh [open [file join $hd $::design_name.hwh] w]; puts $fh hwh; close $fh
            }
            return ""
        }
        default { return $cmd }
    }
}
'''


def dry_run_tcl(project_dir, board_files_installed: bool = True, extra_stubs: str = "") -> list[list[str]]:
    """Source ``build_vivado.tcl`` in Python's embedded Tcl with Vivado commands stubbed; returns the
    Vivado commands called, in order. Real Tcl runs for everything else (variables, file copies,
    the $readmemh staging), so syntax errors, undefined variables and broken paths fail here.
    A stubbed ``launch_runs impl_1`` leaves a .bit and .hwh where Vivado would. ``extra_stubs``: Tcl
    evaluated after the stubs (procs that replace them). A Tcl error in the script raises ``tkinter.TclError``."""
    import tkinter  # lazily: Python builds without Tcl exist; callers skip on this ImportError

    project_dir = Path(project_dir)
    tcl = tkinter.Tcl()
    tcl.eval(_STUBS)
    tcl.eval(extra_stubs)
    meta_board = json.loads((project_dir / "project.json").read_text())["board_part"]
    tcl.setvar("stub_board_parts", meta_board if board_files_installed else "")
    tcl.setvar("stub_run_dir", str(project_dir / "vivado_project" / "runs" / "impl_1"))
    tcl.eval(f"source {{{project_dir / 'build_vivado.tcl'}}}")
    n = int(tcl.eval("llength $::calls"))
    return [list(tcl.splitlist(tcl.eval(f"lindex $::calls {i}"))) for i in range(n)]
