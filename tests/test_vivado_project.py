"""Vivado project generation: the Tcl's structure for a ps7 and a ps8 board, the DMA wrapper, one-line errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace

import pytest

from sbnn.bitstreams.boards import get_board
from sbnn.bitstreams.packing import StreamSpec
from sbnn.bitstreams.simbackend import node_io
from sbnn.bitstreams.vivado import TCL_NAME, VIVADO_COMMAND, generate_vivado_project
from sbnn.errors import UserError

from support_rtl import tiny_node_config, write_finn_style_rtl, write_node_rtl


def tcl_set(tcl: str, name: str) -> str:
    m = re.search(rf"^set {name}\s+(.+?)\s*$", tcl, re.M)
    assert m, f"no `set {name}` in the Tcl"
    return m.group(1)


@pytest.fixture
def node(tmp_path):
    cfg = tiny_node_config()
    rtl = write_node_rtl(cfg, tmp_path / "stitched" / "rtl")
    i, o, meaning = node_io(cfg)
    return cfg, rtl, {"input": i, "output": o}


def test_ps7_project_tcl(tmp_path, node):
    cfg, rtl, io = node
    proj = generate_vivado_project(rtl, cfg.name, io, "pynq-z2", tmp_path / "vivado")
    tcl = (proj / TCL_NAME).read_text()
    assert "@" not in tcl.replace("-source", "")  # every placeholder filled
    assert tcl_set(tcl, "part") == "xc7z020clg400-1"
    assert tcl_set(tcl, "board_part") == "{tul.com.tw:pynq-z2:part0:1.0}"
    assert tcl_set(tcl, "ps_type") == "ps7" and "xilinx.com:ip:processing_system7:*" in tcl
    assert "apply_board_preset $has_board" in tcl and "set_property board_part $board_part" in tcl
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl and tcl_set(tcl, "fclk_mhz") == "100"
    assert tcl_set(tcl, "ps_slave") == "S_AXI_HP0" and "CONFIG.PCW_USE_S_AXI_HP0 {1}" in tcl
    assert tcl_set(tcl, "ps_master") == "M_AXI_GP0" and tcl_set(tcl, "ps_clk") == "FCLK_CLK0"
    # the stitched RTL is copied into the project, the IP repo is the project's ip_repo
    assert tcl_set(tcl, "rtl_dir") == "[file join $script_dir rtl]"
    assert sorted(p.name for p in (proj / "rtl" / "src").iterdir()) == sorted(p.name for p in rtl.iterdir())
    assert (proj / "rtl" / "src" / f"{cfg.name}.v").read_text() == (rtl / f"{cfg.name}.v").read_text()
    assert "ipx::package_project -root_dir [file join $ip_repo $accel_top]" in tcl
    assert "set_property ip_repo_paths [list $ip_repo] [current_project]" in tcl
    assert (proj / "rtl" / f"{tcl_set(tcl, 'accel_top')}.v").is_file()
    # DMA stream widths from the design: 4 input bits -> 8-bit TDATA; PE*out_width output bits
    assert tcl_set(tcl, "in_dma_bits") == "8"
    assert int(tcl_set(tcl, "out_dma_bits")) == io["output"].dma_bits >= cfg.out_tdata_width
    assert "CONFIG.c_m_axis_mm2s_tdata_width $in_dma_bits" in tcl
    assert "CONFIG.c_s_axis_s2mm_tdata_width $out_dma_bits" in tcl
    assert "CONFIG.c_include_sg 0" in tcl and tcl_set(tcl, "dma_addr_bits") == "32"
    assert "connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins accel/s_axis]" in tcl
    assert "connect_bd_intf_net [get_bd_intf_pins accel/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]" in tcl
    assert "ipx::associate_bus_interfaces -busif s_axis -clock ap_clk" in tcl
    assert "proc_sys_reset" in tcl and "assign_bd_address" in tcl and "make_wrapper" in tcl
    # synthesis, implementation, bitstream and hand-off, in this order
    steps = ["launch_runs synth_1", "wait_on_run synth_1", "launch_runs impl_1 -to_step write_bitstream",
             "wait_on_run impl_1", "file copy -force $hwh_src $hwh_file"]
    pos = [tcl.index(s) for s in steps]
    assert pos == sorted(pos)
    assert tcl_set(tcl, "bit_file").endswith("sbnn_accel.bit]") and tcl_set(tcl, "hwh_file").endswith("sbnn_accel.hwh]")
    meta = json.loads((proj / "project.json").read_text())
    assert meta["ps"] == "ps7" and meta["input"]["shape"] == [16] and meta["output"]["elems_per_beat"] == 2
    assert meta["source_rtl_dir"] == str(rtl.resolve())
    assert VIVADO_COMMAND in (proj / "README.md").read_text()


def test_ps8_project_tcl(tmp_path):
    rtl = write_finn_style_rtl(tmp_path / "rtl", in_bits=24, out_bits=8)
    io = {"input": StreamSpec((6,), 8, 3, "uint"), "output": StreamSpec((1,), 4, 1, "uint")}
    proj = generate_vivado_project(rtl, "sbnn_dataflow_top", io, get_board("kv260"), tmp_path / "vivado")
    tcl = (proj / TCL_NAME).read_text()
    assert tcl_set(tcl, "part") == "xck26-sfvc784-2LV-c" and tcl_set(tcl, "ps_type") == "ps8"
    assert "xilinx.com:ip:zynq_ultra_ps_e:*" in tcl and tcl_set(tcl, "board_part") == "{xilinx.com:kv260_som:part0:1.3}"
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {200}" in tcl
    assert tcl_set(tcl, "ps_slave") == "S_AXI_HP0_FPD" and tcl_set(tcl, "ps_slave_aclk") == "saxihp0_fpd_aclk"
    assert "CONFIG.PSU__USE__S_AXI_GP2 {1}" in tcl and tcl_set(tcl, "ps_master") == "M_AXI_HPM0_FPD"
    assert tcl_set(tcl, "ps_clk") == "pl_clk0" and tcl_set(tcl, "dma_addr_bits") == "64"
    # 24-bit TDATA rides a 32-bit DMA stream; the 4-bit label an 8-bit one
    assert tcl_set(tcl, "in_dma_bits") == "32" and tcl_set(tcl, "out_dma_bits") == "8"
    wrapper = (proj / "rtl" / "sbnn_dataflow_top_dma.v").read_text()
    assert ".s_axis_0_tdata(s_axis_tdata[24-1:0])" in wrapper and ".m_axis_0_tready(m_axis_tready)" in wrapper
    # only RTL and memory files are copied; .dat files become absolute $readmemh paths at Vivado time
    assert sorted(p.name for p in (proj / "rtl" / "src").iterdir()) == ["Thresholding_0_threshs_0_0.dat",
                                                                        "sbnn_dataflow_top.v"]
    assert 'string map [list "\\"./" "\\"$stage_dir/"]' in tcl


@pytest.mark.skipif(shutil.which("perl") is None, reason="Verilator needs perl")
def test_dma_wrapper_lints_clean(tmp_path, node):
    """The generated wrapper around a real node passes Verilator --lint-only -Wall."""
    from sbnn.hls.verilator import verilator_env
    from support_rtl import require_verilator

    root = require_verilator()
    cfg, rtl, io = node
    for name, spec in (("narrow", io["input"]), ("padded", StreamSpec((16,), 1, 4, "binary", dma_bits=32))):
        proj = generate_vivado_project(rtl, cfg.name, {"input": spec, "output": io["output"]}, "pynq-z1",
                                       tmp_path / name)
        srcs = [str(proj / "rtl" / f"{cfg.name}_dma.v"), str(proj / "rtl" / "src" / f"{cfg.name}.v")]
        res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", "--top-module",
                              f"{cfg.name}_dma", *srcs], env=verilator_env(root), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_missing_top_is_one_line_error(tmp_path, node):
    cfg, rtl, io = node
    with pytest.raises(UserError, match=r"top module nope not found in the \.v/\.sv files of") as ei:
        generate_vivado_project(rtl, "nope", io, "pynq-z2", tmp_path / "v")
    assert "\n" not in str(ei.value)


def test_width_mismatch_is_one_line_error(tmp_path, node):
    cfg, rtl, io = node
    with pytest.raises(UserError, match="input stream: top tiny_accel has a 8-bit TDATA.*says 16 bits"):
        generate_vivado_project(rtl, cfg.name, {"input": 16, "output": io["output"]}, "pynq-z2", tmp_path / "v")


def test_stream_too_wide_for_dma(tmp_path):
    rtl = write_finn_style_rtl(tmp_path / "rtl", in_bits=1032, out_bits=8)
    with pytest.raises(UserError, match="needs a 2048-bit DMA stream.*up to 1024 bits"):
        generate_vivado_project(rtl, "sbnn_dataflow_top", {"input": 1032, "output": 8}, "pynq-z2", tmp_path / "v")


def test_unknown_memory_port(tmp_path, node):
    cfg, rtl, io = node
    board = replace(get_board("pynq-z2"), memory="S_AXI_ACP")
    with pytest.raises(UserError, match="memory port 'S_AXI_ACP' is not a Zynq-7000 HP port"):
        generate_vivado_project(rtl, cfg.name, io, board, tmp_path / "v")


def test_missing_rtl_dir(tmp_path, node):
    cfg, _, io = node
    with pytest.raises(UserError, match="stitched RTL folder .* not found; run the stitch stage first"):
        generate_vivado_project(tmp_path / "nope", cfg.name, io, "pynq-z2", tmp_path / "v")


def _connected(calls, a, b) -> bool:
    return any(c[0] in ("connect_bd_intf_net", "connect_bd_net") and a in c and b in c for c in calls)


@pytest.mark.parametrize("board,files", [("pynq-z2", False), ("zcu104", True)])
def test_tcl_dry_run(tmp_path, board, files):
    """The whole script runs under a real Tcl interpreter with Vivado's commands stubbed: no syntax errors or
    undefined variables, the block design is wired as intended and the .bit/.hwh land in output/."""
    pytest.importorskip("tkinter", reason="the Tcl dry run needs Python's embedded Tcl (tkinter)")
    from support_rtl import dry_run_tcl

    rtl = write_finn_style_rtl(tmp_path / "rtl", in_bits=24, out_bits=8)
    (rtl / "thr.sv").write_text('module thr #(parameter THRESHOLDS_PATH = "./Thresholding_0_") (); endmodule\n')
    io = {"input": StreamSpec((6,), 8, 3, "uint"), "output": StreamSpec((1,), 4, 1, "uint")}
    proj = generate_vivado_project(rtl, "sbnn_dataflow_top", io, board, tmp_path / "vivado")
    calls = dry_run_tcl(proj, board_files_installed=files)
    names = [c[0] for c in calls]
    b = get_board(board)
    ps = "zynq_ps/" + ("S_AXI_HP0" if b.ps == "ps7" else "S_AXI_HP0_FPD")
    assert _connected(calls, "mem_sc/M00_AXI", ps)
    assert _connected(calls, "dma/M_AXIS_MM2S", "accel/s_axis") and _connected(calls, "accel/m_axis", "dma/S_AXIS_S2MM")
    assert _connected(calls, "out_beats/gpio_io_o", "accel/out_beats")
    assert _connected(calls, "rst_fclk/peripheral_aresetn", "accel/ap_rst_n")
    preset = ["set_property", "board_part", b.board_part, "current_project"]
    assert (preset in calls) == files
    auto = [c for c in calls if c[0] == "apply_bd_automation"]
    if b.ps == "ps7":
        assert "apply_board_preset " + ("1" if files else "0") in auto[0][4]
    for step in ("ipx::package_project", "create_bd_design", "assign_bd_address", "validate_bd_design", "make_wrapper",
                 "launch_runs", "open_run", "report_utilization", "report_timing_summary"):
        assert step in names, step
    assert (proj / "output" / "sbnn_accel.bit").is_file() and (proj / "output" / "sbnn_accel.hwh").is_file()
    summary = json.loads((proj / "output" / "vivado_summary.json").read_text())
    assert summary["wns_ns"] == 0.25
    staged = (proj / "work" / "rtl" / "thr.sv").read_text()
    assert f'"{proj / "work" / "rtl"}/Thresholding_0_"' in staged  # $readmemh prefix made absolute


def _stitch_json(**over):
    d = {"top": "sbnn_dataflow_top", "in_dtype": "UINT8", "out_dtype": "UINT8", "in_shape": [1, 784],
         "out_shape": [1, 1], "in_fold": 49, "in_beats": 16, "out_fold": 1, "out_beats": 1, "in_width": 392,
         "out_width": 8, "nodes": [{"op_type": "Thresholding_rtl"}, {"op_type": "SparseXnorMVAU"},
                                   {"op_type": "LabelSelect_hls"}, {"op_type": "StreamingFIFO_rtl"}]}
    d.update(over)
    return d


def test_io_from_stitched_design():
    from sbnn.bitstreams.vivado import io_from_stitched

    io = io_from_stitched(_stitch_json())
    assert io["meaning"] == "class_index"
    assert io["input"] == StreamSpec((784,), 8, 49, "uint") and io["input"].dma_bits == 512
    assert io["output"].shape == (1,)
    io = io_from_stitched(_stitch_json(nodes=[{"op_type": "SparseXnorMVAU"}], out_dtype="INT7", out_shape=[1, 10],
                                       out_fold=2, out_beats=5, out_width=16))
    assert io["meaning"] == "scores" and io["output"].kind == "int" and io["output"].elem_bits == 7


def test_io_from_stitched_width_mismatch():
    from sbnn.bitstreams.vivado import io_from_stitched

    with pytest.raises(UserError, match=r"stitched design input: shape \[784\] with fold 49 gives 16 beats "
                                        r"of 392 bits, "
                                        r"the design says 16 beats of 400 bits"):
        io_from_stitched(_stitch_json(in_width=400))


def test_regenerating_keeps_a_bitstream_only_for_the_same_sources(tmp_path, node):
    """Rerunning `sbnn build` after building the bitstream by hand must not delete it; changed RTL must."""
    cfg, rtl, io = node
    proj = generate_vivado_project(rtl, cfg.name, io, "pynq-z2", tmp_path / "vivado")
    meta = json.loads((proj / "project.json").read_text())
    bit, hwh = proj / meta["bit"], proj / meta["hwh"]
    bit.parent.mkdir(parents=True, exist_ok=True)
    bit.write_bytes(b"BIT")
    hwh.write_text("<hwh/>")
    generate_vivado_project(rtl, cfg.name, io, "pynq-z2", tmp_path / "vivado")
    assert bit.read_bytes() == b"BIT" and hwh.is_file(), "same RTL and Tcl: the built bitstream is kept"
    src = rtl / f"{cfg.name}.v"
    src.write_text(src.read_text() + "\n// changed\n")
    generate_vivado_project(rtl, cfg.name, io, "pynq-z2", tmp_path / "vivado")
    assert not bit.exists() and not hwh.exists(), "other RTL: the old bitstream must not reach a deploy package"
