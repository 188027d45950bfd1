"""Small trained, exported and compiled models shared by the export/compile tests (built once per process).

Used through the ``trained`` and ``compiled`` fixtures of conftest.py, or directly by tests that need them
outside a fixture.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

HIDDEN = "32,32"
CASES = {
    "bipolar": dict(domain="bipolar"),
    "zero-beta": dict(domain="zero-beta", ec=0.1),
    "alpha-beta": dict(domain="alpha-beta", ec=0.1),
    # per-channel levels everywhere, classifier included: per-channel R_j and output scales
    "alpha-beta-pc": dict(domain="alpha-beta", ec=0.1, per_channel=True, dense_classifier=False),
}


@functools.lru_cache(maxsize=1)
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="sbnn_export_tests_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.lru_cache(maxsize=1)
def trained_models() -> dict[str, Path]:
    """checkpoint.pt per case: MLP 784-32-32-10 on 2,000 Fashion-MNIST images, one epoch."""
    out = {}
    for name, kw in CASES.items():
        cfg = TrainConfig(dataset="fashion-mnist", model="mlp", hidden=HIDDEN, epochs=1, train_subset=2000,
                          batch_size=256, **kw)
        train(cfg, _root() / name, progress=False)
        out[name] = _root() / name / "checkpoint.pt"
    return out


@functools.lru_cache(maxsize=1)
def compiled_models() -> dict[str, dict]:
    """Per case: checkpoint, QONNX model, build directory, export and compile reports (default folding)."""
    out = {}
    for name, ckpt in trained_models().items():
        onnx_path = _root() / f"{name}.onnx"
        rep = export_checkpoint(ckpt, onnx_path, evaluate=(name == "alpha-beta"))
        build = _root() / f"build_{name}"
        crep = compile_model(onnx_path, build, quiet=True)
        out[name] = dict(ckpt=ckpt, onnx=onnx_path, build=build, export=rep, compile=crep)
    return out


def export_brevitas_finn_cnv(path: Path, *, convs=((8, False), (8, True), (16, False), (16, True), (32, False),
                                                   (32, False)), fcs=(64, 64), in_ch: int = 3, seed: int = 0) -> Path:
    """A w1a1 CNV built by Brevitas' own bnn_pynq code (``brevitas_examples.bnn_pynq.models.CNV``: FINN's CNV
    topology, 8-bit input, +-1 weights with a scale, TensorNorm), random init, at reduced channel counts,
    exported with ``brevitas.export.export_qonnx``: a model sbnn did not make or train."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import CNV as cnv_module

    widths = {"CNV_OUT_CH_POOL": list(convs),
              "INTERMEDIATE_FC_FEATURES": [(convs[-1][0], fcs[0]), (fcs[0], fcs[1])],
              "LAST_FC_IN_FEATURES": fcs[1]}
    torch.manual_seed(seed)
    saved = {k: getattr(cnv_module, k) for k in widths}
    try:
        for k, v in widths.items():
            setattr(cnv_module, k, v)
        model = cnv_module.CNV(num_classes=10, weight_bit_width=1, act_bit_width=1, in_bit_width=8, in_ch=in_ch)
    finally:
        for k, v in saved.items():
            setattr(cnv_module, k, v)
    model.eval()
    export_qonnx(model, torch.rand(1, in_ch, 32, 32), export_path=str(path), dynamo=False)
    return Path(path)
