"""The sliding-window generator kernel: FINN's ConvolutionInputGenerator_rtl, generated through our kernel
contract, simulated in Verilator against FINN's Python execution of the generic op.

Each case builds an Im2Col graph, converts it with FINN's InferConvInpGen and SpecializeLayers (as the
compile does), folds it, stitches the one-node graph and streams random frames through it with random
backpressure and input gaps: 0 mismatching elements, every frame exactly once. Without stalls the
measured cycles per frame are checked against the kernel's cycle model.
"""

from __future__ import annotations

import numpy as np
import pytest
from finn.core.onnx_exec import execute_onnx
from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

from sbnn.errors import UserError
from sbnn.export.verify import python_exec_view
from sbnn.hls import ops
from sbnn.hls.stitch import stitch
from sbnn.hls.stitched_rtlsim import simulate_stitched
from sbnn.hls.swg.kernel import SWG, finn_counters_ok, swg_cycles, swg_fold_for_mvau
from support_rtl import require_verilator

PART = "xc7z020clg400-1"


def swg_graph(h: int, c: int, k: int, stride: int, dt: str, simd: int | None = None, pw: int = 0,
              w: int | None = None) -> ModelWrapper:
    """Im2Col (valid, NHWC) -> FINN's ConvolutionInputGenerator_rtl, folded to ``simd`` / ``pw``."""
    w = w or h
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, c])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, oh, ow, k * k * c])
    node = helper.make_node("Im2Col", ["x"], ["y"], domain="qonnx.custom_op.general", stride=[stride, stride],
                            kernel_size=[k, k], pad_amount=[0, 0, 0, 0], dilations=[1, 1],
                            input_shape=f"(1,{h},{w},{c})")
    model = ModelWrapper(qonnx_make_model(helper.make_graph([node], "swg", [x], [y])))
    model.set_tensor_datatype("x", DataType[dt])
    model = model.transform(InferShapes()).transform(InferDataTypes()).transform(InferConvInpGen())
    model = model.transform(SpecializeLayers(PART))
    model.graph.node[0].name = "SWG_0"
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("SIMD", simd or c)
    inst.set_nodeattr("parallel_window", pw)
    return model


def reference(model, x: np.ndarray) -> np.ndarray:
    """FINN's Python execution of the generic ConvolutionInputGenerator (the kernel's python_view)."""
    view = python_exec_view(model)
    shape = model.get_tensor_shape("x")
    return np.stack([execute_onnx(view, {"x": xi.reshape(shape).astype(np.float32)})["y"].reshape(-1)
                     for xi in x]).astype(np.int64)


def random_frames(model, n: int, seed: int) -> np.ndarray:
    dt = model.get_tensor_datatype("x")
    size = int(np.prod(model.get_tensor_shape("x")))
    return np.random.default_rng(seed).integers(int(dt.min()), int(dt.max()) + 1, size=(n, size))


def check_rtl(model, tmp_path, frames: int = 6, stalls: float = 0.3, seed: int = 0) -> dict:
    """Stitch + simulate: bit-exact under stalls, then cycles/frame without stalls (same build)."""
    require_verilator()
    design = stitch(model, tmp_path / "st")
    assert [n.op_type for n in design.nodes] == [SWG.op_type] and design.nodes[0].impl == "finn"
    x = random_frames(model, frames, seed)
    ref = reference(model, x)
    stalled = simulate_stitched(design, x, backpressure=stalls, gaps=stalls, seed=seed + 1)
    assert stalled.outputs.shape == ref.shape
    mismatches = int(np.count_nonzero(stalled.outputs != ref))
    assert mismatches == 0, f"{mismatches} mismatching elements"
    free = simulate_stitched(design, x)
    assert np.array_equal(free.outputs, ref)
    inst = getCustomOp(model.graph.node[0])
    return {"measured": free.cycles_per_frame, "model": swg_cycles(inst), "finn": inst.get_exp_cycles()}


def test_registered_and_python_view():
    assert ops.kernel_for("ConvolutionInputGenerator_rtl") is SWG and SWG.impl == "finn"
    model = swg_graph(5, 2, 3, 1, "INT8", simd=1)
    x = random_frames(model, 2, 0)
    ref = reference(model, x)
    # window of output pixel (0, 0): rows 0..2, cols 0..2, c fastest (FINN's (ky, kx, c) order)
    img = x[0].reshape(5, 5, 2)
    assert np.array_equal(ref[0][:18], img[0:3, 0:3, :].reshape(-1))


@pytest.mark.parametrize("h,c,k,stride,dt,simd,pw", [
    (6, 8, 3, 1, "BINARY", 2, 0),      # binary activations, SIMD < C
    # (one Verilator build each: the default tier keeps one, the slow tier runs all, and the random regression)
    pytest.param(7, 3, 3, 1, "UINT8", 3, 1, marks=pytest.mark.slow),   # first layer: 3 x 8-bit, window per beat
    pytest.param(9, 4, 3, 2, "INT8", 4, 0, marks=pytest.mark.slow),    # stride 2, SIMD = C
])
def test_swg_rtl_matches_python(tmp_path, h, c, k, stride, dt, simd, pw):
    r = check_rtl(swg_graph(h, c, k, stride, dt, simd, pw), tmp_path)
    assert abs(r["measured"] - r["model"]) <= 0.01 * r["model"] + 2, r
    assert r["measured"] <= r["finn"] + 1, r     # FINN's estimate bounds the steady state


