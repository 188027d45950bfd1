"""FINN's RTL layers under the kernel contract: FINN generates, estimates and folds them.

* RTL: FINN's node-level ``generate_hdl`` (the template fill that FINN's
  PrepareIP runs; no Vivado needed) plus the finn-rtllib sources they
  reference, copied next to the generated files so the design folder is
  self-contained. Thresholds are ``$readmemh`` files (FINN's
  ``THRESHOLDS_PATH = "./<node>_"``): simulate with the rtl folder as working
  directory (``sbnn.hls.stitched_rtlsim`` does).
* Python execution: FINN's specialized ``*_rtl`` layers only execute in
  cppsim/rtlsim, so they run as their generic layer (same attributes, FINN's
  Python reference); a width converter passes values through unchanged.
* Estimates: FINN's ``lut_estimation``/``bram_estimation``/``dsp_estimation``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import finn

from sbnn.hls.finn_rtl.fifo_patch import patch_fifo
from sbnn.hls.finn_rtl.passthrough import OP_TYPE as PASS_THROUGH
from sbnn.hls.kernel import SBNN_DOMAIN, HdlFiles, Kernel, divisors, node_attr

FINN_RTLLIB = Path(finn.__file__).parent / "finn-rtllib"
GENERIC_DOMAIN = "finn.custom_op.fpgadataflow"
PATCHES = {"fifo.sv": patch_fifo}

# Thresholding's AXI-Lite (runtime threshold writes) and second input are unused: tie them off. The stitched
# top is a .v file, which Vivado reads as Verilog-2001: every constant is sized (no SystemVerilog '0), the
# widths being those FINN's wrapper declares (finn-rtllib thresholding_template_wrapper.v).
_THRESHOLDING_TIES = (
    ".s_axilite_AWVALID(1'b0), .s_axilite_AWREADY(), .s_axilite_AWADDR({addr}'d0), .s_axilite_WVALID(1'b0), "
    ".s_axilite_WREADY(), .s_axilite_WDATA(32'd0), .s_axilite_WSTRB(4'd0), .s_axilite_BVALID(), "
    ".s_axilite_BREADY(1'b1), .s_axilite_BRESP(), .s_axilite_ARVALID(1'b0), .s_axilite_ARREADY(), "
    ".s_axilite_ARADDR({addr}'d0), .s_axilite_RVALID(), .s_axilite_RREADY(1'b1), .s_axilite_RDATA(), "
    ".s_axilite_RRESP(), .in1_V_TREADY(), .in1_V_TVALID(1'b0), .in1_V_TDATA({sets}'d0)")


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def thresholding_ties(wrapper_text: str) -> str:
    """Tie-offs sized for one generated Thresholding wrapper, from its integer parameters."""
    p = {k: int(v) for k, v in re.findall(r"\bparameter\s+(\w+)\s*=\s*(\d+)\b", wrapper_text)}
    sets, c, pe, n = p["SETS"], p["C"], p["PE"], p["N"]
    addr = _clog2(sets) + _clog2(c // pe) + _clog2(pe) + _clog2(n) + 2   # AWADDR/ARADDR: [..+1:0]
    set_bits = ((_clog2(sets) if sets > 2 else 1) + 7) // 8 * 8             # in1_V_TDATA: padded to bytes
    return _THRESHOLDING_TIES.format(addr=addr, sets=set_bits)


class FinnRtlKernel(Kernel):
    """One of FINN's ``*_rtl`` layers: ``library`` lists its finn-rtllib sources."""

    impl = "finn"

    def __init__(self, op_type: str, library: list[str], extra_ports: str = "", short_name: str = "",
                 in_layer_table: bool = True):
        self.op_type = op_type
        self.library = library
        self.extra_ports = extra_ports
        self.short_name = short_name
        self.in_layer_table = in_layer_table

    def python_view(self, node) -> None:
        node.op_type = node.op_type.removesuffix("_rtl").removesuffix("_hls")
        node.domain = GENERIC_DOMAIN

    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        node = inst.onnx_node
        gen = rtl_dir.parent / "finn_gen" / node.name
        gen.mkdir(parents=True, exist_ok=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(gen))
        inst.generate_hdl(model, fpga_part, clk_ns)
        sources, data = [], []
        for f in sorted(gen.iterdir()):
            if f.suffix in (".v", ".sv", ".dat"):
                shutil.copy(f, rtl_dir / f.name)
                (data if f.suffix == ".dat" else sources).append(f.name)
        lib = {}
        for rel in self.library:
            name = Path(rel).name
            text = (FINN_RTLLIB / rel).read_text()
            lib[name] = PATCHES[name](text) if name in PATCHES else text
        return HdlFiles(module=inst.get_nodeattr("gen_top_module"), files=sources, data_files=data,
                        lib_files=lib, port_style="finn", extra_ports=self.extra_ports)


class PassThroughKernel(FinnRtlKernel):
    """FIFOs and width converters: in Python they pass values through (FINN's width converter only
    takes batch 1), shaped as their output tensor is declared (:mod:`sbnn.hls.finn_rtl.passthrough`)."""

    def python_view(self, node) -> None:
        node.op_type, node.domain = PASS_THROUGH, SBNN_DOMAIN
        del node.attribute[:]


class ThresholdingKernel(FinnRtlKernel):
    """FINN's Thresholding_rtl; it refolds for the node it feeds so that the width converter between them
    converts by a whole ratio."""

    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        hdl = super().generate_hdl(inst, model, rtl_dir, fpga_part, clk_ns)
        wrapper = (rtl_dir / f"{hdl.module}.v").read_text()
        return replace(hdl, extra_ports=thresholding_ties(wrapper))

    def fold_to_consumer(self, inst, consumer) -> None:
        """Raise PE to the next divisor of the channel count that divides, or is a multiple of, the consumer's
        SIMD. Why: FINN's width converter (finn-rtllib vpc.sv) between PE and SIMD elements per beat that are
        not in a whole ratio ran below full rate in our rtlsim: TFC with PE 8 into SIMD 49 took 112
        cycles/frame where the layers' models said 98 (PE 8 into SIMD 56: 98). A larger PE is never slower."""
        simd, pe = int(node_attr(consumer, "SIMD") or 0), int(inst.get_nodeattr("PE"))
        if not simd or pe % simd == 0 or simd % pe == 0:
            return
        for d in divisors(int(inst.get_nodeattr("NumChannels"))):
            if d > pe and (d % simd == 0 or simd % d == 0):
                inst.set_nodeattr("PE", d)
                return


THRESHOLDING = ThresholdingKernel("Thresholding_rtl", ["axi/hdl/axilite.sv", "thresholding/hdl/thresholding.sv",
                                                  "thresholding/hdl/thresholding_axi.sv"],
                             short_name="Thres")
FIFO = PassThroughKernel("StreamingFIFO_rtl", ["fifo/hdl/fifo.sv"], extra_ports=".count(), .maxcount()",
                     short_name="FIFO", in_layer_table=False)
WIDTH_CONVERTER = PassThroughKernel("StreamingDataWidthConverter_rtl", ["dwc/hdl/vpc.sv", "dwc/hdl/dwc_axi.sv"],
                                       short_name="DWC", in_layer_table=False)
