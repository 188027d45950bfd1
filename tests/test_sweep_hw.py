"""`sbnn sweep --hardware`: every point compiled at one fixed folding and costed by the cost model."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from qonnx.custom_op.registry import getCustomOp
from test_ternary import ternary_graph

from sbnn.cli import main
from sbnn.hls.sparse_mvau.estimates import (compute_steps, cycles_per_frame, lut_estimate, memory_bram18,
                                            weight_memory_bits)
from sbnn.hls.sparse_mvau.infer import InferSparseXnorMVAU
from sbnn.training import sweep_hw
from sbnn.training.config import TrainConfig
from sbnn.training.sweep_cost import cost_table, plot_cost
from sbnn.training.sweep_hw import HW_COLUMNS, fixed_folding, hardware_point, hw_figures


def test_fixed_folding_rule():
    """PE, SIMD: the largest divisors of MH, MW up to 16, 32 (SFC: 784 inputs -> SIMD 28)."""
    fold = fixed_folding([[256, 784], [256, 256], [10, 256], [64, 3, 3, 3]])
    assert fold["SparseXnorMVAU_0"] == {"PE": 16, "SIMD": 28}
    assert fold["SparseXnorMVAU_1"] == {"PE": 16, "SIMD": 32}
    assert fold["SparseXnorMVAU_2"] == {"PE": 10, "SIMD": 32}
    assert fold["SparseXnorMVAU_3"] == {"PE": 16, "SIMD": 27}
    assert fold["Defaults"] == {"weight_mode": "baked"}


def _recompute(mask, signs, pe, simd, cfg):
    """The cost model's figures of one layer, from its mask and signs, computed here."""
    return {"lut_baked": lut_estimate(cfg.refolded(pe, simd, "baked")),
            "lut_memory": lut_estimate(cfg.refolded(pe, simd, "memory")),
            "bram18_memory": memory_bram18(cfg.refolded(pe, simd, "memory")),
            "weight_bits_memory": compute_steps(mask, pe, simd) * pe * simd * (1 if signs is None else 2),
            "cycles_per_frame": cycles_per_frame(cfg.refolded(pe, simd))}


def test_hw_figures_are_the_cost_model_of_the_compiled_masks(tmp_path):
    """Totals over the nodes at their folding; a ternary layer's weight bits are its mask's plus as many sign
    bits, and without the signs (the same mask as an {alpha, beta} layer) only the mask's."""
    model, _, _ = ternary_graph(np.random.default_rng(5))
    model = model.transform(InferSparseXnorMVAU())
    for node, (pe, simd) in zip(model.get_nodes_by_op_type("SparseXnorMVAU"), ((4, 8), (5, 4))):
        getCustomOp(node).set_nodeattr("PE", pe)
        getCustomOp(node).set_nodeattr("SIMD", simd)
    model.save(str(tmp_path / "tern.onnx"))
    got = hw_figures(tmp_path / "tern.onnx")
    want = []
    for node in model.get_nodes_by_op_type("SparseXnorMVAU"):
        inst = getCustomOp(node)
        cfg = inst.get_config()
        want.append(_recompute(cfg.mask, cfg.signs, cfg.PE, cfg.SIMD, cfg))
    for k in HW_COLUMNS:
        agg = max if k == "cycles_per_frame" else sum
        assert got[k] == pytest.approx(agg(w[k] for w in want), abs=0.5), k
    for node in model.get_nodes_by_op_type("SparseXnorMVAU"):   # the same masks without signs
        node.attribute.remove(next(a for a in node.attribute if a.name == "signs"))
    model.save(str(tmp_path / "plain.onnx"))
    plain = hw_figures(tmp_path / "plain.onnx")
    sign_bits = sum(weight_memory_bits(getCustomOp(n).get_mask(), la["PE"], la["SIMD"])
                    for la, n in zip(got["layers"], model.get_nodes_by_op_type("SparseXnorMVAU")))
    assert got["weight_bits_memory"] == plain["weight_bits_memory"] + sign_bits
    assert got["lut_baked"] == plain["lut_baked"]   # the inverters fold into the popcount LUTs