def test_fold_for_mvau():
    model = swg_graph(8, 16, 3, 1, "BINARY")
    inst = getCustomOp(model.graph.node[0])
    # (consumer SIMD, expected (SIMD, parallel_window)); the consumer's SIMD divides K*K*C = 144
    for mvau_simd, want in [(4, (4, 0)), (16, (16, 0)), (48, (16, 1)), (144, (16, 1)), (24, (16, 1)), (6, (2, 0))]:
        swg_fold_for_mvau(inst, mvau_simd)
        assert (inst.get_nodeattr("SIMD"), inst.get_nodeattr("parallel_window")) == want, mvau_simd
        out = inst.get_outstream_width()   # BINARY: bits = elements; a DWC only ever splits or joins whole beats
        assert out % mvau_simd == 0 if out >= mvau_simd else mvau_simd % out == 0
    # CNV's last conv (3x3 -> 1x1): no parallel window (FINN's controller), SIMD = C and a width converter
    last = getCustomOp(swg_graph(3, 16, 3, 1, "BINARY").graph.node[0])
    swg_fold_for_mvau(last, 48)
    assert (last.get_nodeattr("SIMD"), last.get_nodeattr("parallel_window")) == (16, 0)
    assert finn_counters_ok(last, 0) and not finn_counters_ok(last, 1)


@pytest.mark.slow
def test_parallel_window_through_width_converter(tmp_path):
    """The compile's chain for an MVAU with SIMD > C: parallel-window SWG (K*K*C = 36 per beat) -> FINN's
    DWC 36 -> 12 elements (what InsertDWC puts before an MVAU with SIMD = 12), bit-exact under stalls."""
    model = swg_graph(6, 4, 3, 1, "INT8")
    swg_fold_for_mvau(getCustomOp(model.graph.node[0]), 12)
    swg = getCustomOp(model.graph.node[0])
    assert swg.get_nodeattr("parallel_window") == 1 and swg.get_outstream_width() == 36 * 8
    shape = model.get_tensor_shape("y")
    model.graph.node[0].output[0] = "w"    # SWG -> w -> DWC -> y (the graph output)
    dwc = helper.make_node("StreamingDataWidthConverter", ["w"], ["y"], name="DWC_0",
                           domain="finn.custom_op.fpgadataflow", backend="fpgadataflow", inShape=shape,
                           outShape=shape, inWidth=36 * 8, outWidth=12 * 8, dataType="INT8")
    model.graph.node.append(dwc)
    model.graph.value_info.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, shape))
    model.set_tensor_datatype("w", DataType["INT8"])
    model = model.transform(SpecializeLayers(PART))
    assert [n.op_type for n in model.graph.node] == [SWG.op_type, "StreamingDataWidthConverter_rtl"]
    design = stitch(model, tmp_path / "st")
    assert design.out_fold == 12
    x = random_frames(model, 4, 3)
    res = simulate_stitched(design, x, backpressure=0.3, gaps=0.3, seed=5)
    assert np.array_equal(res.outputs, reference(model, x))


def test_fold_to_consumer_and_folding_file_checks():
    inst = getCustomOp(swg_graph(8, 16, 3, 1, "BINARY").graph.node[0])

    class Consumer:
        def get_nodeattr(self, name):
            return {"SIMD": 8}[name]

    SWG.fold_to_consumer(inst, Consumer())
    assert inst.get_nodeattr("SIMD") == 8
    SWG.apply_folding(inst, {"SIMD": 16, "parallel_window": 1}, "baked")
    assert (inst.get_nodeattr("SIMD"), inst.get_nodeattr("parallel_window")) == (16, 1)
    with pytest.raises(UserError, match="must divide its 16 channels"):
        SWG.apply_folding(inst, {"SIMD": 6}, "baked")
    with pytest.raises(UserError, match="needs SIMD equal"):
        SWG.apply_folding(inst, {"SIMD": 4, "parallel_window": 1}, "baked")
    small = getCustomOp(swg_graph(4, 8, 3, 1, "BINARY").graph.node[0])   # 2x2 output
    with pytest.raises(UserError, match="cannot generate"):
        SWG.apply_folding(small, {"SIMD": 8, "parallel_window": 1}, "baked")
    assert small.get_nodeattr("parallel_window") == 0
    row = SWG.layer_row(inst)
    assert row["MW"] == 16 and row["MH"] == 144 and row["SIMD"] == 16


def _random_config(rng):
    while True:
        k = int(rng.choice([2, 3, 3, 3, 5]))
        stride = int(rng.choice([1, 1, 2]))
        dt = str(rng.choice(["BINARY", "BINARY", "INT8", "UINT8"]))
        c = int(rng.choice([1, 2, 3, 4, 8, 16, 32, 64] if dt == "BINARY" else [1, 2, 3, 4, 8, 16]))
        h = int(rng.integers(k, 17))
        pw = int(rng.random() < 0.3)
        simd = c if pw else int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
        inst = getCustomOp(swg_graph(h, c, k, stride, dt, simd, pw).graph.node[0])
        if finn_counters_ok(inst, pw):
            return h, c, k, stride, dt, simd, pw


@pytest.mark.slow
def test_swg_random_regression(tmp_path):
    rng = np.random.default_rng(2024)
    rows = []
    for i in range(40):
        cfg = _random_config(rng)
        r = check_rtl(swg_graph(*cfg), tmp_path / f"c{i}", frames=5, seed=i)
        rows.append((cfg, r))
        # exact at stride 1 so far; stride 2 with skipped rows/columns is off by a few cycles (<= 2.4 %)
        tol = 0.01 * r["model"] + 2 if cfg[3] == 1 else 0.05 * r["model"] + 4
        assert abs(r["measured"] - r["model"]) <= tol, (cfg, r)
    assert len(rows) == 40
