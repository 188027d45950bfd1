"""End to end on a real stitched design: train -> export -> compile -> stitch -> Vivado project (Tcl dry run)
-> deploy package -> the shipped driver over the stitched Verilator rtlsim classifies 1,000 Fashion-MNIST test
images exactly as QONNX execution of the exported model (and as FINN's Python execution of the compiled graph).
This is the order `sbnn build` runs the stages in."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("finn")


@pytest.mark.slow
def test_stitched_design_through_vivado_project_and_driver(tmp_path):
    from sbnn.bitstreams.deploy import make_deploy_package
    from sbnn.bitstreams.driver import Accelerator, SimBackend
    from sbnn.bitstreams.simbackend import stitched_rtlsim_transfer
    from sbnn.bitstreams.vivado import io_from_stitched, generate_vivado_project
    from sbnn.export.compile import compile_model
    from sbnn.export.qonnx_export import export_checkpoint
    from sbnn.export.verify import HWGraphRunner, pixels_for_hw, qonnx_logits
    from sbnn.hls.stitch import stitch
    from sbnn.training.config import TrainConfig
    from sbnn.training.datasets import load_dataset
    from sbnn.training.trainer import train
    from support_rtl import require_verilator

    require_verilator()
    cfg = TrainConfig(dataset="fashion-mnist", model="mlp", hidden="32,32", epochs=1, train_subset=2000,
                      batch_size=256, domain="alpha-beta", ec=0.1)
    train(cfg, tmp_path / "train", progress=False)
    export_checkpoint(tmp_path / "train" / "checkpoint.pt", tmp_path / "m.onnx", evaluate=False)
    rep = compile_model(tmp_path / "m.onnx", tmp_path / "compile", quiet=True)
    design = stitch(tmp_path / "compile", tmp_path / "stitched")

    io = io_from_stitched(design)
    assert io["meaning"] == "class_index" and io["input"].shape == (784,) and io["input"].elem_bits == 8
    proj = generate_vivado_project(design.rtl_dir, design.top, io, "pynq-z2", tmp_path / "vivado",
                                   extra={"meaning": io["meaning"]})
    try:
        from support_rtl import dry_run_tcl

        dry_run_tcl(proj)
    except ImportError:  # no tkinter: the Tcl dry run is covered by test_vivado_project where it exists
        pass

    _, test_set, _ = load_dataset("fashion-mnist")
    n = 1000
    x, y = test_set.tensors[0].numpy()[:n], test_set.tensors[1].numpy()[:n]
    qonnx_class = qonnx_logits(tmp_path / "m.onnx", x).argmax(1)
    x_hw = pixels_for_hw(x, rep["input_max_value"])
    expected = HWGraphRunner(tmp_path / "compile").run(x_hw).reshape(len(x), -1)[:, 0].astype(np.int64)
    assert np.array_equal(expected, qonnx_class), "FINN's compiled graph classifies as the QONNX model"
    frames = x_hw.reshape(len(x), -1).astype(np.uint8)
    pkg = make_deploy_package(proj, tmp_path / "deploy", images=frames, labels=y)
    conf = json.loads((pkg.path / "config.json").read_text())
    assert conf["input"]["dtype"] == "uint8" and conf["output"]["meaning"] == "class_index"

    acc = Accelerator(pkg.path / "config.json",
                      SimBackend(stitched_rtlsim_transfer(design, build_dir=tmp_path / "rtlsim"), "stitched"))
    got = acc.infer(frames)
    assert got.shape == (n,) and np.array_equal(got, qonnx_class), \
        f"driver over rtlsim differs from QONNX on {int((got != qonnx_class).sum())} of {n} images"
    assert 0.3 < float((got == y).mean()) < 1.0, "a (briefly) trained classifier, not a constant (chance: 0.1)"
    assert acc.throughput(32)["fps"] > 0
