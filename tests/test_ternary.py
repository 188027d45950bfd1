"""Ternary (pruned +-1) layers in the sparse MVAU: a sign per kept weight on the {0, beta} datapath.

The reference against the ternary sum itself, the RTL (baked: inverted input bits; memory: a sign ROM)
against the reference bit for bit in Verilator, and the cost model: baked LUTs as the same mask's, memory
mode's weight bits doubled by the signs.
"""

import numpy as np
import pytest
from support_rtl import require_verilator

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.estimates import (lut_estimate, memory_bram18, sign_active_bits, weight_memory_bits)
from sbnn.hls.sparse_mvau.infer import ternary_levels
from sbnn.hls.sparse_mvau.reference import sparse_mvau_reference
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many


def random_ternary(rng, mw: int, mh: int, keep: float = 0.3) -> np.ndarray:
    """(MW, MH) codes in {-1, 0, +1}; one all-zero column and one single-sign column for the edge cases."""
    t = rng.choice([-1, 1], size=(mw, mh)) * (rng.random((mw, mh)) < keep)
    t[:, 0] = 0
    t[:, 1] = np.abs(t[:, 1])
    return t


def ternary_config(rng, mw, mh, pe, simd, mode, no_activation, name) -> SparseMVAUConfig:
    t = random_ternary(rng, mw, mh)
    mask, signs, _ = ternary_levels(t.astype(float) * 0.25, name)
    kw = {} if no_activation else {"thresholds": rng.integers(-1, mask.sum(axis=0) + 2),
                                   "invert": rng.integers(0, 2, mh)}
    return SparseMVAUConfig(MW=mw, MH=mh, PE=pe, SIMD=simd, alpha_shift=0, mask=mask, alpha_num=np.zeros(mh),
                            weight_mode=mode, no_activation=no_activation, name=name, signs=signs, **kw)


def test_reference_is_the_ternary_sum():
    """noActivation output 2 S - c = sum_kept t_i x_i with x = 2a - 1: the {0, beta} formula, S redefined."""
    rng = np.random.default_rng(1)
    t = random_ternary(rng, 40, 7)
    mask, signs, c = ternary_levels(t * 0.5, "n")
    assert c[0] == 1.0 and np.all(c[1:] == 0.5) and np.array_equal(mask, t != 0) and np.array_equal(signs, t > 0)
    a = rng.integers(0, 2, (50, 40))
    out = sparse_mvau_reference(a, mask, np.zeros(7, dtype=np.int64), 0, signs=signs)
    assert np.array_equal(out, (2 * a - 1) @ t)
    # without signs the same mask is the {0, beta} layer: every kept weight +1
    assert np.array_equal(sparse_mvau_reference(a, mask, np.zeros(7, dtype=np.int64), 0), (2 * a - 1) @ np.abs(t))


def test_ternary_levels_refuse_other_magnitudes():
    from sbnn.errors import UserError

    w = np.array([[0.5, 0.0], [-0.5, 1.0], [0.0, -0.25]])
    with pytest.raises(UserError, match="column 1 holds weights of 2 magnitudes"):
        ternary_levels(w, "n")


