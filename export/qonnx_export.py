"""``sbnn export``: checkpoint -> frozen model -> QONNX (Brevitas export_qonnx).

The QONNX model reproduces the frozen PyTorch model's eval-mode outputs when
executed by qonnx's ``execute_onnx`` (see freeze.py for why it is exact).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from onnx import numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from sbnn.errors import UserError
from sbnn.training.checkpoint import model_from_checkpoint
from sbnn.training.datasets import load_dataset

from .freeze import DEFAULT_FRAC_BITS, freeze_model
from .freeze_effect import frac_bits_effect, warning_line
from .notice import warn


def load_frozen(checkpoint: str | Path, frac_bits: int = DEFAULT_FRAC_BITS):
    """(frozen model, unfrozen model, config, checkpoint dict, freeze infos)."""
    model, cfg, ckpt = model_from_checkpoint(checkpoint)
    original = copy.deepcopy(model)
    infos = freeze_model(model, frac_bits)
    model.eval()
    return model, original, cfg, ckpt, infos


def _set_weight_quant_bitwidth_to_one(path: Path) -> int:
    """Brevitas exports our frozen weight quantizer with bit width 2 (it refuses a 1-bit zero point);
    the values are 0/1, so bit width 1 is exact. Ternary layers' Quant nodes (codes -1, 0, +1) keep bit
    width 2 and become signed and narrow. Returns the number of Quant nodes rewritten."""
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    n = 0
    for node in model.graph.node:
        if node.op_type != "Quant" or node.input[0] not in inits:
            continue
        bw = inits.get(node.input[3])
        if bw is None or float(numpy_helper.to_array(bw)) != 2.0:
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        s = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zp = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        codes = np.round(w / s + zp)
        if not np.any(zp) and np.isin(codes, (-1.0, 0.0, 1.0)).all() and np.any(codes < 0):
            _mark_signed_narrow(node)   # a ternary layer (FrozenTernaryQuant): codes -1, 0, +1 at bit width 2
            n += 1
            continue
        if not np.isin(codes, (0.0, 1.0)).all():
            continue
        # a new initializer so that shared bit-width tensors are not changed for other nodes
        name = node.input[3] + "_1bit"
        if name not in inits:
            t = numpy_helper.from_array(np.array(1.0, dtype=np.float32), name)
            model.graph.initializer.append(t)
            inits[name] = t
        node.input[3] = name
        n += 1
    onnx.save(model, str(path))
    return n


def _mark_signed_narrow(node) -> None:
    """Brevitas exports our quantizers unsigned; ternary codes need a signed, narrow 2-bit Quant."""
    for attr in ("signed", "narrow"):
        a = next((a for a in node.attribute if a.name == attr), None)
        if a is not None:
            a.i = 1
        else:
            node.attribute.append(onnx.helper.make_attribute(attr, 1))


INPUT_MAX_VALUE = {"digits": 16}  # pixel value that maps to 1.0 (datasets.py); 255 for the others


def export_frozen(model: torch.nn.Module, in_shape, out_path: str | Path, input_max_value: int | None = None,
                  dataset: str | None = None) -> Path:
    """Brevitas export_qonnx of an already frozen model, then the 1-bit fix-up and onnx.checker.

    The QONNX model's metadata records what later stages need to know about its input:
    ``sbnn.input_max_value`` (the pixel value that maps to 1.0) and ``sbnn.dataset`` (the data
    set it was trained on, whose test images `sbnn sim` and `sbnn build` feed it).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, *in_shape)
    tmp = out_path.with_name(out_path.name + ".tmp.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_qonnx(model, x, export_path=str(tmp), dynamo=False)
        _set_weight_quant_bitwidth_to_one(tmp)
        clean = cleanup_model(ModelWrapper(str(tmp)))
        if input_max_value:
            # lets `sbnn compile` feed the hardware integer pixels (x = pixel / max_value)
            clean.set_metadata_prop("sbnn.input_max_value", str(int(input_max_value)))
        if dataset:
            clean.set_metadata_prop("sbnn.dataset", str(dataset))
        clean.save(str(tmp))
        onnx.checker.check_model(onnx.load(str(tmp)))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)   # gone after the replace; after a failure or an interrupt, removed
    return out_path


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, frac_bits: int = DEFAULT_FRAC_BITS,
                      *, evaluate: bool = True, data_dir: str | None = None) -> dict:
    """Freeze and export a checkpoint; writes ``out`` (.onnx) and ``out`` with .json (export report)."""
    checkpoint = Path(checkpoint)
    model, original, cfg, ckpt, infos = load_frozen(checkpoint, frac_bits)
    out = Path(out) if out else checkpoint.with_name("model.qonnx.onnx")
    if out.suffix != ".onnx":
        raise UserError(f"--out must end in .onnx, got {out}")
    in_shape = tuple(ckpt["data"]["in_shape"])
    dataset = ckpt["data"]["dataset"]
    export_frozen(model, in_shape, out, INPUT_MAX_VALUE.get(dataset, 255), dataset=dataset)
    report = {
        "checkpoint": str(checkpoint),
        "model": str(out),
        "frac_bits": frac_bits,
        "in_shape": list(in_shape),
        "dataset": ckpt["data"]["dataset"],
        "block": cfg.block,   # block-structured mask "RxC" (sbnn.training.blocks), None = element-wise
        "layers": [{"name": i.name, "alpha_shift": i.frac_bits,
                    "alpha_num": i.alpha_num.tolist() if i.alpha_num.size > 1 else int(i.alpha_num[0]),
                    "quantum_mantissa_bits": i.mantissa_bits, "centred_neurons": i.centred,
                    "thresholds_moved": i.moved, "ternary": bool(i.extra.get("ternary"))} for i in infos],
    }
    report["frac_bits_effect"] = None   # measured on the test set unless evaluate=False
    if evaluate:
        _, test_set, _ = load_dataset(ckpt["data"]["dataset"], data_dir)
        x, y = test_set.tensors
        effect = frac_bits_effect(original, model, frac_bits, x, y)
        report["frac_bits_effect"] = effect
        report["accuracy_before_freeze"] = effect["accuracy_float"]
        report["accuracy_after_freeze"] = effect["accuracy_fixed"]
        report["predictions_changed_by_freeze"] = effect["changed_predictions"]
        report["test_samples"] = effect["frames"]
        if effect["lossy"]:
            warn(warning_line(effect))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report
