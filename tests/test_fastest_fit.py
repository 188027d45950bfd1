"""Throughput-first folding (export/fastest_fit.py): the fastest design that fits, and what bounds it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.bitstreams.boards import get_board
from sbnn.export.compile import compile_model
from sbnn.export.fastest_fit import (BRAM_SHARE, LUT_SHARE, UNBOUNDED, FoldFastestFitting, design_cost, input_floor,
                                     ladder)
from sbnn.export.folding import SetSparseFolding, max_cycles
from sbnn.hls.kernel import WEIGHT_MODES, FoldingPolicy
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, lut_estimate

PART = "xc7z020clg400-1"
AUTO = FoldingPolicy(modes=WEIGHT_MODES)


def _unfolded(compiled) -> ModelWrapper:
    """The alpha-beta MLP's dataflow graph just before the folding step."""
    build = compiled["alpha-beta"]["build"]
    return ModelWrapper(str(next(build.glob("step_10_*.onnx"))))


@pytest.fixture(scope="module")
def fastest(compiled):
    """(unfolded graph, the fastest design that fits the pynq-z2, its search), shared by the tests below."""
    model = _unfolded(compiled)
    search = FoldFastestFitting(get_board("pynq-z2"), PART, AUTO)
    return model, model.transform(search), search


def test_ladder_spans_floor_to_ceiling_in_quarter_octaves():
    steps = ladder(98, 5000)
    assert steps[0] == 98 and steps[-1] == 5000
    assert all(b > a for a, b in zip(steps, steps[1:]))
    assert all(b / a <= 2 ** 0.25 + 0.02 for a, b in zip(steps[:-1], steps[1:-1]))


def test_input_floor_is_the_dma_port(compiled):
    model = _unfolded(compiled)
    # 784 UINT8 pixels over the pynq-z2's 64-bit HP port; 128 bits on an UltraScale+ board
    assert input_floor(model, get_board("pynq-z2")) == 98
    assert input_floor(model, get_board("zcu104")) == 49


def test_default_compile_is_the_fastest_fitting_design(compiled):
    rep = compiled["alpha-beta"]["compile"]
    assert rep["folding_how"] == "fastest"
    bound = rep["throughput_bound"]
    # a 784-32-32-10 MLP is tiny: the input stream bounds it, at the 98-cycle floor of the 64-bit port
    assert bound["reason"] == "input stream" and rep["max_cycles_per_frame"] == 98
    assert "64-bit DMA port" in bound["why"] and bound["layer"] in {r["name"] for r in rep["layers"]}
    cost = rep["fastest_fit"]["cost"]
    board = get_board("pynq-z2")
    assert cost["LUT"] <= LUT_SHARE * board.lut and cost["BRAM18"] <= BRAM_SHARE * 2 * board.bram36
    assert all(r["weight_mode"] in WEIGHT_MODES for r in rep["layers"] if r["op"] == "SparseXnorMVAU")


def test_a_small_part_makes_resources_the_bound(fastest):
    model, fast, _ = fastest
    roomy = get_board("pynq-z2")
    need = design_cost(fast, PART).lut
    least = design_cost(model.transform(SetSparseFolding(UNBOUNDED, policy=AUTO)), PART).lut
    assert least < need
    # a part between the cheapest and the fastest design: the search must slow down to fit
    tiny = dataclasses.replace(roomy, lut=int((need + least) / 2 / LUT_SHARE))
    search = FoldFastestFitting(tiny, PART, AUTO)
    slow = model.transform(search)
    d = search.decision
    assert max_cycles(slow) > max_cycles(fast)
    assert design_cost(slow, PART).within(tiny)
    assert d["blocked_cost"] is not None and not d["blocked_cost"].within(tiny)
    assert d["blocked_target"] < d["target_cycles"]


def _fold_of(inst) -> tuple:
    return inst.get_nodeattr("weight_mode"), inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")


def test_a_layer_over_the_depth_budget_is_refolded_at_the_same_throughput(fastest):
    """The timing-driven refold (export/timing_refold.py), with a stand-in for Yosys: the first pick of one
    layer measures over the budget, every other fold within; the search takes another fold for that layer
    and keeps the frame rate."""
    model, first, plain = fastest
    board = get_board("pynq-z2")
    layer = next(n.name for n in first.graph.node if n.op_type == "SparseXnorMVAU")
    deep = _fold_of(getCustomOp(first.get_node_from_name(layer)))
    measured = []

    def depth_of(inst):
        measured.append(inst.onnx_node.name)
        return 10.0 if inst.onnx_node.name == layer and _fold_of(inst) == deep else 5.0

    search = FoldFastestFitting(board, PART, AUTO, depth_of, 9.72)
    second = model.transform(search)
    assert _fold_of(getCustomOp(second.get_node_from_name(layer))) != deep
    assert max_cycles(second) == max_cycles(first)
    assert design_cost(second, PART).within(board)
    assert search.decision["refolded"] == [{"layer": layer, "weight_mode": deep[0], "PE": deep[1], "SIMD": deep[2],
                                            "weighted": 10.0, "budget": 9.72}]
    assert len(measured) == 6, "every sparse MVAU measured once per search: the first and the refolded one"
    assert plain.decision["refolded"] == [], "no depth check without a measure"


