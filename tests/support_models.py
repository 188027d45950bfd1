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
