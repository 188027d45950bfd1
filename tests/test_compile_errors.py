"""One-line user errors of export and compile, each naming what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("finn")

from sbnn.errors import UserError  # noqa: E402


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_unsupported_layer_names_node_and_op_type(compiled, tmp_path):
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from sbnn.export.compile import compile_model

    m = ModelWrapper(str(compiled["zero-beta"]["onnx"]))
    # put an op FINN cannot map between two layers: Sin after the first sign activation
    bq = [n for n in m.graph.node if n.op_type == "BipolarQuant"][1]
    out = bq.output[0]
    new = out + "_sin"
    for n in m.graph.node:
        for i, name in enumerate(n.input):
            if name == out:
                n.input[i] = new
    m.graph.node.append(helper.make_node("Sin", [out], [new], name="my_sin"))
    bad = tmp_path / "bad.onnx"
    from qonnx.transformation.general import SortGraph
    m = m.transform(SortGraph())
    m.save(str(bad))
    with pytest.raises(UserError) as e:
        compile_model(bad, tmp_path / "b")
    msg = _one_line(e)
    assert "Sin" in msg and "unsupported layer" in msg
    assert not (tmp_path / "b" / "compile_report.json").exists()   # a failed build never looks complete


def _infer_kernels(m):
    from sbnn.hls import ops

    for t in ops.infer_transforms("baked"):
        m = m.transform(t)
    return m


def test_non_binary_weights_name_the_node(compiled):
    from qonnx.core.modelwrapper import ModelWrapper

    build = compiled["alpha-beta"]["build"]
    m = ModelWrapper(str(next(build.glob("step_*_streamline.onnx"))))
    mm = [n for n in m.graph.node if n.op_type == "MatMul"][1]
    w = m.get_initializer(mm.input[1]).copy()
    w[0, 0] = 12345.0  # a third weight value in column 0
    m.set_initializer(mm.input[1], w)
    with pytest.raises(UserError) as e:
        _infer_kernels(m)
    msg = _one_line(e)
    assert mm.name in msg and "MatMul" in msg and "binary" in msg


def test_non_dyadic_ratio_names_the_node(compiled):
    from qonnx.core.modelwrapper import ModelWrapper

    build = compiled["alpha-beta"]["build"]
    m = ModelWrapper(str(next(build.glob("step_*_streamline.onnx"))))
    mm = [n for n in m.graph.node if n.op_type == "MatMul"][1]
    w = m.get_initializer(mm.input[1])
    lo = w.min(axis=0, keepdims=True)
    m.set_initializer(mm.input[1], np.where(w == lo, 1.0, 4.0).astype(np.float32))  # {1, 4}: rho = 1/3
    with pytest.raises(UserError) as e:
        _infer_kernels(m)
    msg = _one_line(e)
    assert mm.name in msg and "R/2**k" in msg


@pytest.mark.parametrize("fold, word", [({"PE": 3}, "PE=3 does not divide MH=32"),
                                        ({"SIMD": 5}, "SIMD=5 does not divide MW=784")])
def test_bad_folding_factors(compiled, tmp_path, fold, word):
    from sbnn.export.compile import compile_model

    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"SparseXnorMVAU_0": fold}))
    with pytest.raises(UserError) as e:
        compile_model(compiled["zero-beta"]["onnx"], tmp_path / "b", folding=f)
    msg = _one_line(e)
    assert word in msg and "SparseXnorMVAU_0" in msg
    assert not (tmp_path / "b" / "compile_report.json").exists()


def _prune_second_layer(checkpoint):
    import torch

    from sbnn.training.checkpoint import model_from_checkpoint
    from sbnn.training.sparsity import binary_layers

    model, _, _ = model_from_checkpoint(checkpoint)
    name, layer = binary_layers(model)[1]
    mask = torch.ones_like(layer.weight)
    mask[0, :3] = 0
    layer.weight_quant.tensor_quant.prune_mask = mask
    return model, name, layer, mask


def test_pruned_bipolar_layer_freezes_as_ternary(trained):
    from sbnn.export.freeze import freeze_model

    model, name, layer, mask = _prune_second_layer(trained["bipolar"])
    infos = freeze_model(model)
    assert next(i for i in infos if i.name == name).extra.get("ternary")
    w = layer.weight.detach()
    assert (w[mask == 0] == 0).all() and (w[mask == 1] != 0).all()
    for row in w:   # {-c, 0, +c} per output neuron
        assert len(row[row != 0].abs().unique()) == 1


def test_pruned_asymmetric_layer_is_rejected_at_export(trained):
    from sbnn.export.freeze import freeze_model

    model, name, _, _ = _prune_second_layer(trained["alpha-beta"])
    with pytest.raises(UserError) as e:
        freeze_model(model)
    msg = _one_line(e)
    assert name in msg and "pruned" in msg


def test_cli_errors_exit_2(tmp_path, capsys):
    from sbnn.cli import main

    assert main(["compile", str(tmp_path / "missing.onnx"), "--build-dir", str(tmp_path / "b")]) == 2
    assert main(["export", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("sbnn: error:") == 2 and "Traceback" not in err


@pytest.mark.parametrize("kw, words", [
    (dict(weight_mode="rom"), "--weight-mode must be baked, memory or auto"),
    (dict(target_fps=-1.0), "--target-fps must be positive"),
    (dict(fclk_mhz=0.0), "--fclk-mhz must be positive"),
    (dict(folding="f.json", target_fps=10.0), "either --folding FILE or --target-fps"),
    (dict(folding="missing.json"), "folding file"),
])
def test_compile_config_is_validated_once_with_one_line_errors(tmp_path, monkeypatch, kw, words):
    from sbnn.flow.config import BuildConfig, CompileConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(UserError) as e:
        CompileConfig.from_options(**kw)
    assert words in _one_line(e)
    # the build embeds the same config: the same options fail the same way, before anything is created
    with pytest.raises(UserError) as e:
        BuildConfig(board="pynq-z2", build_dir=str(tmp_path / "b"), compile=CompileConfig.from_options(**kw))
    assert words in _one_line(e) and not (tmp_path / "b").exists()


def test_build_config_takes_part_and_clock_from_the_board(tmp_path):
    from sbnn.flow.config import BuildConfig, CompileConfig

    cfg = BuildConfig(board="zcu104", build_dir=str(tmp_path / "b"), compile=CompileConfig(target_fps=1e5))
    assert cfg.compile.fpga_part.startswith("xczu7ev") and cfg.compile.fclk_mhz == 187.5
    assert cfg.synth_clk_period_ns == pytest.approx(1000 / 187.5)
    assert CompileConfig().resolved().fclk_mhz == 100.0
    with pytest.raises(UserError) as e:
        BuildConfig(board="zcu104", compile=CompileConfig(fclk_mhz=300.0))
    assert "takes the part and clock from --board" in _one_line(e)
