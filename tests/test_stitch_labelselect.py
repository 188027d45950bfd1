"""Our RTL top-1 LabelSelect (replaces FINN's HLS-only LabelSelect_hls in the stitched design).

The Python model (first maximum wins) equals FINN's LabelSelect execution (an
ONNX TopK, k=1) on tie-heavy data; the RTL equals the model in Verilator,
including ties, signed and unsigned inputs, PE > 1, backpressure and gaps.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.labelselect.rtlgen import generate_labelselect, labelselect_reference


def _finn_labelselect(x: np.ndarray, dtype: str) -> np.ndarray:
    pytest.importorskip("finn")
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    n, labels = x.shape
    node = helper.make_node("LabelSelect", ["inp"], ["outp"], domain="finn.custom_op.fpgadataflow",
                            backend="fpgadataflow", Labels=labels, PE=1, K=1, inputDataType=dtype,
                            outputDataType="UINT8", numInputVectors=[n])
    ctx = {"inp": x.astype(np.float32), "outp": np.zeros((n, 1), dtype=np.float32)}
    getCustomOp(node).execute_node(ctx, None)
    return ctx["outp"].reshape(n).astype(np.int64)


def test_reference_matches_finn_topk_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 3, (500, 10))          # many ties
    assert np.array_equal(labelselect_reference(x), _finn_labelselect(x, "INT3"))


def _design(tmp_path, labels, pe, dtype):
    from qonnx.core.datatype import DataType

    from sbnn.hls.stitch import StitchedDesign, StitchedNode, top_verilog

    dt = DataType[dtype]
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "ls.v").write_text(generate_labelselect("ls", labels, pe, dt.bitwidth(), dt.signed(), 8))
    iw = max(8, (pe * dt.bitwidth() + 7) // 8 * 8)
    node = StitchedNode("ls", "LabelSelect_hls", "sbnn", "ls", iw, 8, labels // pe, ["ls.v"])
    (rtl / "ls_top.v").write_text(top_verilog("ls_top", [node]))
    return StitchedDesign(top="ls_top", out_dir=str(tmp_path), hw_graph="", files=["ls.v", "ls_top.v"], nodes=[node],
                          in_dtype=dtype, out_dtype="UINT8", in_shape=[1, labels], out_shape=[1, 1], in_fold=pe,
                          in_beats=labels // pe, out_fold=1, out_beats=1, in_width=iw, out_width=8,
                          est_cycles_per_frame=labels // pe, bottleneck="ls", rtl_hash="")


@pytest.mark.parametrize("labels,pe,dtype", [(12, 4, "UINT3"), (10, 10, "INT4")])
def test_rtl_labelselect_matches_reference(tmp_path, labels, pe, dtype):
    from qonnx.core.datatype import DataType

    from sbnn.hls.stitched_rtlsim import simulate_stitched

    dt = DataType[dtype]
    rng = np.random.default_rng(labels)
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, (300, labels))
    x[:50] = rng.integers(int(dt.min()), int(dt.min()) + 2, (50, labels))   # ties everywhere
    d = _design(tmp_path, labels, pe, dtype)
    res = simulate_stitched(d, x, build_dir=tmp_path / "vb")
    assert np.array_equal(res.outputs[:, 0], labelselect_reference(x))
    assert res.cycles_per_frame == labels // pe                 # one beat per cycle, FINN's cycle figure
    res2 = simulate_stitched(d, x, backpressure=0.5, gaps=0.3, seed=2, build_dir=tmp_path / "vb")
    assert np.array_equal(res2.outputs[:, 0], labelselect_reference(x))


def test_labelselect_refuses_k_above_one():
    with pytest.raises(ValueError, match="K=1"):
        generate_labelselect("ls", 10, 1, 7, True, 8, k=3)
