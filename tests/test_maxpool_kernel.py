"""BinaryMaxPool: reference vs qonnx's MaxPoolNHWC, the rewrite, the op, the kernel, and the generated RTL
(Verilator under backpressure and input gaps, cycle model, lint, Icarus parse, Yosys vs the LUT model)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model
from support_rtl import require_verilator

from sbnn.errors import UserError
from sbnn.hls import ops
from sbnn.hls.maxpool.config import MaxPoolConfig
from sbnn.hls.maxpool.estimates import cycles_per_frame, latency, lut_estimate, lutram_luts
from sbnn.hls.maxpool.infer import InferBinaryMaxPool
from sbnn.hls.maxpool.kernel import MAXPOOL
from sbnn.hls.maxpool.reference import binary_maxpool_reference
from sbnn.hls.maxpool.rtlgen import generate_maxpool
from sbnn.hls.maxpool.rtlsim import PoolJob, simulate_many
from sbnn.hls.stitch import stitch
from sbnn.hls.stitched_rtlsim import simulate_stitched
from sbnn.hls.verilator import verilator_env
from sbnn.hls.yosys import YosysNotFoundError, synth_stats

# (H, W, k, C, PE): sizes and foldings of the brief, odd sizes drop a row/column tail
RTL_CASES = [(4, 4, 2, 1, 1), (5, 5, 2, 8, 2), (8, 8, 2, 16, 4), (10, 10, 3, 8, 8), (28, 28, 2, 64, 16),
             (5, 8, 3, 16, 1), (8, 10, 2, 64, 64), (4, 5, 3, 1, 1), (10, 4, 2, 16, 8), (28, 28, 3, 8, 4)]


def pool_graph(n: int, h: int, w: int, c: int, k: int, dtype: str = "BINARY", stride: int | None = None,
               pads=(0, 0, 0, 0)) -> ModelWrapper:
    """One qonnx MaxPoolNHWC node on an (n, h, w, c) tensor."""
    s = stride or k
    ho, wo = (h + pads[0] + pads[2] - k) // s + 1, (w + pads[1] + pads[3] - k) // s + 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, h, w, c])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, ho, wo, c])
    node = helper.make_node("MaxPoolNHWC", ["x"], ["y"], name="MaxPoolNHWC_0", domain="qonnx.custom_op.general",
                            kernel_shape=[k, k], strides=[s, s], pads=list(pads), ceil_mode=0)
    model = ModelWrapper(qonnx_make_model(helper.make_graph([node], "pool", [x], [y])))
    model.set_tensor_datatype("x", DataType[dtype])
    return model.transform(InferShapes())


@pytest.mark.parametrize("n,h,w,c,k", [(1, 4, 4, 1, 2), (1, 5, 7, 8, 2), (2, 10, 10, 16, 3), (1, 28, 28, 64, 2)])
def test_reference_and_rewrite_match_qonnx_maxpool(n, h, w, c, k):
    model = pool_graph(n, h, w, c, k)
    x = np.random.default_rng(h * w + c).integers(0, 2, (n, h, w, c)).astype(np.float32)
    want = execute_onnx(model, {"x": x})["y"]
    assert np.array_equal(binary_maxpool_reference(x, (k, k)), want)
    hw = model.transform(InferBinaryMaxPool())
    assert [nd.op_type for nd in hw.graph.node] == ["BinaryMaxPool"]
    assert hw.graph.node[0].domain == ops.SBNN_DOMAIN and hw.get_tensor_datatype("y") == DataType["BINARY"]
    inst = getCustomOp(hw.graph.node[0])
    assert inst.get_nodeattr("backend") == "fpgadataflow" and inst.verify_node() == []
    assert inst.get_normal_output_shape() == tuple(want.shape)
    assert np.array_equal(execute_onnx(hw, {"x": x})["y"], want)


@pytest.mark.parametrize("dtype,pads", [("BIPOLAR", (0, 0, 0, 0)), ("UINT2", (0, 0, 0, 0)), ("BINARY", (1, 1, 1, 1))])
def test_rewrite_leaves_other_pools_alone(dtype, pads):
    model = pool_graph(1, 6, 6, 4, 2, dtype, pads=pads)
    out, modified = InferBinaryMaxPool().apply(model)
    assert not modified and [nd.op_type for nd in out.graph.node] == ["MaxPoolNHWC"]


def test_overlapping_windows_are_refused_naming_the_node():
    with pytest.raises(UserError) as e:
        pool_graph(1, 8, 8, 4, 3, stride=2).transform(InferBinaryMaxPool())
    msg = str(e.value)
    assert "\n" not in msg and "MaxPoolNHWC_0" in msg and "stride" in msg


@pytest.mark.filterwarnings("ignore:The values of tensor x")
def test_op_shapes_checks_and_cycles():
    model = pool_graph(1, 10, 6, 16, 2).transform(InferBinaryMaxPool())
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("PE", 4)
    assert inst.get_folded_input_shape() == (1, 10, 6, 4, 4)
    assert inst.get_folded_output_shape() == (1, 5, 3, 4, 4)
    assert inst.get_instream_width() == inst.get_outstream_width() == 4
    assert inst.get_number_output_values() == 5 * 3 * 4
    assert inst.get_exp_cycles() == 10 * 6 * 4
    inst.set_nodeattr("Stride", [1, 1])
    assert any("Stride=[1, 1]" in m for m in inst.verify_node())
    inst.set_nodeattr("Stride", [2, 2])
    inst.set_nodeattr("PE", 3)
    assert any("PE=3" in m for m in inst.verify_node())
    with pytest.raises(ValueError, match="activation bits"):
        execute_onnx(model, {"x": np.full((1, 10, 6, 16), -1, np.float32)})


def test_kernel_registration_folding_and_hdl(tmp_path):
    assert ops.kernel_for("BinaryMaxPool") is MAXPOOL
    names = [type(t).__name__ for t in ops.infer_transforms("baked")]
    assert names.index("InferBinaryMaxPool") > names.index("InferSparseXnorMVAU")
    inst = getCustomOp(pool_graph(1, 8, 8, 12, 2).transform(InferBinaryMaxPool()).graph.node[0])
    assert MAXPOOL.fold_for(inst, 64 * 3) and inst.get_nodeattr("PE") == 4      # smallest PE meeting the target
    assert not MAXPOOL.fold_for(inst, 10) and inst.get_nodeattr("PE") == 12
    MAXPOOL.apply_folding(inst, {"PE": 6}, "baked")
    assert inst.get_nodeattr("PE") == 6 and MAXPOOL.cycles(inst) == 128
    for bad, match in (({"PE": 5}, "PE=5 does not divide its 12 channels"), ({"SIMD": 2}, "unknown setting")):
        with pytest.raises(UserError, match=match):
            MAXPOOL.apply_folding(inst, bad, "baked")
    files = MAXPOOL.generate_hdl(inst, None, tmp_path, "xc7z020clg400-1", 10.0)
    assert files.module == inst.onnx_node.name and (tmp_path / files.files[0]).read_text().count("endmodule") == 1
    cost = MAXPOOL.cost_model(inst, "xc7z020clg400-1")
    assert cost["LUT"] > 0 and cost["BRAM18"] == 0
    assert MAXPOOL.layer_row(inst)["PE"] == 6


def _cfgs(cases):
    return [MaxPoolConfig(h, w, k, k, c, pe, name=f"mp{i}") for i, (h, w, k, c, pe) in enumerate(cases)]


def _check(jobs, results):
    bad = []
    for j, r in zip(jobs, results):
        ref = binary_maxpool_reference(j.inputs, (j.cfg.kh, j.cfg.kw))
        mism = int((r.outputs != ref).sum())
        if mism:
            bad.append(f"{j.cfg}: {mism} mismatches (bp={j.backpressure}, gaps={j.gaps})")
    assert not bad, "\n".join(bad)


def test_rtlsim_matches_reference_and_cycle_model():
    require_verilator()
    cfgs = _cfgs(RTL_CASES)
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 2, (8, c.H, c.W, c.C)) for c in cfgs]
    stressed = [PoolJob(c, x, backpressure=0.3, gaps=0.3, seed=i) for i, (c, x) in enumerate(zip(cfgs, frames))]
    _check(stressed, simulate_many(stressed))   # lost or duplicated output beats raise RtlsimError
    free = [PoolJob(c, x, seed=i) for i, (c, x) in enumerate(zip(cfgs, frames))]
    results = simulate_many(free)               # same model: cached build
    _check(free, results)
    for j, r in zip(free, results):
        model = cycles_per_frame(j.cfg)
        assert abs(r.cycles_per_frame - model) <= 0.05 * model, (j.cfg, r.cycles_per_frame, model)
        assert r.latency == latency(j.cfg), (j.cfg, r.latency, latency(j.cfg))


@pytest.mark.parametrize("case", [(4, 4, 2, 1, 1), (5, 5, 2, 8, 2), (10, 10, 3, 16, 16), (3, 6, 3, 64, 8),
                                  (2, 2, 2, 8, 8), (4, 4, 1, 8, 1)])
def test_rtl_lints_clean_and_parses_as_verilog_2001(tmp_path, case):
    root = require_verilator()
    v = tmp_path / "mp.v"
    v.write_text(generate_maxpool(_cfgs([case])[0], name="mp"))
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(v)], env=verilator_env(root),
                         capture_output=True, text=True)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed: the Verilog-2001 parse check needs it")
    res = subprocess.run(["iverilog", "-g2001", "-o", str(tmp_path / "a.out"), str(v)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_yosys_luts_vs_model():
    """CNV's first pool (28x28x64, 2x2) at PE = 8: Yosys LUTs (LUT-RAM included) / model = 0.91."""
    cfg = MaxPoolConfig(28, 28, 2, 2, 64, 8, name="mp_cnv")
    try:
        st = synth_stats(generate_maxpool(cfg), cfg.name)
    except YosysNotFoundError as e:
        pytest.skip(str(e))
    luts = st["LUT"] + lutram_luts(st["cells"])
    ratio = luts / lut_estimate(cfg)
    assert 0.7 <= ratio <= 1.3, (luts, lut_estimate(cfg), st["cells"])
    assert st["BRAM18"] == 0 and st["DSP"] == 0 and st["FF"] < 2 * cfg.PE + 64


