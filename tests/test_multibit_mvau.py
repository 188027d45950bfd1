"""Integer-input (multi-bit) mode of SparseXnorMVAU, all layers bit-true to each other:

float {alpha, beta} weights -> reference.py (acc = 2**k S + R X) -> op.execute_node
-> generated RTL in Verilator (random backpressure and input gaps, no lost or
duplicated frames) -> cycle model (estimates.py) -> Yosys vs the LUT model.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.hls_csim import HlsCsimError, params_header
from sbnn.hls.sparse_mvau.op import SparseXnorMVAU, input_format, make_sparse_xnor_mvau_node
from sbnn.hls.sparse_mvau.random_nodes import (divisors, random_arith, random_input_format, random_int_inputs,
                                               random_mask)
from sbnn.hls.sparse_mvau.reference import acc_range, input_range, sparse_mvau_reference
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
from sbnn.hls.verilator import find_verilator, verilator_env
from sbnn.hls.yosys import YosysNotFoundError

FORMATS = {"UINT8": (8, False), "INT8": (8, True), "UINT4": (4, False), "INT4": (4, True), "INT2": (2, True)}


def make_cfg(mw, mh, pe, simd, fmt, *, mode="baked", no_act=False, k=1, r=-1, density=0.4, seed=0, **kw):
    """A node with a random mask and thresholds spread over the reachable acc range."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) < density).astype(np.int64)
    bits, signed = FORMATS[fmt]
    r = np.broadcast_to(np.asarray(r, dtype=np.int64), (mh,))
    lo, hi = acc_range(mask, r, k, input_range(bits, signed))
    thr = None if no_act else rng.integers(lo - 2, hi + 3)
    inv = None if no_act else rng.integers(0, 2, mh)
    return SparseMVAUConfig(mw, mh, pe, simd, k, mask, r, thr, inv, weight_mode=mode, no_activation=no_act,
                            in_bits=bits, in_signed=signed, **kw)


def extreme_rows(cfg: SparseMVAUConfig, j: int) -> np.ndarray:
    """Two inputs reaching acc_j's min and max: x_i at a range end by the sign of its coefficient."""
    lo, hi = cfg.in_range
    coef = (cfg.mask[:, j] << cfg.alpha_shift) + cfg.alpha_num[j]
    return np.stack([np.where(coef > 0, lo, hi), np.where(coef > 0, hi, lo)])