def test_auto_weight_mode_takes_the_cheaper_mode_per_layer(compiled):
    model = ModelWrapper(str(compiled["alpha-beta"]["build"] / "hw_graph.onnx"))
    checked = 0
    for node in model.graph.node:
        if node.op_type != "SparseXnorMVAU":
            continue
        cfg = getCustomOp(node).get_config()
        cost = {m: lut_estimate(cfg.refolded(cfg.PE, cfg.SIMD, m)) + AUTO.lut_per_bram18 *
                bram18_estimate(cfg.refolded(cfg.PE, cfg.SIMD, m)) for m in WEIGHT_MODES}
        assert cost[cfg.weight_mode] <= min(cost.values()) + 1e-6
        checked += 1
    assert checked == 3


def test_target_fps_and_folding_file_name_their_bound(compiled, tmp_path):
    onnx = compiled["alpha-beta"]["onnx"]
    rep = compile_model(onnx, tmp_path / "t", target_fps=200_000)
    assert rep["folding_how"] == "target" and rep["throughput_bound"]["reason"] in ("target", "layer")
    assert rep["max_cycles_per_frame"] <= 500
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"Defaults": {"PE": 1, "SIMD": 1}}))
    rep = compile_model(onnx, tmp_path / "f", folding=str(fold), weight_mode="memory")
    assert rep["folding_how"] == "folding file" and rep["throughput_bound"]["reason"] == "folding file"
    assert all(r["weight_mode"] == "memory" for r in rep["layers"] if r["op"] == "SparseXnorMVAU")


@pytest.mark.parametrize("mode", ["baked", "memory"])
def test_an_explicit_weight_mode_is_kept(compiled, tmp_path, mode):
    rep = compile_model(compiled["alpha-beta"]["onnx"], tmp_path / mode, weight_mode=mode)
    assert {r["weight_mode"] for r in rep["layers"] if r["op"] == "SparseXnorMVAU"} == {mode}


def test_thresholds_refold_for_a_whole_width_ratio(compiled):
    """PE 8 into SIMD 49 would need a width converter that ran below full rate (112 instead of 98 cycles/frame
    in rtlsim): the thresholds take PE 49; into SIMD 56 (a whole ratio) PE 8 stays."""
    from sbnn.export.folding import FoldToConsumers

    for simd, expected in ((49, 49), (56, 8), (4, 8)):
        model = SetSparseFolding(98, policy=AUTO).apply(_unfolded(compiled))[0]
        thr = next(n for n in model.graph.node if n.op_type == "Thresholding_rtl")
        mvau = model.find_consumer(thr.output[0])
        getCustomOp(mvau).set_nodeattr("SIMD", simd)
        getCustomOp(thr).set_nodeattr("PE", 8)
        model = model.transform(FoldToConsumers())
        assert getCustomOp(model.get_node_from_name(thr.name)).get_nodeattr("PE") == expected


def test_baked_folds_with_a_deep_step_mux_are_left_to_memory_mode(compiled):
    """Under auto, no baked fold puts a multi-group popcount behind a wide step multiplexer (pipeline.py);
    with --weight-mode baked the user's choice stands and they are offered."""
    from sbnn.hls.sparse_mvau.folding import fold_options
    from sbnn.hls.sparse_mvau.pipeline import baked_step_mux_deep

    mvau = next(n for n in _unfolded(compiled).graph.node if n.op_type == "SparseXnorMVAU")
    cfg = getCustomOp(mvau).get_config()
    deep = [o for o in fold_options(cfg, ("baked",), 190.0) if baked_step_mux_deep(cfg.refolded(o.pe, o.simd, "baked"))]
    assert deep, "the test layer should have deep baked folds"
    auto = fold_options(cfg, WEIGHT_MODES, 190.0)
    assert not [o for o in auto if o.mode == "baked" and baked_step_mux_deep(cfg.refolded(o.pe, o.simd, "baked"))]
