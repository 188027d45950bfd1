"""Settings that run but do not give what was asked warn with the measured effect (issue #16): a lossy
``--frac-bits`` (export) and an unreachable ``--target-fps`` (compile). One ``sbnn: warning:`` line on
stderr each; the export / compile report JSON records the same figures."""

from __future__ import annotations

import json

import pytest

from sbnn.bitstreams.report_md import _frac_bits_lines, _target_lines
from sbnn.cli import main

pytest.importorskip("finn")

FCLK_MHZ = 100.0          # sbnn compile's default clock
PYNQ_Z2_INPUT_FLOOR = 98  # 784 UINT8 pixels over the 64-bit HP port of xc7z020 (the default part)


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("sbnn: warning:")]


def _test_accuracy_drop(checkpoint, frac_bits: int, x, y) -> float:
    """Percentage points the frozen model loses against the float one on (x, y), computed here, not by export."""
    import torch

    from sbnn.export.qonnx_export import load_frozen

    frozen, original, *_ = load_frozen(checkpoint, frac_bits)
    with torch.no_grad():
        original.eval()
        acc = [float((m(x).argmax(1) == y).float().mean()) for m in (original, frozen)]
    return 100 * (acc[0] - acc[1])


def test_lossy_frac_bits_warns_with_the_measured_effect(trained, tmp_path, capsys):
    from sbnn.export.freeze_effect import LOSSY_POINTS, SEARCH_FRAMES
    from sbnn.training.datasets import load_dataset

    ckpt, out = trained["alpha-beta"], tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--frac-bits", "0"]) == 0
    err = capsys.readouterr().err
    effect = json.loads(out.with_suffix(".json").read_text())["frac_bits_effect"]
    assert effect["frac_bits"] == 0 and effect["frames"] == 10_000 and effect["lossy"]
    assert 100 * (effect["accuracy_float"] - effect["accuracy_fixed"]) > LOSSY_POINTS
    assert effect["changed_predictions"] > 0
    better = effect["suggested_frac_bits"]
    assert better is not None and better > 0
    [line] = _warnings(err)
    assert (f"--frac-bits 0 changes {effect['changed_predictions']:,} of 10,000 test predictions (accuracy "
            f"{100 * effect['accuracy_float']:.1f} % -> {100 * effect['accuracy_fixed']:.1f} %)") in line
    assert line.endswith(f"; use --frac-bits {better} or more"), line
    # the suggestion keeps the accuracy, and one bit fewer does not (on the sample the search evaluates)
    _, test_set, _ = load_dataset("fashion-mnist", None)
    x, y = (t[:SEARCH_FRAMES] for t in test_set.tensors)
    assert _test_accuracy_drop(ckpt, better, x, y) <= LOSSY_POINTS
    assert _test_accuracy_drop(ckpt, better - 1, x, y) > LOSSY_POINTS
    # the build report (report.md) carries the same figures
    [md] = [line for line in _frac_bits_lines({"frac_bits_effect": effect}) if line]
    assert md.startswith("**Warning: lossy.** Freezing at `--frac-bits 0` changes") and f"`--frac-bits {better}`" in md


def test_default_frac_bits_does_not_warn(trained, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(trained["alpha-beta"]), "--out", str(out)]) == 0
    assert _warnings(capsys.readouterr().err) == []
    rep = json.loads(out.with_suffix(".json").read_text())
    effect = rep["frac_bits_effect"]
    assert effect["frac_bits"] == 8 and not effect["lossy"] and effect["suggested_frac_bits"] is None
    assert "Warning" not in "".join(_frac_bits_lines({"frac_bits_effect": effect}))
    assert abs(effect["accuracy_float"] - effect["accuracy_fixed"]) < 0.005
    assert rep["accuracy_after_freeze"] == effect["accuracy_fixed"], "the older keys carry the same numbers"


def test_no_eval_measures_nothing(trained, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(trained["alpha-beta"]), "--out", str(out), "--frac-bits", "0", "--no-eval"]) == 0
    assert _warnings(capsys.readouterr().err) == []
    assert json.loads(out.with_suffix(".json").read_text())["frac_bits_effect"] is None