def stimulus(cfg: SparseMVAUConfig, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = random_int_inputs(rng, n, cfg.MW, cfg.in_bits, cfg.in_signed)
    return np.concatenate([x, extreme_rows(cfg, int(rng.integers(cfg.MH)))])


# ---- reference vs float arithmetic ------------------------------------------------
@pytest.mark.parametrize("fmt", ["UINT8", "INT8", "INT4", "UINT4"])
@pytest.mark.parametrize("k,r", [(1, -1), (0, 0), (2, -7), (3, 5), (1, -3)])
def test_reference_is_the_float_layer(fmt, k, r):
    """acc * d/2**k equals y = sum w x with w in {alpha, beta}; thresholds and inversions match y >= tau."""
    rng = np.random.default_rng(abs(r) * 10 + k)
    mw, mh = 37, 11
    bits, signed = FORMATS[fmt]
    mask = (rng.random((mw, mh)) < 0.35).astype(np.int64)
    rr = np.full(mh, r) + (rng.integers(-2, 3, mh) if r else 0)   # per-neuron R, some negative
    d = rng.uniform(0.1, 2.0, mh)                                  # beta - alpha > 0
    alpha = d * rr / 2.0**k
    w = alpha + d * mask                                           # {alpha, beta} per neuron
    lo, hi = input_range(bits, signed)
    x = np.concatenate([rng.integers(lo, hi + 1, (200, mw)), np.full((1, mw), lo), np.full((1, mw), hi)])
    y = x @ w
    acc = sparse_mvau_reference(x, mask, rr, k, integer_input=True)
    assert np.allclose(acc * d / 2.0**k, y, rtol=0, atol=1e-9 * np.abs(y).max())
    t = rng.integers(acc.min(), acc.max() + 1, mh)
    tau = (t - 0.5) * d / 2.0**k                                   # between integers: no float ties
    inv = rng.integers(0, 2, mh)
    out = sparse_mvau_reference(x, mask, rr, k, t, inv, integer_input=True)
    assert np.array_equal(out, (y >= tau).astype(np.int64) ^ inv)
    a_lo, a_hi = acc_range(mask, rr, k, (lo, hi))
    assert (acc >= a_lo).all() and (acc <= a_hi).all()


def test_acc_range_is_exact_and_matches_bits():
    rng = np.random.default_rng(1)
    for trial in range(40):
        mw, mh = int(rng.integers(1, 20)), int(rng.integers(1, 8))
        mask = (rng.random((mw, mh)) < rng.random()).astype(np.int64)
        k = int(rng.integers(0, 4))
        r = rng.integers(-(3 << k), (3 << k) + 1, mh)              # includes |R| > 2**k and R < 0
        assert all(np.array_equal(a, b) for a, b in zip(acc_range(mask, r, k), acc_range(mask, r, k, (0, 1))))
        bits, signed = FORMATS[["UINT8", "INT8", "INT4", "INT2"][trial % 4]]
        cfg = SparseMVAUConfig(mw, mh, 1, 1, k, mask, r, no_activation=True, in_bits=bits, in_signed=signed)
        lo, hi = acc_range(mask, r, k, cfg.in_range)
        for j in range(mh):                                       # both ends are reached
            acc = cfg.reference(extreme_rows(cfg, j))[:, j]
            assert (acc[0], acc[1]) == (lo[j], hi[j])
        assert cfg.out_width >= 1 and cfg.acc_width >= cfg.out_width


def test_config_widths_and_validation():
    cfg = make_cfg(27, 16, 4, 9, "UINT8")
    assert (cfg.in_stream_width, cfg.in_tdata_width) == (72, 72)
    assert make_cfg(12, 4, 1, 3, "INT4").in_tdata_width == 16          # 12 bits padded to 16
    na = make_cfg(12, 4, 1, 3, "INT4", no_act=True, k=2, r=-7)
    lo, hi = na.out_range                                               # noActivation outputs acc itself
    assert -(1 << (na.out_width - 1)) <= lo < -(1 << (na.out_width - 2)) or hi >= 1 << (na.out_width - 2)
    assert hi < 1 << (na.out_width - 1) and na.out_width <= na.acc_width
    assert SparseMVAUConfig(8, 2, 1, 1, 1, np.ones((8, 2)), -1, [0, 0]).in_stream_width == 1   # bits unchanged
    for bits, signed in ((17, False), (1, True), (0, False)):
        with pytest.raises(ValueError, match="in_bits"):
            SparseMVAUConfig(8, 2, 1, 1, 1, np.ones((8, 2)), -1, [0, 0], in_bits=bits, in_signed=signed)
    with pytest.raises(ValueError, match=r"integers in \[0, 255\]"):
        cfg.check_inputs(np.full((1, 27), 256))


def test_hls_twin_refuses_integer_inputs():
    with pytest.raises(HlsCsimError, match="bit inputs only"):
        params_header(make_cfg(8, 4, 1, 1, "UINT8"))


# ---- the op ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,no_act", [("UINT8", False), ("INT8", True), ("INT4", False)])
def test_op_execute_node(fmt, no_act):
    cfg = make_cfg(27, 8, 2, 9, fmt, no_act=no_act, k=2, r=[-3, 1, 0, -9, 5, -1, 2, -4], seed=3)
    out_dt = f"INT{cfg.out_width}" if no_act else "BINARY"
    node = make_sparse_xnor_mvau_node("mb", "x", "y", cfg.mask, cfg.alpha_num, cfg.alpha_shift, cfg.thresholds,
                                      cfg.invert, out_dt, [2, 5], pe=2, simd=9, input_dtype=fmt)
    inst = SparseXnorMVAU(node)
    assert inst.get_input_datatype().name == fmt and inst.get_instream_width() == 9 * FORMATS[fmt][0]
    got = inst.get_config()
    assert (got.in_bits, got.in_signed, got.acc_width, got.out_width) == (cfg.in_bits, cfg.in_signed,
                                                                           cfg.acc_width, cfg.out_width)
    assert "op_mac_%s_sparse" % fmt in inst.get_op_and_param_counts()
    x = random_int_inputs(np.random.default_rng(0), 10, 27, cfg.in_bits, cfg.in_signed).reshape(2, 5, 27)
    ctx = {"x": x.astype(np.float32)}
    inst.execute_node(ctx, None)
    assert ctx["y"].shape == (2, 5, 8) and np.array_equal(ctx["y"], cfg.reference(x).astype(np.float32))
    lo, hi = cfg.in_range
    for bad in (hi + 1, lo - 1, 0.5):
        with pytest.raises(ValueError, match=f"{fmt} integers"):
            inst.execute_node({"x": np.full((2, 5, 27), bad, np.float32)}, None)


@pytest.mark.parametrize("tensor_dt,ok", [("UINT8", True), ("UINT4", True), ("INT8", False), ("BINARY", True),
                                          ("FLOAT32", False)])
def test_op_infer_node_datatype(tensor_dt, ok):
    """An integer-input node accepts integer tensors within its input range and sets its output datatype."""
    cfg = make_cfg(9, 4, 1, 1, "UINT8", no_act=True)
    node = make_sparse_xnor_mvau_node("mb", "x", "y", cfg.mask, cfg.alpha_num, cfg.alpha_shift,
                                      out_dtype=f"INT{cfg.out_width}", input_dtype="UINT8")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_tensor_datatype("x", DataType[tensor_dt])
    if not ok:
        with pytest.raises(ValueError, match="expects UINT8"):
            SparseXnorMVAU(node).infer_node_datatype(model)
        return
    SparseXnorMVAU(node).infer_node_datatype(model)
    assert model.get_tensor_datatype("y") == DataType[f"INT{cfg.out_width}"]


def test_op_rejects_unsupported_input_types():
    for name in ("BIPOLAR", "FLOAT32", "INT17"):
        with pytest.raises(ValueError, match="inputDataType"):
            input_format(name)
    assert input_format("BINARY") == (1, False) and input_format("INT8") == (8, True)
    node = helper.make_node("SparseXnorMVAU", ["x"], ["y"], inputDataType="BIPOLAR")
    with pytest.raises(ValueError, match="BIPOLAR"):
        SparseXnorMVAU(node).get_input_datatype()


# ---- RTL ---------------------------------------------------------------------------
LINT_CASES = [  # mw, mh, pe, simd, fmt, mode, no_act, k, r, density
    (27, 8, 8, 27, "UINT8", "baked", False, 1, -1, 0.4), (27, 8, 2, 9, "INT8", "memory", True, 2, 3, 0.4),
    (16, 4, 1, 1, "INT4", "baked", True, 0, 0, 0.4), (16, 4, 4, 2, "UINT4", "memory", False, 1, -5, 0.4),
    (12, 6, 3, 12, "INT2", "baked", False, 3, 9, 0.4),
    (16, 4, 2, 8, "UINT8", "memory", True, 1, -1, 0.0), (16, 4, 4, 16, "INT8", "baked", False, 0, 2, 0.0)]


@pytest.mark.parametrize("case", LINT_CASES)
def test_rtl_lint_clean_and_verilog_2001(tmp_path, case):
    mw, mh, pe, simd, fmt, mode, no_act, k, r, density = case
    v = tmp_path / "sparse_mvau.v"
    v.write_text(generate_verilog(make_cfg(mw, mh, pe, simd, fmt, mode=mode, no_act=no_act, k=k, r=r,
                                           density=density)))
    root = find_verilator()
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(v)], env=verilator_env(root),
                         capture_output=True, text=True)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
    if shutil.which("iverilog"):
        res = subprocess.run(["iverilog", "-g2001", "-o", str(tmp_path / "a.out"), str(v)], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr


SIM_CASES = [  # one shared Verilator build: mw, mh, pe, simd, fmt, kw
    (27, 8, 4, 9, "UINT8", dict(mode="baked", k=1, r=-1)),                         # CNV conv1-like
    (27, 8, 8, 27, "INT8", dict(mode="memory", no_act=True, k=2, r=[-9, 3, 0, 5] * 2)),
    (24, 8, 2, 4, "UINT8", dict(mode="memory", k=0, r=3, density=0.15)),          # zero blocks skipped
    (16, 6, 3, 16, "INT8", dict(mode="baked", no_act=True, r=0)),                 # no shared X
    (12, 4, 1, 2, "INT4", dict(mode="baked", k=1, r=-5)),                         # |R| > 2**k
    (32, 8, 8, 1, "UINT4", dict(mode="memory", k=1, r=-1)),                       # input-bound: SF > NS
]


def sim_cfgs() -> list[SparseMVAUConfig]:
    return [make_cfg(mw, mh, pe, simd, fmt, seed=i, name=f"c{i}", **kw)
            for i, (mw, mh, pe, simd, fmt, kw) in enumerate(SIM_CASES)]


def test_rtl_matches_reference_under_backpressure():
    jobs = [StreamJob(c, stimulus(c, 40, i), backpressure=0.3, gaps=0.3, seed=i) for i, c in enumerate(sim_cfgs())]
    for job, res in zip(jobs, simulate_many(jobs)):     # lost or extra beats raise RtlsimError
        ref = job.cfg.reference(job.inputs)
        assert res.outputs.shape == ref.shape == (len(job.inputs), job.cfg.MH)
        assert int((res.outputs != ref).sum()) == 0, job.cfg.name


def test_measured_cycles_match_model():
    jobs = [StreamJob(c, stimulus(c, 64, i)) for i, c in enumerate(sim_cfgs())]   # same build, no stalls
    for job, res in zip(jobs, simulate_many(jobs)):
        est = estimates.cycles_per_frame(job.cfg)
        assert abs(res.cycles_per_frame - est) <= 0.05 * est, (job.cfg.name, res.cycles_per_frame, est)
        assert res.latency == estimates.latency(job.cfg)
        assert np.array_equal(res.outputs, job.cfg.reference(job.inputs))
    pruned = sim_cfgs()[2]
    assert estimates.cycles_per_frame(pruned) < pruned.NF * pruned.SF


@pytest.mark.slow
def test_lut_model_vs_yosys(tmp_path):
    cfg = make_cfg(27, 32, 32, 27, "UINT8", k=1, r=-1, density=0.35, seed=11, name="mb_yosys")
    try:
        st = node_stats(cfg, cache_dir=tmp_path)
    except YosysNotFoundError as e:
        pytest.skip(str(e))
    ratio = estimates.lut_estimate(cfg) / st["LUT"]
    assert 0.75 <= ratio <= 1.33, (estimates.lut_estimate(cfg), st)
    assert st["DSP"] == 0                                 # R*X is shift-add


# ---- slow regression: random integer-input nodes, several per build -------------------
N_SLOW, BATCH = 48, 16


def random_multibit_job(seed: int) -> StreamJob:
    rng = np.random.default_rng(5000 + seed)
    mw = int(rng.choice([3, 9, 12, 16, 27, 32, 48, 75]))
    mh = int(rng.choice([1, 2, 4, 6, 8, 16, 32]))
    pe, simd = int(rng.choice(divisors(mh))), int(rng.choice(divisors(mw)))
    sparsity = float(rng.choice([0.0, 0.5, 0.8, 0.95, rng.random()]))
    mask = random_mask(rng, mw, mh, pe, simd, sparsity, zero_neuron=rng.random() < 0.3, blocks=rng.random() < 0.3)
    k, r = random_arith(rng, mh, seed % 4)
    bits, signed = random_input_format(rng)
    no_act = bool(rng.random() < 0.35)
    lo, hi = acc_range(mask, r, k, input_range(bits, signed))
    thr = None if no_act else rng.integers(lo - 2, hi + 3)
    inv = None if no_act else rng.integers(0, 2, mh)
    cfg = SparseMVAUConfig(mw, mh, pe, simd, k, mask, r, thr, inv, weight_mode=["baked", "memory"][seed % 2],
                           no_activation=no_act, in_bits=bits, in_signed=signed)
    bp, gap = float(rng.choice([0, 0.3, 0.6])), float(rng.choice([0, 0.3, 0.6]))
    return StreamJob(cfg, stimulus(cfg, int(rng.integers(8, 30)), seed), backpressure=bp, gaps=gap, seed=seed)


def test_random_multibit_configs_cover_corners():
    jobs = [random_multibit_job(s) for s in range(N_SLOW)]
    cfgs = [j.cfg for j in jobs]
    assert {(8, False), (8, True)} <= {(c.in_bits, c.in_signed) for c in cfgs} and min(c.in_bits for c in cfgs) <= 3
    assert {c.weight_mode for c in cfgs} == {"baked", "memory"} and len({c.no_activation for c in cfgs}) == 2
    assert any((c.alpha_num < 0).any() for c in cfgs) and any((c.alpha_num == 0).all() for c in cfgs)
    assert any((c.mask.sum(axis=0) == 0).any() for c in cfgs)
    assert any(j.backpressure > 0 and j.gaps > 0 for j in jobs)
    assert any(c.PE < c.MH and c.SIMD < c.MW for c in cfgs) and any(c.PE == c.MH and c.SIMD == c.MW for c in cfgs)


@pytest.mark.slow
@pytest.mark.parametrize("batch", range(N_SLOW // BATCH))
def test_rtl_regression_random_multibit(batch):
    jobs = [random_multibit_job(s) for s in range(batch * BATCH, (batch + 1) * BATCH)]
    bad = []
    for j, res in zip(jobs, simulate_many(jobs)):
        mism = int((res.outputs != j.cfg.reference(j.inputs)).sum())
        if mism or res.outputs.shape[0] != len(j.inputs):
            c = j.cfg
            bad.append(f"seed={j.seed} MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} {c.weight_mode} "
                       f"in={c.in_bits}{'s' if c.in_signed else 'u'} k={c.alpha_shift} noact={c.no_activation}: "
                       f"{mism} mismatches")
    assert not bad, "\n".join(bad)
