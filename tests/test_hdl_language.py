"""Every generated HDL file is legal in the language its extension names, as Vivado reads it.

Vivado compiles ``.v`` files as Verilog (not SystemVerilog): a SystemVerilog-only construct there, like
the unsized ``'0`` the stitched top once used for tie-offs, stops synthesis, while Verilator and Yosys
(which read every file as SystemVerilog) accept it. So every ``.v`` of a stitched design, plus the
Vivado project's DMA wrapper, goes through ``iverilog -g2001`` (strict Verilog-2001, where any
SystemVerilog construct is a warning or an error), and the whole design, ``.sv`` files as
SystemVerilog and ``.v`` files as Verilog-2005, through ``verilator --lint-only``.

Default tier: the small bipolar MLP stitched with the default compile (baked weights), with a folding
that makes FINN insert width converters, and in memory weight mode. Slow tier: a conv net (Brevitas'
CNV topology: sliding windows, max-pools, multi-bit first layer).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("finn")

IVERILOG = shutil.which("iverilog")
needs_iverilog = pytest.mark.skipif(IVERILOG is None, reason="iverilog not installed (scripts/setup.sh installs "
                                                             "the Debian package iverilog)")

# iverilog elaborates what it parsed: modules defined in .sv files (read separately) are missing, and that
# is the only complaint allowed; anything else (a syntax error, "Using SystemVerilog ...") fails
_MISSING = re.compile(r"^\S+:\d+: error: Unknown module type: (\w+)$")
_MISSING_SUMMARY = re.compile(r"^(\d+ error\(s\) during elaboration\.|\*\*\* These modules were missing:|\*\*\*|"
                              r"\s+(\w+) referenced \d+ times\.)$")


def _modules(files: list[Path]) -> set[str]:
    return {m for f in files for m in re.findall(r"^\s*module\s+(\w+)", f.read_text(), flags=re.M)}


def strict_verilog_problems(files: list[Path], cwd: Path) -> list[str]:
    """``iverilog -g2001`` diagnostics of the .v ``files`` other than instances of modules defined in .sv files."""
    v = [f for f in files if f.suffix == ".v"]
    sv_modules = _modules([f for f in files if f.suffix == ".sv"])
    res = subprocess.run([IVERILOG, "-g2001", "-t", "null", *map(str, v)], cwd=cwd, capture_output=True, text=True)
    problems = []
    for line in (res.stdout + res.stderr).splitlines():
        missing, summary = _MISSING.match(line), _MISSING_SUMMARY.match(line)
        name = missing.group(1) if missing else summary.group(2) if summary else ""
        if (missing or summary) and (name is None or name in sv_modules):
            continue
        problems.append(line)
    return problems


def systemverilog_lint_errors(files: list[Path], top: str, cwd: Path) -> str:
    """Verilator --lint-only over the whole design: .sv as SystemVerilog, .v as Verilog-2005 (what Vivado
    accepts in .v files, $clog2 included). Returns the error output ('' when it parses and elaborates)."""
    from sbnn.hls.verilator import verilator_env
    from support_rtl import require_verilator

    root = require_verilator()
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wno-fatal", "+1364-2005ext+v",
                          "--top-module", top, *map(str, files)], cwd=cwd, env=verilator_env(root),
                         capture_output=True, text=True)
    return "" if res.returncode == 0 else "\n".join(ln for ln in res.stderr.splitlines() if ln.startswith("%Error"))


def _check_design(build: Path, out: Path) -> list[Path]:
    """Stitch ``build``, generate its Vivado project; every .v/.sv in both must be legal. Returns the .v files."""
    from sbnn.bitstreams.vivado import generate_vivado_project, io_from_stitched
    from sbnn.hls.stitch import stitch

    design = stitch(build, out / "stitch")
    proj = generate_vivado_project(design.rtl_dir, design.top, io_from_stitched(design), "pynq-z2", out / "vivado")
    # the stitch's compile order (packages before their users), then the DMA wrapper around the top
    files = [proj / "rtl" / "src" / f for f in design.files if f.endswith((".v", ".sv"))]
    files.append(proj / "rtl" / f"{design.top}_dma.v")
    assert sorted(files) == sorted(p for p in (proj / "rtl").rglob("*") if p.suffix in (".v", ".sv"))
    problems = strict_verilog_problems(files, proj / "rtl" / "src")
    assert not problems, "not Verilog-2001:\n" + "\n".join(problems)
    errors = systemverilog_lint_errors(files, f"{design.top}_dma", proj / "rtl" / "src")
    assert not errors, errors
    return [p for p in files if p.suffix == ".v"]


def declared_width(wrapper: str, port: str) -> int:
    """Width of an input port of a generated FINN wrapper: its range expression evaluated with the
    wrapper's parameters (Verilog's $clog2, integer division and ?: in Python)."""
    params = {k: int(v) for k, v in re.findall(r"\bparameter\s+(\w+)\s*=\s*(\d+)\b", wrapper)}
    hi = re.search(rf"input\s*\[(.+?):0\]\s*{port}\b", wrapper).group(1)
    hi = re.sub(r"\(([^?()]+)\?\s*([^:]+?)\s*:\s*([^()]+)\)", r"((\2) if (\1) else (\3))", hi)
    hi = hi.replace("$clog2", "clog2").replace("/", "//")
    return eval(hi, {"clog2": lambda n: max(0, (n - 1).bit_length())}, params) + 1


@needs_iverilog
def test_checker_rejects_systemverilog_in_a_v_file(tmp_path):
    """The check can fail: the old unsized tie-off `'0` in a .v file is reported."""
    f = tmp_path / "top.v"
    f.write_text("module top(output wire [3:0] a, output wire [3:0] b);\n  assign a = '0;\n"
                 "  assign b = 4'd0;\nendmodule\n")
    problems = strict_verilog_problems([f], tmp_path)
    assert problems and "top.v:2" in problems[0] and "SystemVerilog" in problems[0]
    f.write_text("module top(output wire [3:0] a);\n  assign a = 4'd0;\nendmodule\n")
    assert strict_verilog_problems([f], tmp_path) == []


@pytest.fixture(scope="module")
def bipolar_onnx(compiled):
    return compiled["bipolar"]


@needs_iverilog
def test_default_design_hdl_is_legal(bipolar_onnx, tmp_path):
    vfiles = _check_design(bipolar_onnx["build"], tmp_path)
    names = {p.name for p in vfiles}
    assert {"sbnn_dataflow_top.v", "sbnn_dataflow_top_dma.v", "SparseXnorMVAU_0.v", "Thresholding_rtl_0.v"} <= names
    top = next(p for p in vfiles if p.name == "sbnn_dataflow_top.v").read_text()
    assert "'0" not in top
    # every tie-off constant has the width the Thresholding wrapper declares for its port
    wrapper = next(p for p in vfiles if p.name == "Thresholding_rtl_0.v").read_text()
    for port in ("s_axilite_AWADDR", "s_axilite_ARADDR", "in1_V_TDATA"):
        tie = re.search(rf"\.{port}\((\d+)'d0\)", top)
        assert tie and int(tie.group(1)) == declared_width(wrapper, port), (port, tie and tie.group(0))


@needs_iverilog
def test_folded_and_memory_mode_hdl_is_legal(bipolar_onnx, tmp_path):
    from sbnn.export.compile import compile_model

    fold = tmp_path / "folding.json"
    fold.write_text(json.dumps({"Thresholding_rtl_0": {"PE": 4}, "SparseXnorMVAU_0": {"PE": 8, "SIMD": 16},
                                "SparseXnorMVAU_1": {"PE": 4, "SIMD": 8}, "SparseXnorMVAU_2": {"PE": 2, "SIMD": 4}}))
    compile_model(bipolar_onnx["onnx"], tmp_path / "folded", folding=fold, quiet=True)
    names = {p.name for p in _check_design(tmp_path / "folded", tmp_path / "f")}
    assert any(n.startswith("StreamingDataWidthConverter") for n in names)
    compile_model(bipolar_onnx["onnx"], tmp_path / "memory", weight_mode="memory", quiet=True)
    layers = json.loads((tmp_path / "memory" / "compile_report.json").read_text())["layers"]
    assert {la["weight_mode"] for la in layers if la["op"] == "SparseXnorMVAU"} == {"memory"}
    _check_design(tmp_path / "memory", tmp_path / "m")


@needs_iverilog
@pytest.mark.slow
def test_conv_design_hdl_is_legal(tmp_path):
    from sbnn.export.compile import compile_model
    from support_models import export_brevitas_finn_cnv

    onnx_path = export_brevitas_finn_cnv(tmp_path / "cnv_w1a1.onnx")
    compile_model(onnx_path, tmp_path / "build", target_fps=5000, input_max_value=255)
    names = {p.name for p in _check_design(tmp_path / "build", tmp_path / "cnv")}
    assert any("MaxPool" in n or "SlidingWindow" in n or "ConvolutionInputGenerator" in n for n in names), names