@pytest.fixture(scope="module")
def tiny_onnx(trained, tmp_path_factory):
    from sbnn.export.qonnx_export import export_checkpoint

    out = tmp_path_factory.mktemp("tiny") / "m.onnx"
    export_checkpoint(trained["alpha-beta"], out, evaluate=False)
    return out


def test_unreachable_target_fps_warns_and_builds_the_fastest(tiny_onnx, tmp_path, capsys):
    build = tmp_path / "b"
    assert main(["compile", str(tiny_onnx), "--build-dir", str(build), "--target-fps", "1e12"]) == 0
    err = capsys.readouterr().err
    rep = json.loads((build / "compile_report.json").read_text())
    reach = rep["target_fps_reach"]
    assert rep["target_fps_reached"] is False and reach["reached"] is False and reach["target_fps"] == 1e12
    # 1e12 FPS at 100 MHz would be 1e-4 cycles per frame: the best is the slower of the slowest layer and the
    # input stream, and the design is still compiled (every layer as fast as it goes)
    assert reach["cycles"] == max(rep["max_cycles_per_frame"], PYNQ_Z2_INPUT_FLOOR)
    assert reach["best_fps"] == pytest.approx(FCLK_MHZ * 1e6 / reach["cycles"])
    assert rep["max_cycles_per_frame"] <= PYNQ_Z2_INPUT_FLOOR, "folded for speed, not left at PE = SIMD = 1"
    [line] = _warnings(err)
    assert "--target-fps 1,000,000,000,000 is out of reach" in line
    assert f"at most {reach['best_fps']:,.0f} FPS at 100 MHz" in line
    bound = "the input stream" if reach["bound"] == "input stream" else f"layer {reach['bound']}"
    assert f"bounded by {bound}" in line, line
    [md] = _target_lines({"target_fps_reach": reach})
    assert "**`--target-fps 1,000,000,000,000` not reached**" in md and f"{reach['best_fps']:,.0f} FPS" in md


def test_a_layer_bound_names_the_layer():
    """The tiny MLP unrolls to 1 cycle per frame, so its input stream bounds it; a design whose slowest layer
    is slower than the input stream (a conv net's window generator, say) is bounded by that layer instead."""
    from sbnn.export.fastest_fit import target_reach, target_warning

    stream = {"part": "xc7z020clg400-1", "floor_cycles": 98, "input_bits": 6272, "stream_bits": 64}
    slow = {"layer": "ConvolutionInputGenerator_rtl_0", "cycles": 500}   # as throughput_bound names it
    reach = target_reach(250_000, FCLK_MHZ, slow, stream)
    assert not reach["reached"] and reach["bound"] == slow["layer"] and reach["cycles"] == 500
    assert reach["best_fps"] == pytest.approx(200_000)
    line = target_warning(reach, FCLK_MHZ)
    assert ("--target-fps 250,000 is out of reach: at most 200,000 FPS at 100 MHz, bounded by layer "
            "ConvolutionInputGenerator_rtl_0, which cannot fold below 500 cycles/frame") in line
    assert target_reach(200_000, FCLK_MHZ, slow, stream)["reached"], "exactly the best rate is reached"
    assert target_reach(2e6, FCLK_MHZ, {**slow, "cycles": 10}, stream)["bound"] == "input stream"


def test_reachable_target_fps_does_not_warn(tiny_onnx, tmp_path, capsys):
    build = tmp_path / "b"
    assert main(["compile", str(tiny_onnx), "--build-dir", str(build), "--target-fps", "200000"]) == 0
    assert _warnings(capsys.readouterr().err) == []
    rep = json.loads((build / "compile_report.json").read_text())
    assert rep["target_fps_reached"] is True and rep["target_fps_reach"]["best_fps"] >= 200_000
    assert rep["est_fps"] >= 200_000


def test_no_target_fps_records_no_verdict(tiny_onnx, tmp_path, capsys):
    from sbnn.export.compile import compile_model

    rep = compile_model(tiny_onnx, tmp_path / "b")
    assert rep["target_fps_reached"] is None and rep["target_fps_reach"] is None
    assert _warnings(capsys.readouterr().err) == []
