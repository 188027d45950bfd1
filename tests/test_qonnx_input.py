"""QONNX models a FINN user brings: `sbnn build MODEL.onnx` and `sbnn sim --data random` on any input type.

* a w1a1 FC net defined here with Brevitas (8-bit input quantizer, +-1 weights, batch norm, sign activations,
  as in brevitas_examples' bnn_pynq FC), random init, exported with ``brevitas.export.export_qonnx``:
  built for the pynq-z2 on random inputs (bit-exact, the pixel scaling merged so the hardware takes UINT8,
  no made-up accuracy), then on the user's own images and labels (only rtlsim is redone);
* the same model compiled as it is (FLOAT32 hardware input: FINN's float thresholding) and simulated on
  random floats spanning its input quantizer's levels;
* bad inputs stop with one line and exit 2 before anything is created: an empty or corrupt .onnx, an
  unsupported op or a foreign op domain (named), images of the wrong size, negative labels, too few images,
  a pickled .npy;
* random inputs of every datatype and their stream encoding (FLOAT32 as IEEE bits, BIPOLAR as 0/1).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from sbnn.cli import main
from sbnn.export.qonnx_input import check_qonnx
from sbnn.export.verify import qonnx_logits
from sbnn.flow.sim import float_input_range, random_inputs, random_stimulus
from sbnn.hls.stitch import load_design
from sbnn.hls.stitched_rtlsim import from_stream_elements, to_stream_elements

# no vivado on PATH; the venv's bin first, because Verilator's generated makefile runs `python`
NO_VIVADO_PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
HIDDEN = (64, 64)


def brevitas_w1a1_fc(hidden=HIDDEN, seed: int = 0) -> nn.Module:
    """784-64-64-10 w1a1 FC in Brevitas, bnn_pynq style, random init with non-trivial batch norms."""
    torch.manual_seed(seed)
    layers = [QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0**-7)]
    width = 784
    for h in hidden:
        layers += [QuantLinear(width, h, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1),
                   nn.BatchNorm1d(h), QuantIdentity(act_quant=CommonActQuant, bit_width=1)]
        width = h
    layers.append(QuantLinear(width, 10, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
            bn.running_mean.uniform_(-2, 2)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
    return model.eval()


def majority_share(model: nn.Module) -> float:
    """Share of the +-1 weights that the sparse MVAUs skip, counted here from PyTorch: per neuron the more
    frequent sign where a threshold follows (a flipped neuron folds into it), per layer for the classifier."""
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    skipped = 0
    for i, layer in enumerate(layers):
        pos = (layer.weight.detach() >= 0).to(torch.int64)
        rows = pos if i < len(layers) - 1 else pos.reshape(1, -1)
        ones = rows.sum(1)
        skipped += int(torch.maximum(ones, rows.shape[1] - ones).sum())
    return skipped / sum(layer.weight.numel() for layer in layers)


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    d = tmp_path_factory.mktemp("qonnx_fc")
    model = brevitas_w1a1_fc()
    path = d / "fc_w1a1.onnx"
    export_qonnx(model, torch.rand(1, 784), export_path=str(path), dynamo=False)
    return {"onnx": path, "sparsity": majority_share(model), "dir": d}


@pytest.fixture(scope="module")
def fc_build(fc):
    """`sbnn build fc_w1a1.onnx --board pynq-z2 --frames 200` (no data named: random inputs)."""
    build = fc["dir"] / "build"
    mp = pytest.MonkeyPatch()
    mp.setenv("PATH", NO_VIVADO_PATH)
    mp.delenv("XILINX_VIVADO", raising=False)
    try:
        rc = main(["build", str(fc["onnx"]), "--board", "pynq-z2", "--frames", "200", "--build-dir", str(build),
                   "--quiet"])
    finally:
        mp.undo()
    assert rc == 0
    return {"build": build, "report": json.loads((build / "report.json").read_text())}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- the build ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_brevitas_fc_build_on_random_inputs_is_bit_exact(fc, fc_build):
    rep = fc_build["report"]
    assert rep["bit_exact"] is True and rep["frames_verified"] >= 200
    assert rep["model"] == str(fc["onnx"]) and rep["checkpoint"] is None
    assert rep["verification_data"]["source"] == "random"
    # FINN's pre-processing merged: 8-bit pixels in, read as pixel / 255
    assert rep["hardware_input"]["dtype"] == "UINT8" and rep["hardware_input"]["shape"] == [784]
    assert "255" in rep["hardware_input"]["preprocessing"]
    # nothing from a training checkpoint is made up: None, with the reason in the report
    for key in ("accuracy_pytorch", "accuracy_pytorch_frozen", "accuracy_qonnx", "accuracy_rtlsim"):
        assert rep[key] is None and rep["not_available"][key]
    assert "random" in rep["not_available"]["accuracy_rtlsim"]
    # weight sparsity from the weights (no training history): what the hardware skips, counted here from PyTorch
    assert rep["weight_sparsity"] == pytest.approx(fc["sparsity"], abs=1e-9)
    assert sum(r["op"] == "SparseXnorMVAU" for r in rep["layers"]) == 3
    md = (fc_build["build"] / "report.md").read_text()
    assert "200 random frames" in md and "**bit-exact**" in md and "UINT8" in md
    assert "no PyTorch checkpoint" in md
    # the export stage holds a validated copy of the model
    assert check_qonnx(fc_build["build"] / "export" / "model.qonnx.onnx").input_shape == (1, 784)


@pytest.mark.slow
def test_brevitas_fc_build_on_user_images_redoes_only_rtlsim(fc, fc_build, capsys, monkeypatch):
    """--images/--labels on the finished build: rtlsim (and the report) redone on them, compile reused; the
    labels are QONNX's own predictions, so its accuracy must be 1."""
    monkeypatch.setenv("PATH", NO_VIVADO_PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    build = fc_build["build"]
    pixels = np.random.default_rng(1).integers(0, 256, size=(120, 1, 28, 28), dtype=np.uint8)
    logits = qonnx_logits(fc["onnx"], pixels.reshape(120, 784).astype(np.float32) / 255)
    np.save(fc["dir"] / "x.npy", pixels)
    np.save(fc["dir"] / "y.npy", logits.argmax(1).astype(np.int64))
    hw_graph = build / "compile" / "hw_graph.onnx"
    compiled_at = hw_graph.stat().st_mtime_ns
    rc = main(["build", str(fc["onnx"]), "--frames", "100", "--build-dir", str(build),
               "--images", str(fc["dir"] / "x.npy"), "--labels", str(fc["dir"] / "y.npy"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert hw_graph.stat().st_mtime_ns == compiled_at, "a change of verification data does not recompile"
    rep = json.loads((build / "report.json").read_text())
    assert rep["verification_data"]["source"] == "files" and rep["frames_verified"] == 100 and rep["bit_exact"]
    assert rep["accuracy_qonnx"] == 1.0
    # an untrained net ties now and then: the hardware's top-1 may pick another of the tied best classes
    assert rep["accuracy_rtlsim"] >= 0.9
    assert "accuracy_rtlsim" not in rep["not_available"]
    assert np.load(build / "deploy" / "test_images.npy").shape == (100, 784)


# ---- compile + sim on the float input --------------------------------------------------------------------
def test_compile_and_sim_on_float_input_is_bit_exact(fc, tmp_path, capsys):
    """Compiled as it is, the hardware takes FLOAT32 (FINN's thresholding compares IEEE-754 values): random
    floats across the input quantizer's levels, streamed as their bits, match FINN's execution; so do the
    user's float images (`sbnn sim --images --labels`)."""
    build = tmp_path / "c"
    assert main(["compile", str(fc["onnx"]), "--build-dir", str(build)]) == 0
    assert json.loads((build / "compile_report.json").read_text())["input_max_value"] is None
    out = tmp_path / "sim.json"
    rc = main(["sim", str(build), "--data", "random", "--frames", "30", "--stitch-dir", str(tmp_path / "st"),
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert rep["bit_exact"] and rep["data"] == "random" and rep["frames"] == 30
    design = load_design(tmp_path / "st")
    assert design.in_dtype == "FLOAT32"
    lo, hi = float_input_range(ModelWrapper(str(build / "hw_graph.onnx")))
    assert -1.3 < lo < -1.0 and 1.0 < hi < 1.3, "the 8-bit quantizer's levels span [-1, 1)"
    stim = random_stimulus(build / "hw_graph.onnx", design, 30, 0)
    assert len(np.unique(stim.expected)) >= 5, "the random floats reach many classes, not one"
    # the user's float images (the model's own input values: no pixel scaling merged) with labels
    x = np.random.default_rng(2).random((20, 784), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", qonnx_logits(fc["onnx"], x).argmax(1))
    rc = main(["sim", str(build), "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
               "--frames", "20", "--stitch-dir", str(tmp_path / "st"), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert rep["data"] == "files" and rep["bit_exact"] and rep["accuracy_rtl"] >= 0.9


# ---- bad inputs: one line, exit 2, nothing created --------------------------------------------------------
def _build_args(onnx_path, tmp_path, *extra):
    return ["build", str(onnx_path), "--build-dir", str(tmp_path / "b"), "--frames", "10", *extra]


def test_empty_onnx_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert main(_build_args(empty, tmp_path)) == 2
    assert "empty" in _one_line_error(capsys)
    assert not (tmp_path / "b").exists()


def test_corrupt_onnx_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    assert main(_build_args(bad, tmp_path)) == 2
    assert "not an ONNX" in _one_line_error(capsys)
    assert not (tmp_path / "b").exists()


def _with_extra_node(src: Path, dst: Path, node_name: str, op_type: str, domain: str = "") -> Path:
    model = onnx.load(str(src))
    out = model.graph.output[0]
    model.graph.node.append(helper.make_node(op_type, [out.name], [out.name + "_x"], name=node_name, domain=domain))
    out.name = out.name + "_x"
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    onnx.save(model, str(dst))
    return dst


def test_unsupported_op_is_named(fc, tmp_path, capsys):
    path = _with_extra_node(fc["onnx"], tmp_path / "softmax.onnx", "final_softmax", "Softmax")
    assert main(_build_args(path, tmp_path)) == 2
    err = _one_line_error(capsys)
    assert "final_softmax" in err and "Softmax" in err
    assert not (tmp_path / "b").exists()


def test_foreign_op_domain_is_refused_without_importing_it(fc, tmp_path, capsys):
    """qonnx imports the Python module a node's domain names: an unknown domain is refused before that."""
    path = _with_extra_node(fc["onnx"], tmp_path / "foreign.onnx", "sneaky", "Run", domain="sbnn_test_foreign_mod")
    assert main(_build_args(path, tmp_path)) == 2
    err = _one_line_error(capsys)
    assert "sneaky" in err and "sbnn_test_foreign_mod" in err
    assert "sbnn_test_foreign_mod" not in sys.modules


@pytest.mark.parametrize("case,words", [
    ("pixels", "784"), ("negative", "negative"), ("count", "labels for"), ("few", "fewer than --frames"),
    ("pickled", "pickled"), ("fractional", "fractional"), ("class", "10 classes"),
])
def test_bad_user_images_or_labels_are_one_line(fc, tmp_path, capsys, case, words):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 784)).astype(np.uint8)
    y = rng.integers(0, 10, size=20)
    if case == "pixels":
        x = x[:, :700]
    elif case == "negative":
        y[3] = -1
    elif case == "count":
        y = y[:19]
    elif case == "few":
        x, y = x[:5], y[:5]
    elif case == "fractional":
        x = x / 255.0
    elif case == "class":
        y[0] = 10
    np.save(tmp_path / "x.npy", x)
    if case == "pickled":
        np.save(tmp_path / "y.npy", np.array([{"label": 1}] * 20, dtype=object), allow_pickle=True)
    else:
        np.save(tmp_path / "y.npy", y)
    rc = main(_build_args(fc["onnx"], tmp_path, "--images", str(tmp_path / "x.npy"), "--labels",
                          str(tmp_path / "y.npy")))
    assert rc == 2
    assert words in _one_line_error(capsys)
    assert not (tmp_path / "b").exists()


def test_contradictory_data_options_are_one_line(fc, tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.zeros(20, dtype=np.int64))
    assert main(_build_args(fc["onnx"], tmp_path, "--labels", str(tmp_path / "y.npy"))) == 2
    assert "--labels needs --images" in _one_line_error(capsys)
    assert main(_build_args(fc["onnx"], tmp_path, "--dataset", "imagenet")) == 2
    assert "--dataset must be one of" in _one_line_error(capsys)


# ---- random inputs of every datatype -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["BINARY", "BIPOLAR", "UINT8", "INT4", "INT16", "UINT32"])
def test_random_inputs_cover_integer_types(name):
    dt = DataType[name]
    x = random_inputs(dt, (400, 3, 5), np.random.default_rng(0))
    assert x.shape == (400, 3, 5)
    assert all(dt.allowed(v) for v in np.unique(x))
    if dt.get_num_possible_values() <= 16:
        assert len(np.unique(x)) == dt.get_num_possible_values(), "every value occurs"
    assert np.array_equal(from_stream_elements(to_stream_elements(x, dt), dt), x)


def test_random_float_inputs_stream_as_ieee_bits():
    dt = DataType["FLOAT32"]
    x = random_inputs(dt, (50, 7), np.random.default_rng(0), (-1.2, 1.2))
    assert x.dtype == np.float32 and -1.2 <= x.min() < -1.0 and 1.0 < x.max() <= 1.2
    bits = to_stream_elements(x, dt)
    assert bits.dtype == np.int64 and bits.max() < 2**32 and bits.min() >= 0
    assert np.array_equal(bits, x.view(np.uint32).astype(np.int64))
    assert np.array_equal(from_stream_elements(bits, dt), x.astype(np.float64))


def test_bipolar_streams_as_bits():
    dt = DataType["BIPOLAR"]
    assert to_stream_elements(np.array([[-1, 1, 1, -1]]), dt).tolist() == [[0, 1, 1, 0]]
    with pytest.raises(ValueError, match="-1 or \\+1"):
        to_stream_elements(np.array([[0, 1]]), dt)
