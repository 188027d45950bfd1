"""The kernel contract: a toy kernel registered here runs through stitch + Verilator rtlsim with no edit
anywhere else in sbnn, and no module outside the sparse MVAU's own folder names its op type."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from finn.core.onnx_exec import execute_onnx
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from sbnn.export.verify import python_exec_view
from sbnn.hls import ops
from sbnn.hls.kernel import SBNN_DOMAIN, HdlFiles, Kernel
from sbnn.hls.stitch import stitch
from sbnn.hls.stitched_rtlsim import simulate_stitched

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("sbnn", "training", "export", "hls", "bitstreams")


class ToyInvert(HWCustomOp):
    """Bitwise NOT of a BINARY stream, PE channels per beat: the smallest op that shows data really flows."""

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs.update({"NumChannels": ("i", True, 0), "PE": ("i", True, 1), "numInputVectors": ("ints", False, [1])})
        return attrs

    def get_input_datatype(self, ind=0):
        return DataType["BINARY"]

    def get_output_datatype(self, ind=0):
        return DataType["BINARY"]

    def get_normal_input_shape(self, ind=0):
        return tuple(self.get_nodeattr("numInputVectors")) + (self.get_nodeattr("NumChannels"),)

    get_normal_output_shape = get_normal_input_shape

    def get_folded_input_shape(self, ind=0):
        ch, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        return tuple(self.get_nodeattr("numInputVectors")) + (ch // pe, pe)

    get_folded_output_shape = get_folded_input_shape

    def get_instream_width(self, ind=0):
        return self.get_nodeattr("PE")

    get_outstream_width = get_instream_width

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self):
        return self.get_number_output_values()

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["BINARY"])

    def verify_node(self):
        return []

    def execute_node(self, context, graph):
        node = self.onnx_node
        context[node.output[0]] = (1 - np.asarray(context[node.input[0]])).astype(np.float32)


class ToyInvertKernel(Kernel):
    op_type = "ToyInvert"
    op_class = ToyInvert

    def generate_hdl(self, inst, model, rtl_dir, fpga_part, clk_ns):
        name, w = inst.onnx_node.name, ((inst.get_nodeattr("PE") + 7) // 8) * 8
        (rtl_dir / f"{name}.v").write_text(f"""module {name} (
  input wire ap_clk, input wire ap_rst_n,
  input wire [{w - 1}:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
  output wire [{w - 1}:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready);
  reg [{w - 1}:0] data;
  reg valid;
  assign s_axis_tready = !valid || m_axis_tready;
  assign m_axis_tvalid = valid;
  assign m_axis_tdata = data;
  always @(posedge ap_clk) begin
    if (!ap_rst_n) valid <= 1'b0;
    else if (s_axis_tready) begin
      valid <= s_axis_tvalid;
      data <= ~s_axis_tdata;
    end
  end
endmodule
""")
        return HdlFiles(module=name, files=[f"{name}.v"])


def _toy_graph(channels: int, pe: int) -> ModelWrapper:
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels])
    node = helper.make_node("ToyInvert", ["x"], ["y"], name="ToyInvert_0", domain=SBNN_DOMAIN,
                            backend="fpgadataflow", NumChannels=channels, PE=pe)
    model = ModelWrapper(qonnx_make_model(helper.make_graph([node], "toy", [inp], [out])))
    model.set_tensor_datatype("x", DataType["BINARY"])
    model.set_tensor_datatype("y", DataType["BINARY"])
    return model


@pytest.fixture
def toy_kernel():
    ops.register(ToyInvertKernel())
    yield
    ops._KERNELS.pop("ToyInvert", None)


@pytest.mark.parametrize("channels,pe", [(12, 4), (16, 16)])
def test_toy_kernel_through_stitch_and_rtlsim(toy_kernel, tmp_path, channels, pe):
    model = _toy_graph(channels, pe)
    design = stitch(model, tmp_path / "stitch")
    assert [n.op_type for n in design.nodes] == ["ToyInvert"] and design.in_beats == channels // pe
    x = np.random.default_rng(0).integers(0, 2, size=(64, channels))
    view = python_exec_view(model)
    ref = np.stack([execute_onnx(view, {"x": xi[None].astype(np.float32)})["y"][0] for xi in x])
    res = simulate_stitched(design, x, backpressure=0.3, gaps=0.3, seed=1, build_dir=tmp_path / "verilator")
    assert res.outputs.shape == (64, channels)
    assert np.array_equal(res.outputs, ref.astype(np.int64)), "rtlsim differs from the toy op's Python execution"
    assert np.array_equal(res.outputs, 1 - x)


def test_unregistered_op_is_named_by_the_stitcher(tmp_path):
    from sbnn.errors import UserError

    ops.register(ToyInvertKernel())
    model = _toy_graph(8, 8)       # qonnx has the class now; the kernel goes away again below
    ops._KERNELS.pop("ToyInvert")
    with pytest.raises(UserError, match="node 'ToyInvert_0': op type ToyInvert has no RTL implementation"):
        stitch(model, tmp_path / "s")


def _package_sources():
    for d in PACKAGE_DIRS:
        yield from sorted((REPO / d).rglob("*.py"))


def test_only_the_kernel_folder_names_the_sparse_mvau_op_type():
    """The sparse MVAU is known to the rest of sbnn only through the kernel registry."""
    op_type = ops.kernel_for("SparseXnorMVAU").op_type
    allowed = REPO / "hls" / "sparse_mvau"
    offenders = [str(p.relative_to(REPO)) for p in _package_sources()
                 if not p.is_relative_to(allowed) and re.search(rf"\b{op_type}\b", p.read_text())]
    assert offenders == [], f"modules outside hls/sparse_mvau/ name {op_type}: {offenders}"
