"""Kernel registration of the top-1 LabelSelect: FINN's op (``LabelSelect_hls``), our RTL.

FINN's LabelSelect is HLS-only (Vivado HLS is not available here), so the
stitched design uses :mod:`sbnn.hls.labelselect.rtlgen` in its place; FINN's
Python execution of its generic ``LabelSelect`` layer is the reference.
"""

from __future__ import annotations

from pathlib import Path

from sbnn.errors import UserError
from sbnn.hls.kernel import HdlFiles, Kernel
from sbnn.hls.labelselect.rtlgen import generate_labelselect


class LabelSelectKernel(Kernel):
    impl = "sbnn"
    short_name = "LabelSel"

    def __init__(self, op_type: str = "LabelSelect_hls"):
        self.op_type = op_type

    def python_view(self, node) -> None:
        if node.op_type.endswith(("_hls", "_rtl")):
            node.op_type = node.op_type[:-4]
        node.domain = "finn.custom_op.fpgadataflow"

    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        name = inst.onnx_node.name
        idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
        try:
            text = generate_labelselect(name, inst.get_nodeattr("Labels"), inst.get_nodeattr("PE"),
                                        idt.bitwidth(), idt.signed(), odt.bitwidth(), inst.get_nodeattr("K"))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        (rtl_dir / f"{name}.v").write_text(text)
        return HdlFiles(module=name, files=[f"{name}.v"])

    def layer_row(self, inst) -> dict:
        return {"MW": int(inst.get_nodeattr("Labels")), "MH": int(inst.get_nodeattr("K")),
                "PE": int(inst.get_nodeattr("PE")), "SIMD": None, "sparsity": None}
