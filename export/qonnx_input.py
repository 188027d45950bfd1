"""A QONNX model the user brings (Brevitas ``export_qonnx`` of a w1a1 net, or ``sbnn export``), checked before
anything else reads it.

Reading an ONNX file parses a protobuf and runs no code. qonnx, however, finds the class of a custom op by
importing the Python module that the node's domain names, and ONNX weights may live in external files at
paths the model names. So before qonnx or FINN touch the graph, :func:`read_qonnx` checks every node's domain
and op type against what sbnn compiles (standard ONNX ops and QONNX's quantizers) and refuses external data;
each problem is one line naming the node (:class:`sbnn.errors.UserError`).

Pre-processing, FINN's way: a model that reads float pixels in [0, 1] (ToTensor) gets the scaling merged
into the graph, so the hardware takes integer pixels (``CompileConfig.input_max_value``); without a value
recorded in the model (``sbnn export`` records one) or given as an option, :data:`DEFAULT_INPUT_MAX_VALUE`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from sbnn.errors import UserError
from sbnn.training.datasets import KNOWN_DATASETS

META_DATASET = "sbnn.dataset"            # the same keys `sbnn export` writes and the compile reads
META_INPUT_MAX = "sbnn.input_max_value"
DEFAULT_INPUT_MAX_VALUE = 255            # 8-bit pixels read as pixel / 255 (FINN's ToTensor pre-processing)
QONNX_DOMAIN = "qonnx.custom_op.general"
# what Brevitas exports for FC and conv nets (PyTorch's flatten / view included) and the compile handles
ONNX_OPS = frozenset({
    "MatMul", "Gemm", "Conv", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Reshape", "Flatten", "Transpose",
    "MaxPool", "Identity", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "TopK",
})
QONNX_OPS = frozenset({"Quant", "BipolarQuant"})
DOMAIN_OPS = {"": ONNX_OPS, "ai.onnx": ONNX_OPS, QONNX_DOMAIN: QONNX_OPS, "onnx.brevitas": QONNX_OPS}
HOW_TO = "pass a QONNX model written by brevitas.export.export_qonnx or `sbnn export`"


@dataclass(frozen=True)
class QonnxInfo:
    """What the build needs to know about a user's QONNX model before compiling it."""

    path: str
    input_name: str
    input_shape: tuple[int, ...]        # batch first, as exported (batch 1)
    num_classes: int | None             # last dimension of the output (None when not static)
    dataset: str | None                 # recorded by `sbnn export` (metadata), else None
    recorded_input_max_value: int | None
    nodes: int

    @property
    def input_elements(self) -> int:
        n = 1
        for d in self.input_shape[1:]:
            n *= d
        return n


def read_qonnx(path) -> tuple[onnx.ModelProto, QonnxInfo]:
    """The model and its facts; one-line UserError when it is empty, not ONNX, or holds what sbnn refuses."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"model {p} not found; {HOW_TO}")
    if p.stat().st_size == 0:
        raise UserError(f"model {p} is an empty file; {HOW_TO}")
    model = _parse(p)
    _check_nodes(model, p)
    _check_external_data(model, p)
    info = _info(model, p)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise UserError(f"model {p} is not a valid ONNX model ({_first_line(exc)}); {HOW_TO}") from None
    return model, info


def check_qonnx(path) -> QonnxInfo:
    return read_qonnx(path)[1]


def check_metadata(path) -> None:
    """What sbnn reads from a model's metadata (data set, pixel range) makes sense; a file that is not a model
    is left to its reader's error."""
    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception:  # noqa: BLE001  (the compile names an unreadable model itself)
        return
    meta = {m.key: m.value for m in [*model.metadata_props, *model.graph.metadata_props]}
    _recorded_dataset(meta.get(META_DATASET), p)
    _recorded_max(meta.get(META_INPUT_MAX), p)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parse(p: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"model {p} is corrupt or not an ONNX file ({_first_line(exc)}); {HOW_TO}") from None
    if not model.graph.node:
        raise UserError(f"model {p} holds no graph (no nodes: corrupt, or not an ONNX model); {HOW_TO}")
    return model


