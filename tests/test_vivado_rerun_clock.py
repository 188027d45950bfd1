"""The Vivado flow's last mile: reruns, the fabric clock, and the accelerator input's TLAST/TKEEP.

* A rerun after a failure works: the generated Tcl runs twice under the stubbed-Vivado dry run, the first
  time failing in synthesis, with an IP packager stub that (like Vivado) refuses to package into an
  existing IP folder without ``-force``; stale outputs of an earlier build are gone after the failed run.
* The clock is set as FINN's Zynq flow sets it (PS8: the basic-clock override first), and the .hwh's
  achieved PL clock is compared with the requested one after a run: a mismatch is an ``sbnn: warning:``
  line and a ``clock`` field of the run's result.
* The accelerator's input stream has TLAST and TKEEP, like the DMA's MM2S stream it is connected to.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from sbnn.bitstreams.hwh import achieved_fclk_mhz, check_fclk
from sbnn.bitstreams.packing import StreamSpec
from sbnn.bitstreams.vivado import generate_vivado_project, run_vivado

from support_rtl import write_fake_vivado, write_finn_style_rtl

IO = {"input": StreamSpec((6,), 8, 3, "uint"), "output": StreamSpec((1,), 4, 1, "uint")}

# Vivado's packager refuses an existing root folder unless -force; a synthesis that fails on demand
_RERUN_STUBS = r'''
namespace eval ipx {}
proc ipx::package_project {args} {
    lappend ::calls [concat [list ipx::package_project] $args]
    set root [lindex $args [expr {[lsearch -exact $args -root_dir] + 1}]]
    if {[file exists [file join $root component.xml]] && [lsearch -exact $args -force] < 0} {
        error "ERROR: \[IP_Flow 19-1800\] $root already holds a packaged IP; use -force"
    }
    file mkdir $root
    set fh [open [file join $root component.xml] w]; puts $fh "<component/>"; close $fh
}
proc wait_on_run {run} {
    lappend ::calls [list wait_on_run $run]
    if {$::stub_fail_synth && $run eq "synth_1"} { error "ERROR: synth_1 failed (stub)" }
}
'''


def _project(tmp_path, board="pynq-z2"):
    rtl = write_finn_style_rtl(tmp_path / "rtl", in_bits=24, out_bits=8)
    return generate_vivado_project(rtl, "sbnn_dataflow_top", IO, board, tmp_path / "vivado")


def test_tcl_rerun_after_a_failure_succeeds(tmp_path):
    tkinter = pytest.importorskip("tkinter", reason="the Tcl dry run needs Python's embedded Tcl (tkinter)")
    from support_rtl import dry_run_tcl

    proj = _project(tmp_path)
    out = proj / "output"
    out.mkdir()
    for stale in ("sbnn_accel.bit", "sbnn_accel.hwh", "vivado_summary.json"):
        (out / stale).write_text("from an earlier build")
    with pytest.raises(tkinter.TclError, match="synth_1 failed"):
        dry_run_tcl(proj, extra_stubs=_RERUN_STUBS + "set ::stub_fail_synth 1\n")
    assert (proj / "ip_repo" / "sbnn_dataflow_top_dma" / "component.xml").is_file(), "packaged before failing"
    assert sorted(p.name for p in out.iterdir()) == [], "stale outputs must not survive a failed run"
    calls = dry_run_tcl(proj, extra_stubs=_RERUN_STUBS + "set ::stub_fail_synth 0\n")
    pkg = [c for c in calls if c[0] == "ipx::package_project"]
    assert len(pkg) == 1 and "-force" in pkg[0]
    assert [c[2] for c in calls if c[0] == "create_project"][:2] == ["ip_pkg", "sbnn_accel"]
    assert all("-force" in c for c in calls if c[0] == "create_project")
    assert (out / "sbnn_accel.bit").read_text() == "bit\n" and (out / "sbnn_accel.hwh").is_file()
    summary = json.loads((out / "vivado_summary.json").read_text())
    assert summary["wns_ns"] == 0.25 and summary["fclk_requested_mhz"] == 100
    assert not (out / "vivado_summary.json.tmp").exists()
    # and a third run on a completed project (a rebuild by hand) works too
    dry_run_tcl(proj, extra_stubs=_RERUN_STUBS + "set ::stub_fail_synth 0\n")


def _ps_settings(calls) -> list[str]:
    return [c[2] for c in calls if c[:2] == ["set_property", "-dict"] and c[-1] == "zynq_ps"]


@pytest.mark.parametrize("board,expected", [
    ("pynq-z2", ["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100"]),
    ("zcu104", ["CONFIG.PSU__OVERRIDE__BASIC_CLOCK 0", "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 187.5"]),
])
def test_clock_set_the_finn_way(tmp_path, board, expected):
    pytest.importorskip("tkinter", reason="the Tcl dry run needs Python's embedded Tcl (tkinter)")
    from support_rtl import dry_run_tcl

    calls = dry_run_tcl(_project(tmp_path, board))
    settings = _ps_settings(calls)
    # the port configuration first, then the clock keys one by one in this order (the override before PL0)
    assert settings[1:] == expected, settings
    assert "FREQMHZ" not in settings[0]


def test_accelerator_input_has_tlast_and_tkeep(tmp_path):
    """The DMA's M_AXIS_MM2S has TLAST and TKEEP (PG021); the accelerator's s_axis takes both, so the
    interfaces match and validate_bd_design has nothing to warn about."""
    pytest.importorskip("tkinter", reason="the Tcl dry run needs Python's embedded Tcl (tkinter)")
    from support_rtl import dry_run_tcl

    proj = _project(tmp_path)
    wrapper = (proj / "rtl" / "sbnn_dataflow_top_dma.v").read_text()
    assert re.search(r"input\s+wire\s+s_axis_tlast,", wrapper)
    assert re.search(r"input\s+wire\s+\[4-1:0\]\s+s_axis_tkeep,", wrapper), "32-bit DMA beats: 4 TKEEP bits"
    calls = dry_run_tcl(proj)
    inferred = [c[1].split() for c in calls if c[0] == "ipx::infer_bus_interface" and "s_axis_tdata" in c[1]]
    assert inferred == [["s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast", "s_axis_tkeep"]]
    assert ["connect_bd_intf_net", "dma/M_AXIS_MM2S", "accel/s_axis"] in calls


# ---- the .hwh's achieved clock -------------------------------------------------------------------------
def _hwh(path, modtype="processing_system7", params=(), ports=()):
    p = "".join(f'<PARAMETER NAME="{n}" VALUE="{v}"/>' for n, v in params)
    q = "".join(f'<PORT DIR="O" NAME="{n}" SIGIS="clk" CLKFREQUENCY="{hz}"/>' for n, hz in ports)
    path.write_text(f'<?xml version="1.0"?>\n<EDKSYSTEM><MODULES>'
                    f'<MODULE INSTANCE="dma" MODTYPE="axi_dma"><PARAMETERS><PARAMETER NAME="PCW_ACT_FPGA0_'
                    f'PERIPHERAL_FREQMHZ" VALUE="1"/></PARAMETERS></MODULE>'
                    f'<MODULE INSTANCE="zynq_ps" MODTYPE="{modtype}"><PARAMETERS>{p}</PARAMETERS>'
                    f'<PORTS>{q}</PORTS></MODULE></MODULES></EDKSYSTEM>\n')
    return path


def test_hwh_clock_parsing(tmp_path):
    ps7 = _hwh(tmp_path / "a.hwh", params=[("PCW_FPGA0_PERIPHERAL_FREQMHZ", "100"),
                                           ("PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ", "99.999001")])
    assert achieved_fclk_mhz(ps7) == pytest.approx(99.999001)   # the PS's value, not the DMA's
    ps8 = _hwh(tmp_path / "b.hwh", "zynq_ultra_ps_e", params=[("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", "187.5"),
                                                             ("PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ", "187.498123")])
    assert achieved_fclk_mhz(ps8) == pytest.approx(187.498123)
    port_only = _hwh(tmp_path / "c.hwh", "zynq_ultra_ps_e", ports=[("pl_clk0", "214285721")])
    assert achieved_fclk_mhz(port_only) == pytest.approx(214.285721)
    (tmp_path / "bad.hwh").write_text("<EDKSYSTEM><MODULES>")
    assert achieved_fclk_mhz(tmp_path / "bad.hwh") is None and achieved_fclk_mhz(tmp_path / "none.hwh") is None

    assert check_fclk(ps7, 100.0).ok and check_fclk(ps8, 187.5).ok
    off = check_fclk(port_only, 200.0)
    assert not off.ok and off.achieved_mhz == pytest.approx(214.285721)
    assert "fabric clock is 214.286 MHz, not the requested 200 MHz" in off.message and "\n" not in off.message
    unknown = check_fclk(tmp_path / "bad.hwh", 100.0)
    assert not unknown.ok and unknown.achieved_mhz is None and "names no PL clock" in unknown.message


def test_run_warns_when_the_built_clock_differs(tmp_path, monkeypatch, capsys):
    exe = write_fake_vivado(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    proj = _project(tmp_path)
    res = run_vivado(proj)
    assert res.built and res.clock["ok"] and res.clock["achieved_mhz"] == 100
    assert "sbnn: warning:" not in capsys.readouterr().err
    monkeypatch.setenv("FAKE_VIVADO_FCLK_MHZ", "90.909088")
    res = run_vivado(proj)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("sbnn: warning:")]
    assert len(lines) == 1 and "fabric clock is 90.9091 MHz, not the requested 100 MHz" in lines[0]
    assert res.built and res.to_dict()["clock"]["ok"] is False
    assert res.to_dict()["clock"]["achieved_mhz"] == pytest.approx(90.909088)
    assert "fabric clock NOT as requested" in res.message