def test_hardware_point_is_reused(tmp_path, monkeypatch):
    """hw.json keyed by the checkpoint and folding digests: the same key compiles nothing; a changed checkpoint
    runs the export again."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"weights")
    (run / "metrics.json").write_text(json.dumps({"layers": [{"shape": [8, 16]}]}))
    calls = []
    monkeypatch.setattr(sweep_hw, "export_checkpoint", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(
        RuntimeError("exported")))
    with pytest.raises(RuntimeError, match="exported"):
        hardware_point(run, None)
    fold = json.loads((run / "hw" / "folding.json").read_text())
    assert fold["SparseXnorMVAU_0"] == {"PE": 8, "SIMD": 16}
    key = {"checkpoint": sweep_hw._digest(run / "checkpoint.pt"),
           "folding": sweep_hw._digest(run / "hw" / "folding.json")}
    (run / "hw" / "hw.json").write_text(json.dumps({"key": key, "lut_baked": 1}))
    assert hardware_point(run, None)["lut_baked"] == 1 and len(calls) == 1
    (run / "checkpoint.pt").write_bytes(b"retrained")
    with pytest.raises(RuntimeError, match="exported"):
        hardware_point(run, None)


def test_cost_table_and_plot(tmp_path):
    def row(scheme, ec, acc, lut, bits):
        return {"scheme": scheme, "ec_target": ec, "test_accuracy": acc, "test_accuracy_std": 0.01, "seeds": 2,
                "lut_baked": lut, "lut_memory": lut / 2, "bram18_memory": 3.0, "weight_bits_memory": bits,
                "cycles_per_frame": 64.0}

    rows = [row("bipolar-dense", None, 0.83, 9000, 4096), row("alpha-beta", 0.1, 0.82, 2000, 4096),
            row("bipolar-pruned", 0.1, 0.83, 1900, 8192)]
    base = TrainConfig(dataset="fashion-mnist", model="sfc")
    table = cost_table(rows, base, [0.1])
    assert "| ±1 pruned (ternary: mask + sign) | 0.1 | 83.00 ± 1.00 % | 1900 | 950 | 3 | 8192 | 64 |" in table
    plot_cost(rows, tmp_path / "cost.png", base)
    assert (tmp_path / "cost.png").stat().st_size > 10_000


def test_hw_folding_needs_hardware(tmp_path, capsys):
    rc = main(["sweep", "--dataset", "digits", "--hw-folding", str(tmp_path / "f.json"), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "--hw-folding needs --hardware" in err and err.count("\n") == 1
    rc = main(["sweep", "--dataset", "digits", "--hardware", "--hw-folding", str(tmp_path / "f.json"),
               "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "no such file" in err and err.count("\n") == 1


def test_hardware_sweep_into_the_source_tree_is_refused_before_training(capsys):
    """`sbnn compile` does not build inside the source tree (outside build/, runs/): refused before any point
    trains, with where to sweep instead."""
    out = Path(__file__).resolve().parents[1] / "bench" / "results" / "sweep_hw_refused"
    rc = main(["sweep", "--dataset", "digits", "--hardware", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "sweep into runs/ or build/" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow
def test_sweep_hardware_tiny(tmp_path, capsys):
    """A tiny sweep with --hardware: the columns are the cost model's figures of the compiled masks, the
    ternary point's weight bits are its masks' plus the sign bits of its pruned layers, the ternary hardware
    graph computes what the exported model computes, and a rerun recompiles nothing."""
    from qonnx.core.modelwrapper import ModelWrapper

    from sbnn.export.verify import bitexact_chain

    out = tmp_path / "sweep"
    args = ["sweep", "--dataset", "digits", "--model", "tfc", "--epochs", "1", "--ecs", "0.1", "--out", str(out),
            "--quiet", "--hardware"]
    assert main(args) == 0
    assert "| ±1 pruned (ternary: mask + sign) | 0.1 |" in capsys.readouterr().out
    rows = {r["run"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert len(rows) == 5 and (out / "sweep_cost.png").stat().st_size > 10_000 and (out / "sweep_hw.md").exists()
    for run, r in rows.items():
        model = ModelWrapper(str(out / run / "hw" / "build" / "hw_graph.onnx"))
        want = {k: [] for k in HW_COLUMNS}
        sign_bits = mask_bits = 0
        for node in model.get_nodes_by_op_type("SparseXnorMVAU"):
            cfg = getCustomOp(node).get_config()
            assert (cfg.PE, cfg.SIMD) == (16 if cfg.MH == 64 else 10, 32)   # the fixed folding, every point
            for k, v in _recompute(cfg.mask, cfg.signs, cfg.PE, cfg.SIMD, cfg).items():
                want[k].append(v)
            mask_bits += compute_steps(cfg.mask, cfg.PE, cfg.SIMD) * cfg.PE * cfg.SIMD
            if cfg.signs is not None:   # a sign word beside every stored mask word
                sign_bits += compute_steps(cfg.mask, cfg.PE, cfg.SIMD) * cfg.PE * cfg.SIMD
        assert (sign_bits > 0) == run.startswith("bipolar-pruned"), run
        for k in HW_COLUMNS:
            agg = max if k == "cycles_per_frame" else sum
            assert float(r[k]) == pytest.approx(agg(want[k]), abs=0.5), (run, k)
        assert float(r["weight_bits_memory"]) == mask_bits + sign_bits
        if sign_bits:
            chain = bitexact_chain(out / run / "checkpoint.pt", out / run / "hw" / "model.qonnx.onnx",
                                   out / run / "hw" / "build", n=200, layers=False)
            assert chain["qonnx_vs_hw_mismatches"] == 0 and chain["torch_vs_hw_mismatches"] == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/hw/*.json")} | {
        p: p.stat().st_mtime_ns for p in out.glob("*/hw/build/hw_graph.onnx")}
    assert len(stamps) == 20   # hw.json, folding.json, model.qonnx.json and hw_graph.onnx of 5 points
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
