"""Conv nets end to end: CNV through export, compile, FINN's Python execution, stitching and Verilator rtlsim.

* a tiny CNV trained here with {alpha, beta} weights on Fashion-MNIST padded to 32x32 (8-bit pixels into
  the first layer, the multi-bit MVAU mode; sliding windows; bit max-pools): PyTorch, QONNX and the HW
  graph agree image by image and every kernel's output equals its streamlined float counterpart;
* a w1a1 CNV built by Brevitas' own bnn_pynq code (FINN's CNV topology at reduced width, random init,
  3-channel input) that sbnn did not make: compiles, and the HW graph equals QONNX's execution;
* a conv with zero padding stops with one line naming the node (the default tier);
* slow (training and rtlsim cases): the trained CNV's chain, the Brevitas CNV checks, both nets stitched and simulated in Verilator (bit-exact frame by frame, cycles
  within 5 % of the estimate), a CNV built from CIFAR-10 files, an input quantizer whose scale grew.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support_models import export_brevitas_finn_cnv

pytest.importorskip("finn")

CNV_WIDTH = 0.125   # channels 8, 8, 16, 16, 32, 32; FC 64, 64


@functools.lru_cache(maxsize=1)
def _trained_cnv(root: str) -> dict:
    from sbnn.export.compile import compile_model
    from sbnn.export.qonnx_export import export_checkpoint
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    root = Path(root)
    cfg = TrainConfig(dataset="fashion-mnist-32", model="cnv", width=CNV_WIDTH, domain="alpha-beta", ec=0.1,
                      epochs=1, train_subset=1500, batch_size=100)
    train(cfg, root / "run", progress=False)
    onnx_path = root / "cnv.onnx"
    export_checkpoint(root / "run" / "checkpoint.pt", onnx_path, evaluate=False)
    # folded for speed in rtlsim; the same graph serves the Python checks
    rep = compile_model(onnx_path, root / "build", target_fps=20000)
    return {"ckpt": root / "run" / "checkpoint.pt", "onnx": onnx_path, "build": root / "build", "compile": rep}


@pytest.fixture(scope="module")
def trained_cnv(tmp_path_factory):
    return _trained_cnv(str(tmp_path_factory.mktemp("cnv")))


@pytest.fixture(scope="module")
def brevitas_cnv(tmp_path_factory):
    from sbnn.export.compile import compile_model

    d = tmp_path_factory.mktemp("brevitas_cnv")
    onnx_path = export_brevitas_finn_cnv(d / "cnv_w1a1.onnx")
    rep = compile_model(onnx_path, d / "build", target_fps=5000, input_max_value=255)
    return {"onnx": onnx_path, "build": d / "build", "compile": rep}


@pytest.mark.slow
def test_trained_cnv_layers(trained_cnv):
    ops = [r["op"] for r in trained_cnv["compile"]["layers"]]
    assert ops.count("SparseXnorMVAU") == 9                     # 6 convs + 3 FC
    assert ops.count("BinaryMaxPool") == 2
    assert sum(op.startswith("ConvolutionInputGenerator") for op in ops) == 6
    first = next(r for r in trained_cnv["compile"]["layers"] if r["op"] == "SparseXnorMVAU")
    assert first["MW"] == 9 and first["input_dtype"] == "INT8"    # 3x3x1 window of 8-bit pixels


@pytest.mark.slow
def test_trained_cnv_bitexact_chain(trained_cnv):
    from sbnn.export.verify import bitexact_chain

    res = bitexact_chain(trained_cnv["ckpt"], trained_cnv["onnx"], trained_cnv["build"], n=100)
    assert res["images"] == 100
    assert res["torch_vs_qonnx_mismatches"] == 0 and res["qonnx_vs_hw_mismatches"] == 0
    assert res["torch_vs_hw_mismatches"] == 0
    assert len(res["layers"]) == 9
    for row in res["layers"]:
        assert row["mismatching_values"] == 0, row


def _random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32)).astype(np.float32)


@pytest.mark.slow
def test_brevitas_cnv_hw_graph_equals_qonnx(brevitas_cnv):
    from sbnn.export.verify import HWGraphRunner, layer_outputs_check, qonnx_logits

    x = _random_images(24)
    logits = qonnx_logits(brevitas_cnv["onnx"], x / 255.0)
    hw = HWGraphRunner(brevitas_cnv["build"]).run(x).reshape(len(x), -1)[:, 0].astype(np.int64)
    # an untrained net ties often: the hardware's top-1 must be one of QONNX's best classes
    assert np.array_equal(logits[np.arange(len(x)), hw], logits.max(axis=1))
    rows = layer_outputs_check(brevitas_cnv["build"], x)
    assert len(rows) == 9
    assert all(r["mismatching_values"] == 0 for r in rows), rows
    # the hardware takes integer pixels in NHWC; the host only transposes
    assert brevitas_cnv["compile"]["input_max_value"] == 255


def test_padded_conv_stops_with_one_line(tmp_path):
    """A conv with zero padding is not supported (bipolar activations have no zero): one line naming the node."""
    onnx_path = tmp_path / "padded.onnx"
    _export_padded_conv(onnx_path)
    res = subprocess.run([sys.executable, "-m", "sbnn.cli", "compile", str(onnx_path), "--build-dir",
                          str(tmp_path / "b"), "--input-max-value", "255"], capture_output=True, text=True)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "Im2Col" in lines[0] and "padding" in lines[0]


def _export_padded_conv(path: Path) -> None:
    import torch
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0**-7),
        QuantConv2d(1, 8, 3, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1),
        nn.BatchNorm2d(8), QuantIdentity(act_quant=CommonActQuant, bit_width=1),
        QuantConv2d(8, 8, 3, padding=1, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1),
        nn.BatchNorm2d(8), QuantIdentity(act_quant=CommonActQuant, bit_width=1),
        nn.Flatten(), QuantLinear(8 * 6 * 6, 10, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1))
    model.eval()
    export_qonnx(model, torch.rand(1, 1, 8, 8), export_path=str(path), dynamo=False)


@pytest.mark.slow
def test_trained_cnv_rtlsim_bitexact(trained_cnv, tmp_path):
    from sbnn.flow.sim import run_sim

    rep = run_sim(trained_cnv["build"], 100, stitch_dir=tmp_path / "st", out_json=tmp_path / "r.json",
                  backpressure=0.2, gaps=0.2, seed=3)
    assert rep["data"] == "test" and rep["frames"] == 100
    assert rep["bit_exact"] and rep["mismatching_frames"] == 0, rep
    calm = run_sim(trained_cnv["build"], 100, stitch_dir=tmp_path / "st", out_json=tmp_path / "r2.json")
    assert calm["bit_exact"]
    assert abs(calm["cycles_per_frame"] / calm["est_cycles_per_frame"] - 1) <= 0.05, calm


@pytest.mark.slow
def test_brevitas_cnv_rtlsim_bitexact(brevitas_cnv, tmp_path):
    from sbnn.flow.sim import run_sim

    rep = run_sim(brevitas_cnv["build"] / "hw_graph.onnx", 12, data="random", seed=5, stitch_dir=tmp_path / "st",
                  out_json=tmp_path / "r.json", backpressure=0.2, gaps=0.2)
    assert rep["data"] == "random" and rep["bit_exact"], rep


@pytest.mark.parametrize("kernel,stride,dilation", [((3, 3), (1, 1), (1, 1)), ((2, 2), (2, 2), (1, 1)),
                                                    ((3, 2), (2, 1), (1, 2))])
def test_batch_im2col_equals_qonnx_frame_by_frame(kernel, stride, dilation):
    """qonnx's Im2Col is right for one frame at a time (and wrong for batches): ours matches it per frame."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    from sbnn.hls.exec_views.sliding_window import im2col_nhwc

    x = np.random.default_rng(0).integers(0, 256, (3, 9, 8, 3)).astype(np.float32)
    ours = im2col_nhwc(x, kernel, stride, dilation)
    for i in range(x.shape[0]):
        node = helper.make_node("Im2Col", ["i"], ["o"], domain="qonnx.custom_op.general", stride=list(stride),
                                kernel_size=list(kernel), dilations=list(dilation), input_shape="(1,9,8,3)")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("i", TensorProto.FLOAT, (1, 9, 8, 3))],
                                  [helper.make_tensor_value_info("o", TensorProto.FLOAT, (1, *ours.shape[1:]))])
        m = ModelWrapper(qonnx_make_model(graph))
        m.set_tensor_datatype("i", DataType["UINT8"])
        ref = execute_onnx(m, {"i": x[i:i + 1]})["o"]
        assert np.array_equal(ours[i:i + 1], ref)


