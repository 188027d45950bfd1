"""Stitched dataflow partition (FINN Thresholding/FIFO/DWC RTL + our MVAUs + RTL LabelSelect) in Verilator.

Default suite: the small trained MLPs of tests/support_models.py (784-32-32-10),
stitched and simulated on 200 Fashion-MNIST test images against FINN's
HW-graph execution, once with the default compile (baked, PE=SIMD=1) and once
with a folding that makes FINN insert width converters (memory + baked), with
random backpressure and input gaps. Slow: an SFC-style network on 1,000 images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("finn")

N_IMAGES = 200


@pytest.fixture(scope="session")
def folded_build(compiled, tmp_path_factory):
    """The bipolar MLP compiled with a folding that needs DWCs, memory mode on the first layer."""
    from sbnn.export.compile import compile_model

    d = tmp_path_factory.mktemp("folded")
    fold = d / "folding.json"
    fold.write_text(json.dumps({"Thresholding_rtl_0": {"PE": 4},
                                "SparseXnorMVAU_0": {"PE": 8, "SIMD": 16, "weight_mode": "memory"},
                                "SparseXnorMVAU_1": {"PE": 4, "SIMD": 8},
                                "SparseXnorMVAU_2": {"PE": 2, "SIMD": 4}}))
    compile_model(compiled["bipolar"]["onnx"], d / "b", folding=fold, quiet=True)
    return d / "b"


def _check(rep, tol=0.05):
    assert rep["bit_exact"], rep
    assert rep["mismatching_frames"] == 0
    assert abs(rep["cycles_per_frame"] / rep["est_cycles_per_frame"] - 1) <= tol, rep
    assert rep["latency_cycles"] > 0


def test_stitched_default_folding_bitexact(compiled, tmp_path):
    from sbnn.flow.sim import run_sim

    c = compiled["alpha-beta"]
    rep = run_sim(c["build"], N_IMAGES, stitch_dir=tmp_path / "st", out_json=tmp_path / "r.json")
    _check(rep)
    assert rep["data"] == "test" and rep["frames"] == N_IMAGES
    ops = [la["op"] for la in rep["layers"]]
    assert ops.count("SparseXnorMVAU") == 3 and "Thresholding_rtl" in ops
    assert "StreamingFIFO_rtl" not in ops   # an MLP: FINN's default of no depth-2 FIFOs (compile.step_dwc_fifo)
    assert ops[-1] == "LabelSelect_hls"     # argmax in hardware (our RTL LabelSelect)
    assert json.loads((tmp_path / "r.json").read_text())["bit_exact"] is True
    # the stitched folder is self-contained: FINN's sources and threshold files sit next to ours
    names = {p.name for p in (tmp_path / "st" / "rtl").iterdir()}
    assert {"thresholding.sv", "sbnn_dataflow_top.v", "SparseXnorMVAU_0.v"} <= names
    assert any(n.endswith(".dat") for n in names)


def test_stitched_folded_dwc_backpressure_gaps(folded_build, tmp_path):
    from sbnn.flow.sim import run_sim

    rep = run_sim(folded_build, N_IMAGES, stitch_dir=tmp_path / "st", out_json=tmp_path / "r.json")
    _check(rep)
    assert any(la["op"] == "StreamingDataWidthConverter_rtl" for la in rep["layers"])
    stalled = run_sim(folded_build, N_IMAGES, backpressure=0.3, gaps=0.3, seed=7, stitch_dir=tmp_path / "st",
                      out_json=tmp_path / "r2.json")
    assert stalled["bit_exact"] and stalled["build_cached"]
    assert stalled["cycles_per_frame"] >= rep["cycles_per_frame"]


def test_stitched_random_inputs_on_bare_hw_graph(compiled, tmp_path):
    from sbnn.flow.sim import run_sim

    c = compiled["zero-beta"]
    rep = run_sim(c["build"] / "hw_graph.onnx", 64, data="random", seed=3, stitch_dir=tmp_path / "st",
                  out_json=tmp_path / "r.json")
    assert rep["data"] == "random" and rep["bit_exact"]


def test_cli_sim(compiled, tmp_path, capsys):
    from sbnn.cli import main

    c = compiled["alpha-beta"]
    out = tmp_path / "sim.json"
    assert main(["sim", str(c["build"]), "--frames", "40", "--stitch-dir", str(tmp_path / "st"),
                 "--out", str(out), "--backpressure", "0.2", "--gaps", "0.1", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text and "cycles/frame" in text and "M cycles/s" in text
    rep = json.loads(out.read_text())
    assert rep["frames"] == 40 and rep["backpressure"] == 0.2


def test_cli_sim_timeout_reports_cycles(compiled, tmp_path, capsys):
    from sbnn.cli import main

    # 20 frames need at least 20 x (784 input bits / 64-bit port) = 260 cycles at any folding, so 200 must time out.
    c = compiled["alpha-beta"]
    rc = main(["sim", str(c["build"]), "--frames", "20", "--max-cycles", "200", "--stitch-dir", str(tmp_path / "st"),
               "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "timeout" in err and "200 cycles simulated" in err and "--max-cycles" in err


def test_cli_sim_user_errors(tmp_path, capsys, monkeypatch):
    from sbnn.cli import main

    assert main(["sim", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["sim", str(tmp_path), "--frames", "5"]) == 2
    assert "hw_graph.onnx" in capsys.readouterr().err


def test_cli_sim_without_verilator(compiled, tmp_path, capsys, monkeypatch):
    from sbnn.cli import main

    monkeypatch.setenv("SBNN_VERILATOR_ROOT", str(tmp_path / "no_verilator"))
    rc = main(["sim", str(compiled["alpha-beta"]["build"]), "--frames", "4", "--stitch-dir", str(tmp_path / "st"),
               "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "Verilator not found" in err and err.count("\n") == 1


def test_stream_packing_roundtrip():
    from sbnn.hls.streams import pack_stream, unpack_stream

    rng = np.random.default_rng(0)
    for fold, bits, signed in ((1, 8, False), (4, 7, True), (49, 1, False), (3, 13, True)):
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        v = rng.integers(lo, hi, (5, fold * 6))
        width = max(8, (fold * bits + 7) // 8 * 8)
        w = pack_stream(v, fold, bits, width)
        assert w.shape == (5 * 6, (width + 31) // 32)
        assert np.array_equal(unpack_stream(w, fold, bits, signed).reshape(v.shape), v)
    # element 0 at the LSBs (FINN convention)
    assert pack_stream(np.array([[1, 0, 3]]), 3, 2, 8)[0, 0] == 0b110001


@pytest.mark.slow
def test_stitched_sfc_1000_images(tmp_path_factory):
    """SFC-style 784-256-256-256-10 at 90 % sparsity, memory mode, moderate folding: 1,000 test images."""
    from sbnn.export.compile import compile_model
    from sbnn.export.qonnx_export import export_checkpoint
    from sbnn.flow.sim import run_sim
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    d = tmp_path_factory.mktemp("sfc")
    cfg = TrainConfig(dataset="fashion-mnist", model="sfc", epochs=1, train_subset=4000, batch_size=256,
                      domain="alpha-beta", ec=0.1)
    train(cfg, d / "run", progress=False)
    export_checkpoint(d / "run" / "checkpoint.pt", d / "sfc.onnx", evaluate=False)
    fold = d / "folding.json"
    fold.write_text(json.dumps(SFC_FOLDING))
    compile_model(d / "sfc.onnx", d / "b", folding=fold, quiet=True)
    rep = run_sim(d / "b", 1000, stitch_dir=d / "st", out_json=d / "r.json")
    _check(rep)
    assert rep["frames"] == 1000


# bottleneck 256 cycles/frame (the three 256-wide layers); thresholding 196, classifier 16
SFC_FOLDING = {"Defaults": {"weight_mode": "memory"},
               "Thresholding_rtl_0": {"PE": 4},
               "SparseXnorMVAU_0": {"PE": 16, "SIMD": 49},
               "SparseXnorMVAU_1": {"PE": 16, "SIMD": 16},
               "SparseXnorMVAU_2": {"PE": 16, "SIMD": 16},
               "SparseXnorMVAU_3": {"PE": 10, "SIMD": 16}}
