"""Export (QONNX) and compile (FINN dataflow graph of SparseXnorMVAU) end to end, on small trained MLPs.

Bit-exactness chain on the first N_IMAGES Fashion-MNIST test images (the full
10,000 run is bench/bitexact_chain.py and the slow test below): PyTorch eval of
the frozen model, qonnx execution of the QONNX model and FINN Python execution
of the compiled HW graph agree on every prediction, and every SparseXnorMVAU
output equals the streamlined float graph's layer output.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

pytest.importorskip("finn")

N_IMAGES = 300


def test_qonnx_passes_checker_and_reproduces_torch_exactly(compiled):
    from sbnn.export.qonnx_export import load_frozen
    from sbnn.export.verify import qonnx_logits, torch_logits
    from sbnn.training.datasets import load_dataset

    _, test_set, _ = load_dataset("fashion-mnist")
    x = test_set.tensors[0].numpy()[:N_IMAGES]
    for name, c in compiled.items():
        m = onnx.load(str(c["onnx"]))
        onnx.checker.check_model(m)
        quant = [n for n in m.graph.node if n.op_type == "Quant"]
        assert quant, name
        model, *_ = load_frozen(c["ckpt"])
        # exact float equality of the logits, not just of the predictions
        assert np.array_equal(torch_logits(model, x), qonnx_logits(c["onnx"], x)), name


def test_export_fixes_ratio_to_fixed_point(compiled):
    rep = compiled["alpha-beta"]["export"]
    for layer in rep["layers"]:
        assert 0 <= layer["alpha_shift"] <= 8
    assert abs(rep["accuracy_before_freeze"] - rep["accuracy_after_freeze"]) < 0.05
    bip = compiled["bipolar"]["export"]["layers"]
    assert all(la["alpha_num"] == -1 and la["alpha_shift"] == 1 for la in bip)  # +-1 is R/2^k = -1/2


@pytest.mark.parametrize("name", ["bipolar", "zero-beta", "alpha-beta", "alpha-beta-pc"])
def test_bitexact_chain(compiled, name):
    from sbnn.export.verify import bitexact_chain

    c = compiled[name]
    res = bitexact_chain(c["ckpt"], c["onnx"], c["build"], n=N_IMAGES)
    assert res["torch_vs_qonnx_mismatches"] == 0
    assert res["torch_vs_hw_mismatches"] == 0
    assert res["qonnx_vs_hw_mismatches"] == 0
    assert res["torch_qonnx_logits_identical"]
    assert len(res["layers"]) == 3
    for layer in res["layers"]:
        assert layer["mismatching_values"] == 0, layer


def test_hw_graph_structure(compiled):
    from qonnx.core.modelwrapper import ModelWrapper

    import sbnn.hls.ops  # noqa: F401  (registers the hardware ops)

    c = compiled["alpha-beta"]
    hw = ModelWrapper(str(c["build"] / "hw_graph.onnx"))
    ops = [n.op_type for n in hw.graph.node]
    assert ops.count("SparseXnorMVAU") == 3
    assert "Thresholding_rtl" in ops          # first layer's input thresholding stays FINN's
    assert not any(o.startswith("StreamingFIFO") for o in ops)   # an MLP streams evenly: no depth-2 FIFOs
    parent = ModelWrapper(str(c["build"] / "parent.onnx"))
    assert [n.op_type for n in parent.graph.node].count("StreamingDataflowPartition") == 1
    steps = sorted(p.name for p in c["build"].glob("step_*.onnx"))
    assert len(steps) >= 10 and steps[0].startswith("step_01_")
    assert (c["build"] / "compile_report.json").is_file()
    # the three cases share one op: dense-ish +-1 (R=-1,k=1), {0,beta} (R=0), {alpha,beta}
    from qonnx.custom_op.registry import getCustomOp
    for case, want in (("bipolar", {-1}), ("zero-beta", None)):
        hw = ModelWrapper(str(compiled[case]["build"] / "hw_graph.onnx"))
        first = getCustomOp([n for n in hw.graph.node if n.op_type == "SparseXnorMVAU"][0])
        r = set(first.get_nodeattr("alpha_num"))
        if want is not None:
            assert r == want and first.get_nodeattr("alpha_shift") == 1
        else:
            assert r <= {0, -1} and first.get_nodeattr("alpha_shift") == 0


def test_custom_op_contract(compiled):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import sbnn.hls.ops  # noqa: F401  (registers the hardware ops)

    hw = ModelWrapper(str(compiled["alpha-beta"]["build"] / "hw_graph.onnx"))
    node = [n for n in hw.graph.node if n.op_type == "SparseXnorMVAU"][0]
    inst = getCustomOp(node)
    assert inst.verify_node() == []
    mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
    inst.set_nodeattr("PE", 4)
    inst.set_nodeattr("SIMD", 16)
    assert inst.get_folded_input_shape() == (1, mw // 16, 16)
    assert inst.get_folded_output_shape() == (1, mh // 4, 4)
    assert inst.get_instream_width() == 16 and inst.get_outstream_width() == 4
    assert inst.get_number_output_values() == mh // 4
    # cycles follow the non-zero PE x SIMD blocks of the mask, never more than the dense count
    from sbnn.hls.sparse_mvau.estimates import cycles_per_frame_of

    assert inst.get_exp_cycles() == cycles_per_frame_of(inst.get_mask(), 4, 16)
    assert inst.get_exp_cycles() <= (mw // 16) * (mh // 4)
    assert inst.lut_estimation() > 0


def test_folding_json_and_finn_passes(compiled, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from sbnn.export.compile import compile_model

    c = compiled["alpha-beta"]
    fold = tmp_path / "folding.json"
    fold.write_text(json.dumps({"SparseXnorMVAU_0": {"PE": 8, "SIMD": 49, "weight_mode": "memory"},
                                "SparseXnorMVAU_1": {"PE": 2, "SIMD": 4},
                                "Thresholding_rtl_0": {"PE": 49}}))
    rep = compile_model(c["onnx"], tmp_path / "b", folding=fold)
    hw = ModelWrapper(str(tmp_path / "b" / "hw_graph.onnx"))
    nodes = {n.name: n for n in hw.graph.node}
    s0 = getCustomOp(nodes["SparseXnorMVAU_0"])
    assert (s0.get_nodeattr("PE"), s0.get_nodeattr("SIMD"), s0.get_nodeattr("weight_mode")) == (8, 49, "memory")
    ops = [n.op_type for n in hw.graph.node]
    assert any(o.startswith("StreamingDataWidthConverter") for o in ops)  # 8-bit out -> 4-bit in needs a DWC
    rows = {r["name"]: r for r in rep["layers"]}
    assert rows["SparseXnorMVAU_0"]["PE"] == 8 and rows["SparseXnorMVAU_0"]["cycles"] == s0.get_exp_cycles()
    for col in ("MW", "MH", "PE", "SIMD", "sparsity", "est. cycles", "est. LUT"):
        assert col in rep["table"]
    # the folded graph computes the same thing
    from sbnn.export.verify import bitexact_chain
    res = bitexact_chain(c["ckpt"], c["onnx"], tmp_path / "b", n=100, layers=False)
    assert res["torch_vs_hw_mismatches"] == 0


def test_target_fps_set_folding(compiled, tmp_path):
    from sbnn.export.compile import compile_model
    from sbnn.export.folding import fps_to_cycles

    c = compiled["zero-beta"]
    rep = compile_model(c["onnx"], tmp_path / "b", target_fps=1e6, fclk_mhz=100)
    target = fps_to_cycles(1e6, 100)
    assert rep["target_cycles_per_frame"] == target == 100
    for r in rep["layers"]:
        assert r["cycles"] <= target, r          # 100 cycles per frame is reachable for every layer here
    sparse = [r for r in rep["layers"] if r["op"] == "SparseXnorMVAU"]
    assert any(r["PE"] * r["SIMD"] > 1 for r in sparse)


def test_cli_export_and_compile(trained, tmp_path, capsys):
    from sbnn.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", str(trained["zero-beta"]), "--out", str(out), "--no-eval", "--frac-bits", "6"]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert main(["compile", str(out), "--build-dir", str(tmp_path / "b"), "--target-fps", "200000"]) == 0
    text = capsys.readouterr().out
    assert "SparseXnorMVAU_0" in text and "est. LUT" in text and "compiled in" in text


def test_interrupted_export_leaves_neither_model_nor_temporary_file(trained, tmp_path, monkeypatch):
    """Ctrl-C during the final check of an export: no .onnx that looks finished and no *.tmp.onnx left."""
    from sbnn.export import qonnx_export

    def interrupted(_model):
        raise KeyboardInterrupt

    monkeypatch.setattr(qonnx_export.onnx.checker, "check_model", interrupted)
    out = tmp_path / "m.onnx"
    with pytest.raises(KeyboardInterrupt):
        qonnx_export.export_checkpoint(trained["zero-beta"], out, evaluate=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "an interrupted export left files behind"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bipolar", "zero-beta", "alpha-beta", "alpha-beta-pc"])
def test_bitexact_chain_full_test_set(compiled, name):
    """All 10,000 Fashion-MNIST test images (bench/bitexact_chain.py does the same for SFC models)."""
    from sbnn.export.verify import bitexact_chain

    c = compiled[name]
    res = bitexact_chain(c["ckpt"], c["onnx"], c["build"], n=None, batch=1000)
    assert res["images"] == 10000
    assert res["torch_vs_qonnx_mismatches"] == res["torch_vs_hw_mismatches"] == res["qonnx_vs_hw_mismatches"] == 0
    assert all(la["mismatching_values"] == 0 for la in res["layers"])