def _write_small_cifar10(root: Path, n_train: int = 200, n_test: int = 60) -> Path:
    """A CIFAR-10 folder in the python-pickle layout (five data batches, a test batch, the meta file)."""
    import pickle

    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = n_train // 5
    for i in range(1, 6):
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"labels": rng.integers(0, 10, per).tolist(),
                         b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8)}, f)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"labels": rng.integers(0, 10, n_test).tolist(),
                     b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f)
    return root


@pytest.mark.slow
def test_cifar10_cnv_build_from_user_files(tmp_path):
    """`sbnn build --data-dir` on a CNV trained on CIFAR-10 files the test writes: bit-exact rtlsim on the
    test images, a deploy package of NHWC uint8 images whose driver also takes NCHW."""
    import json

    from sbnn.bitstreams.driver import Accelerator, SimBackend
    from sbnn.bitstreams.simbackend import stitched_rtlsim_transfer
    from sbnn.flow.build import run_build
    from sbnn.flow.config import BuildConfig, CompileConfig
    from sbnn.hls.stitch import load_design
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    data = _write_small_cifar10(tmp_path / "data")
    cfg = TrainConfig(dataset="cifar10", model="cnv", width=CNV_WIDTH, epochs=1, batch_size=50)
    train(cfg, tmp_path / "run", data_dir=str(data), progress=False)
    rep = run_build(BuildConfig(model=str(tmp_path / "run" / "checkpoint.pt"), build_dir=str(tmp_path / "b"),
                                frames=40, progress=False, data_dir=str(data),
                                compile=CompileConfig(target_fps=20000)))
    assert rep["bit_exact"] and rep["frames_verified"] == 40
    deploy = Path(rep["deploy"]["path"])
    config = json.loads((deploy / "config.json").read_text())
    assert config["image_layout"] == "NHWC" and config["input"]["shape"] == [32, 32, 3]
    images = np.load(deploy / "test_images.npy")
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    acc = Accelerator(config, SimBackend(stitched_rtlsim_transfer(load_design(tmp_path / "b" / "stitch"))))
    nhwc = acc.infer(images[:8])
    nchw = acc.infer(np.ascontiguousarray(images[:8].transpose(0, 3, 1, 2)), layout="NCHW")
    assert np.array_equal(nhwc, nchw)