def test_signs_need_r_zero_and_bit_inputs():
    mask = np.ones((8, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="R = 0"):
        SparseMVAUConfig(8, 2, 1, 1, 0, mask, np.array([1, 0]), no_activation=True, signs=mask)
    with pytest.raises(ValueError, match="bit inputs"):
        SparseMVAUConfig(8, 2, 1, 1, 0, mask, np.zeros(2), no_activation=True, signs=mask, in_bits=8)


@pytest.mark.slow
def test_ternary_rtl_matches_reference():
    """Baked and memory mode, thresholded and noActivation, folded and not: Verilator vs reference, all in
    one shared build. (The default tier simulates random ternary nodes in test_rtl_node_regression.py's
    shared build, which saves a Verilator build.)"""
    require_verilator()
    rng = np.random.default_rng(7)
    cases = [(32, 8, 2, 8, "baked", True), (32, 8, 8, 32, "baked", False), (48, 6, 3, 4, "baked", False),
             (32, 8, 2, 8, "memory", True), (48, 6, 3, 4, "memory", False), (24, 4, 4, 24, "memory", True)]
    jobs = []
    for i, (mw, mh, pe, simd, mode, no_act) in enumerate(cases):
        cfg = ternary_config(rng, mw, mh, pe, simd, mode, no_act, f"tern{i}")
        jobs.append(StreamJob(cfg, rng.integers(0, 2, (20, mw)), 0.0, 0.0, i))
    for job, res in zip(jobs, simulate_many(jobs)):
        assert np.array_equal(res.outputs, job.cfg.reference(job.inputs)), job.cfg.name


def test_cost_model_with_signs():
    """Baked: the inverters fold into the popcount LUTs, so a ternary layer costs what its mask costs.
    Memory: a sign word beside every stored mask word (weight bits x2) and a sign ROM in BRAM."""
    rng = np.random.default_rng(3)
    t = random_ternary(rng, 512, 64, keep=0.2)
    mask, signs, _ = ternary_levels(t.astype(float), "n")
    common = dict(MW=512, MH=64, PE=4, SIMD=16, alpha_shift=0, mask=mask, alpha_num=np.zeros(64), no_activation=True)
    for mode in ("baked", "memory"):
        tern = SparseMVAUConfig(weight_mode=mode, signs=signs, **common)
        plain = SparseMVAUConfig(weight_mode=mode, **common)
        assert lut_estimate(tern) == pytest.approx(lut_estimate(plain))
    bits = weight_memory_bits(mask, 4, 16)
    assert weight_memory_bits(mask, 4, 16, signs) == 2 * bits
    ns = len(SparseMVAUConfig(weight_mode="memory", **common).schedule())
    assert bits == ns * 4 * 16
    tern = SparseMVAUConfig(weight_mode="memory", signs=signs, **common)
    plain = SparseMVAUConfig(weight_mode="memory", **common)
    assert sign_active_bits(tern) > 0 and memory_bram18(tern) > memory_bram18(plain)
    # a dense +-1 layer stores every weight bit
    assert weight_memory_bits(np.ones((512, 64)), 4, 16) == 512 * 64


def ternary_graph(rng, mw: int = 24, mid: int = 8, out: int = 5, c1: float = 0.5, c2: float = 0.25):
    """x -> sign -> MatMul (ternary) -> sign -> MatMul (ternary, besides {-c, 0, +c} columns one of zeros,
    one {0, +c}, one {-c, 0} and one dense {-c, +c}) -> y, as FINN's streamlining leaves a pruned +-1 MLP."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    w1 = random_ternary(rng, mw, mid) * c1
    w2 = random_ternary(rng, mid, out) * c2
    w2[:, 2] = -np.abs(w2[:, 2])
    w2[:, 3] = rng.choice([-c2, c2], size=mid)
    w2[:3, 4] = [-c2, 0.0, c2]
    mt = dict(domain="qonnx.custom_op.general", out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    nodes = [helper.make_node("MultiThreshold", ["x", "t0"], ["a0"], name="mt0", **mt),
             helper.make_node("MatMul", ["a0", "w1"], ["h"], name="mm1"),
             helper.make_node("MultiThreshold", ["h", "t1"], ["a1"], name="mt1", **mt),
             helper.make_node("MatMul", ["a1", "w2"], ["y"], name="mm2")]
    graph = helper.make_graph(nodes, "tern", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("t0", np.zeros((mw, 1), dtype=np.float32))
    # thresholds between reachable values of sum t x (integers times c1, of the column's parity)
    model.set_initializer("t1", (rng.integers(-3, 4, (mid, 1)) * c1 + c1 / 2).astype(np.float32))
    model.set_initializer("w1", w1.astype(np.float32))
    model.set_initializer("w2", w2.astype(np.float32))
    for t in ("a0", "a1"):
        model.set_tensor_datatype(t, DataType["BIPOLAR"])
    from qonnx.transformation.infer_shapes import InferShapes
    return model.transform(InferShapes()), w1, w2


def test_infer_lowers_ternary_layers():
    """Both MatMuls become SparseXnorMVAUs with signs (R = 0, k = 0); the graph computes the same y."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    from sbnn.hls.sparse_mvau.infer import InferSparseXnorMVAU

    rng = np.random.default_rng(5)
    model, w1, w2 = ternary_graph(rng)
    xs = rng.normal(size=(30, 1, 24)).astype(np.float32)
    want = [execute_onnx(model, {"x": x})["y"] for x in xs]
    hw = model.transform(InferSparseXnorMVAU())
    nodes = hw.get_nodes_by_op_type("SparseXnorMVAU")
    assert len(nodes) == 2
    for node, w in zip(nodes, (w1, w2)):
        inst = getCustomOp(node)
        assert np.array_equal(inst.get_mask(), w != 0) and np.array_equal(inst.get_signs(), w > 0)
        assert inst.get_nodeattr("alpha_shift") == 0 and not any(inst.get_nodeattr("alpha_num"))
    got = [execute_onnx(hw, {"x": x})["y"] for x in xs]
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_binary_layers_stay_on_the_binary_path():
    """A layer whose columns all have two values ({-c, 0} and {0, +c} included) is no ternary layer."""
    from sbnn.hls.sparse_mvau.infer import is_ternary

    assert not is_ternary(np.array([[0.0, 0.5], [-0.5, 0.0], [-0.5, 0.5]]))
    assert is_ternary(np.array([[0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]))