def _check_nodes(model: onnx.ModelProto, p: Path) -> None:
    for node in model.graph.node:
        allowed = DOMAIN_OPS.get(node.domain)
        if allowed is None:
            raise UserError(f"unsupported layer: node '{node.name}' of op type {node.op_type} is in domain "
                            f"'{node.domain}', which sbnn does not load (only standard ONNX and {QONNX_DOMAIN}); "
                            f"{HOW_TO}")
        if node.op_type not in allowed:
            raise UserError(f"unsupported layer: node '{node.name}' of op type {node.op_type} in {p.name}; sbnn "
                            "compiles binary FC and conv layers (QONNX Quant / BipolarQuant, MatMul, Gemm, Conv), "
                            "batch norm, max-pools and scalar scaling")


def _check_external_data(model: onnx.ModelProto, p: Path) -> None:
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            raise UserError(f"model {p} keeps tensor '{t.name}' in an external file, which sbnn does not read; "
                            "save the model with its weights inside (onnx.save(..., save_as_external_data=False))")


def _static_dims(vi) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def _info(model: onnx.ModelProto, p: Path) -> QonnxInfo:
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise UserError(f"model {p} has {len(inputs)} inputs and {len(model.graph.output)} outputs; sbnn builds "
                        "models of one image input and one output")
    vi = inputs[0]
    if vi.type.tensor_type.elem_type != TensorProto.FLOAT:
        name = TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
        raise UserError(f"model input '{vi.name}' is {name}; sbnn takes QONNX models with a float32 input "
                        "(pixels in [0, 1], as Brevitas exports them)")
    dims = _static_dims(vi)
    if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
        raise UserError(f"model input '{vi.name}' has shape {dims}; export with a fixed example input shape "
                        "(batch, ...) so every dimension but the batch is a number")
    out = _static_dims(model.graph.output[0])
    meta = {m.key: m.value for m in [*model.metadata_props, *model.graph.metadata_props]}   # qonnx: the graph's
    return QonnxInfo(path=str(p.resolve()), input_name=vi.name, input_shape=(1, *dims[1:]),
                     num_classes=out[-1] if out and out[-1] else None, dataset=_recorded_dataset(meta.get(META_DATASET), p),
                     recorded_input_max_value=_recorded_max(meta.get(META_INPUT_MAX), p), nodes=len(model.graph.node))


def _recorded_dataset(value: str | None, p: Path) -> str | None:
    """The data set the model records, a name sbnn knows (a long or odd value is not echoed in full)."""
    if not value:
        return None
    if value.strip().lower().replace("_", "-") not in (*KNOWN_DATASETS, "fashionmnist", "mnist5k", "cifar-10",
                                                        "cifar-100"):
        shown = value if len(value) <= 40 else f"{value[:40]}... ({len(value):,} characters)"
        raise UserError(f"model {p} records {META_DATASET}={shown!r}, not a data set sbnn knows "
                        f"({', '.join(KNOWN_DATASETS)}); fix or remove that metadata entry")
    return value


def _recorded_max(value: str | None, p: Path) -> int | None:
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        raise UserError(f"model {p} records {META_INPUT_MAX}={value!r}, not a number; fix or remove that "
                        "metadata entry") from None


def input_max_value(info: QonnxInfo, option: int | None) -> tuple[int, str]:
    """The pixel value read as 1.0 and where it comes from: the option, the model's record, or the default."""
    if option is not None:
        return option, "--input-max-value"
    if info.recorded_input_max_value:
        return info.recorded_input_max_value, "recorded in the model by `sbnn export`"
    return DEFAULT_INPUT_MAX_VALUE, "the default for a float-input QONNX model: 8-bit pixels"


def copy_qonnx(src, dst) -> dict:
    """Validate ``src`` and write it to ``dst`` (atomically); returns the export stage's report."""
    model, info = read_qonnx(src)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp.onnx")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)   # left only by a failed or interrupted save
    return {"source": info.path, "source_sha": hashlib.sha256(Path(src).read_bytes()).hexdigest()[:16],
            "model": str(dst), "format": "qonnx", "input_shape": list(info.input_shape),
            "num_classes": info.num_classes, "dataset": info.dataset,
            "recorded_input_max_value": info.recorded_input_max_value, "nodes": info.nodes}