@pytest.mark.slow
def test_input_quantizer_with_grown_scale_compiles(trained_cnv, tmp_path):
    """Training can grow the 8-bit input quantizer's learned scale: its thresholds then fall outside the
    pixels' 0..255 and are fractional. The compile rounds and clips them (exact on integer pixels)."""
    import torch

    from sbnn.export.compile import compile_model
    from sbnn.export.qonnx_export import export_checkpoint
    from sbnn.export.verify import bitexact_chain

    ckpt = torch.load(trained_cnv["ckpt"], weights_only=True)
    key = next(k for k in ckpt["model"] if k.startswith("input_quant.") and k.endswith("scaling_impl.value"))
    ckpt["model"][key] = torch.tensor(0.053)     # log2 scale seen after training with lr 1e-2
    run = tmp_path / "run"
    run.mkdir()
    torch.save(ckpt, run / "checkpoint.pt")
    export_checkpoint(run / "checkpoint.pt", tmp_path / "m.onnx", evaluate=False)
    compile_model(tmp_path / "m.onnx", tmp_path / "b", target_fps=20000)
    res = bitexact_chain(run / "checkpoint.pt", tmp_path / "m.onnx", tmp_path / "b", n=50, layers=False)
    assert res["qonnx_vs_hw_mismatches"] == 0 and res["torch_vs_hw_mismatches"] == 0