def _random_job(seed: int) -> PoolJob:
    rng = np.random.default_rng(7000 + seed)
    k = int(rng.choice([2, 3])) if seed % 5 else int(rng.choice([1, 2, 3]))
    kh, kw = (k, k) if seed % 3 else (k, int(rng.choice([1, 2, 3])))
    h, w = int(rng.choice([4, 5, 8, 10, 28])), int(rng.choice([4, 5, 8, 10, 28]))
    c = int(rng.choice([1, 8, 16, 64, 12]))
    pe = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
    cfg = MaxPoolConfig(h, w, kh, kw, c, pe, name=f"rnd{seed}")
    n = int(rng.integers(3, 12))
    density = float(rng.choice([0.05, 0.5, 0.95, rng.random()]))
    x = (rng.random((n, h, w, c)) < density).astype(np.int64)
    bp, gap = [(0.3, 0.3), (0.0, 0.0), (0.8, 0.1), (0.1, 0.8), (float(rng.random()), float(rng.random()))][seed % 5]
    return PoolJob(cfg, x, backpressure=bp, gaps=gap, seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("batch", range(2))
def test_rtl_regression_random_configs(batch):
    """48 random configurations (24 per build) under backpressure and gaps: bit-exact, no lost or extra frame."""
    require_verilator()
    jobs = [_random_job(batch * 24 + i) for i in range(24)]
    _check(jobs, simulate_many(jobs))


@pytest.mark.slow
def test_stitched_pool_node_matches_python_execution(tmp_path):
    """The node through the stitcher and the stitched rtlsim (``sbnn sim``'s path), vs qonnx's execution."""
    require_verilator()
    model = pool_graph(1, 8, 6, 16, 2).transform(InferBinaryMaxPool())
    getCustomOp(model.graph.node[0]).set_nodeattr("PE", 4)
    design = stitch(model, tmp_path / "stitch")
    assert [n.op_type for n in design.nodes] == ["BinaryMaxPool"] and design.in_beats == 8 * 6 * 4
    x = np.random.default_rng(0).integers(0, 2, (6, 8, 6, 16))
    res = simulate_stitched(design, x.reshape(6, -1), backpressure=0.3, gaps=0.3, seed=1,
                            build_dir=tmp_path / "verilator")
    ref = np.stack([execute_onnx(model, {"x": xi[None].astype(np.float32)})["y"][0] for xi in x])
    assert np.array_equal(res.outputs.reshape(ref.shape), ref)
