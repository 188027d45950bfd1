"""``sbnn compile``: QONNX model -> FINN dataflow graph of SparseXnorMVAU nodes.

Every step saves its model as ``BUILD/step_XX_<name>.onnx``. The sequence:

 1. qonnx cleanup;
 2. :class:`ConvertBinaryDomainQuant` (our {alpha, beta} weight Quant -> integer Quant);
 3. FINN ConvertQONNXtoFINN; 4. input pre-processing (integer pixels, if the
    export recorded the pixel scale); 5. FINN tidy-up; 6. FINN streamlining
    (step_streamline's sequence without FINN's own XNOR conversion) + TopK;
 7. supported-layer check; 8. :class:`InferSparseXnorMVAU`;
 9. to-HW (FINN Thresholding / LabelSelect / MVAU for the rest);
10. dataflow partition (the parent model is saved too); 11. SpecializeLayers;
12. folding (JSON file or target fps); 13. FINN bit-width minimization;
14. InsertDWC + InsertFIFO (+ SpecializeLayers); then the per-layer table and
    ``compile_report.json`` (written last: its presence marks a complete build).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from sbnn.errors import UserError

DEFAULT_FPGA_PART = "xc7z020clg400-1"
REPORT = "compile_report.json"
# Op types allowed in a streamlined graph (before our conversion): everything else is unsupported.
STREAMLINED_OK = {"MatMul", "MultiThreshold", "Mul", "Add", "TopK", "Flatten", "Reshape", "Transpose", "Identity"}
# Non-HW nodes allowed outside the dataflow partition (at the start / end of the graph).
HOST_OK = {"Flatten", "Reshape", "Mul", "Add", "TopK", "Transpose", "Identity"}


def ensure_finn_env(build_dir: Path) -> None:
    if not os.environ.get("FINN_BUILD_DIR"):
        d = Path(build_dir) / "finn_tmp"
        d.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(d)


class Steps:
    """Saves each intermediate model as step_XX_name.onnx and records timings."""

    def __init__(self, build_dir: Path):
        self.dir = Path(build_dir)
        self.n = 0
        self.log: list[dict] = []
        self.t0 = time.perf_counter()

    def save(self, model, name: str):
        self.n += 1
        path = self.dir / f"step_{self.n:02d}_{name}.onnx"
        model.save(str(path))
        now = time.perf_counter()
        self.log.append({"step": self.n, "name": name, "file": path.name, "t_s": round(now - self.t0, 3)})
        return model


def _tidy(model):
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueNodeNames,
                                              RemoveStaticGraphInputs)
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    model = model.transform(InferShapes())
    model = model.transform(FoldConstants())
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(InferDataTypes())
    return model.transform(RemoveStaticGraphInputs())


def _add_pixel_preprocessing(model):
    """Integer pixels in: prepend Mul(1/max_value) and mark the input UINTn (FINN's end2end ToTensor step)."""
    from onnx import helper
    from qonnx.core.datatype import DataType

    mv = model.get_metadata_prop("sbnn.input_max_value")
    if not mv:
        return model, None
    max_value = int(float(mv))
    iname = model.graph.input[0].name
    new_in = model.make_new_valueinfo_name()
    scale = model.make_new_valueinfo_name()
    model.set_initializer(scale, np.array(1.0 / max_value, dtype=np.float32))
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name == iname:
                n.input[i] = new_in
    model.graph.node.insert(0, helper.make_node("Mul", [iname, scale], [new_in], name="pixel_scale"))
    model.set_tensor_shape(new_in, model.get_tensor_shape(iname))
    model.set_tensor_datatype(iname, DataType[f"UINT{max(1, max_value.bit_length())}"])
    return model, max_value


def _streamline(model):
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.insert_topk import InsertTopK

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    # FINN's step_streamline runs ConvertBipolarMatMulToXnorPopcount here; InferSparseXnorMVAU replaces it.
    model = model.transform(Streamline())
    model = model.transform(InsertTopK(k=1))
    model = model.transform(absorb.AbsorbScalarMulAddIntoTopK())
    model = model.transform(InferDataLayouts())
    return model.transform(RemoveUnusedTensors())


def check_supported(model) -> None:
    """One line naming the first node FINN + sbnn cannot map."""
    for n in model.graph.node:
        if n.op_type not in STREAMLINED_OK:
            raise UserError(f"unsupported layer: node '{n.name}' of op type {n.op_type} is left after streamlining; "
                            "sbnn compiles binary FC layers, sign activations, batch norm and scalar scaling")


def _to_hw(model):
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    model = model.transform(InferThresholdingLayer())
    topk = model.get_nodes_by_op_type("TopK")
    if topk:
        prod = model.find_producer(topk[0].input[0])
        if prod is not None and prod.op_type == "SparseXnorMVAU":
            model = model.transform(InferLabelSelectLayer())
    model = model.transform(InferShapes())
    return model.transform(InferDataTypes())


def _is_hw(node) -> bool:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    return is_fpgadataflow_node(node)


def check_partitionable(model) -> None:
    """Non-HW nodes may only sit before or after the HW section."""
    kinds = ["hw" if _is_hw(n) else "host" for n in model.graph.node]
    if "hw" not in kinds:
        raise UserError("no layer could be mapped to hardware; is this a binary network exported by `sbnn export`?")
    first, last = kinds.index("hw"), len(kinds) - 1 - kinds[::-1].index("hw")
    for n, kind in zip(model.graph.node[first:last + 1], kinds[first:last + 1]):
        if kind == "host":
            raise UserError(f"unsupported layer: node '{n.name}' of op type {n.op_type} sits between hardware layers "
                            "and has no hardware implementation")
    for n, kind in zip(model.graph.node, kinds):
        if kind == "host" and n.op_type not in HOST_OK:
            raise UserError(f"unsupported layer: node '{n.name}' of op type {n.op_type} has no hardware or host "
                            "implementation in sbnn")


def _minimize_bit_width(model):
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.transformation.infer_datatypes import InferDataTypes

    # FINN builder's _minimize_bit_width sequence (weights, accumulators, thresholds, weights again)
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(MinimizeAccumulatorWidth())
    model = model.transform(InferDataTypes())
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(InferDataTypes())
    model = model.transform(MinimizeWeightBitWidth())
    return model.transform(InferDataTypes())


def compile_model(model_path: str | Path, build_dir: str | Path, *, folding: str | Path | None = None,
                  target_fps: float | None = None, fclk_mhz: float = 100.0, weight_mode: str = "baked",
                  fpga_part: str = DEFAULT_FPGA_PART, quiet: bool = False) -> dict:
    """Run the whole compile; returns the report (also written to BUILD/compile_report.json)."""
    model_path, build_dir = Path(model_path), Path(build_dir)
    if not model_path.is_file():
        raise UserError(f"model {model_path} not found; create it with `sbnn export CHECKPOINT --out {model_path}`")
    if weight_mode not in ("baked", "memory"):
        raise UserError(f"--weight-mode must be baked or memory, got '{weight_mode}'")
    if folding is not None and target_fps is not None:
        raise UserError("pass either --folding FILE or --target-fps, not both")
    if target_fps is not None and (target_fps <= 0 or fclk_mhz <= 0):
        raise UserError(f"--target-fps and --fclk-mhz must be positive, got {target_fps} and {fclk_mhz}")
    folding_cfg = load_folding(folding) if folding is not None else None
    src = Path(__file__).resolve().parents[1]
    if build_dir.resolve().is_relative_to(src) and not build_dir.resolve().is_relative_to(src / "build") \
            and not build_dir.resolve().is_relative_to(src / "runs"):
        raise UserError(f"--build-dir {build_dir} is inside the source tree; use a directory under build/ or runs/ "
                        "or outside the repository")
    if build_dir.exists():
        if any(build_dir.glob("step_*.onnx")) or (build_dir / REPORT).exists():
            shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    ensure_finn_env(build_dir)
    t_start = time.perf_counter()

    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    import sbnn.export.sparse_xnor_mvau  # noqa: F401  (registers the custom op)
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    from .passes import ConvertBinaryDomainQuant, InferSparseXnorMVAU

    try:
        model = ModelWrapper(str(model_path))
    except (onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as exc:  # noqa: BLE001
        raise UserError(f"{model_path} is not a readable ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    steps = Steps(build_dir)
    model = steps.save(cleanup_model(model), "qonnx_cleanup")
    model = steps.save(model.transform(ConvertBinaryDomainQuant()), "binary_domain_quant")
    model = steps.save(model.transform(ConvertQONNXtoFINN()), "qonnx_to_finn")
    model, max_value = _add_pixel_preprocessing(model)
    model = steps.save(_tidy(model), "tidy_up")
    model = steps.save(_streamline(model), "streamline")
    check_supported(model)
    model = steps.save(model.transform(InferSparseXnorMVAU(weight_mode)), "sparse_xnor_mvau")
    model = steps.save(_to_hw(model), "convert_to_hw")
    check_partitionable(model)
    model = _tidy_names(model)

    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp

    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(build_dir / "partitions")))
    steps.save(parent, "dataflow_parent")
    sdp = parent.get_nodes_by_op_type("StreamingDataflowPartition")[0]
    model = ModelWrapper(getCustomOp(sdp).get_nodeattr("model"))
    model = steps.save(model, "dataflow_partition")
    model = steps.save(model.transform(SpecializeLayers(fpga_part)), "specialize_layers")

    from .folding import SetSparseFolding, apply_folding, fps_to_cycles

    target_cycles = None
    if folding_cfg is not None:
        model = apply_folding(model, folding_cfg, weight_mode_default=weight_mode)
    elif target_fps is not None:
        target_cycles = fps_to_cycles(target_fps, fclk_mhz)
        model = model.transform(SetSparseFolding(target_cycles))
    model = steps.save(model, "folding")
    model = steps.save(_minimize_bit_width(model), "minimize_bit_width")

    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO

    model = model.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(fpga_part))
    model = _tidy_names(model)
    model = steps.save(model, "dwc_fifo")
    final = build_dir / "hw_graph.onnx"
    model.save(str(final))
    # the parent model now points at the final child graph
    getCustomOp(sdp).set_nodeattr("model", str(final.resolve()))
    parent.save(str(build_dir / "parent.onnx"))

    from .report import layer_table, format_table

    rows = layer_table(model)
    report = {
        "model": str(model_path), "build_dir": str(build_dir), "hw_graph": final.name, "parent_graph": "parent.onnx",
        "fpga_part": fpga_part, "weight_mode": weight_mode, "input_max_value": max_value,
        "folding": str(folding) if folding else None, "target_fps": target_fps, "fclk_mhz": fclk_mhz,
        "target_cycles_per_frame": target_cycles, "layers": rows,
        "max_cycles_per_frame": max((r["cycles"] for r in rows), default=0),
        "steps": steps.log, "compile_wall_s": round(time.perf_counter() - t_start, 3),
    }
    report["est_fps"] = fclk_mhz * 1e6 / report["max_cycles_per_frame"] if report["max_cycles_per_frame"] else None
    report["table"] = format_table(rows)
    tmp = build_dir / (REPORT + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, build_dir / REPORT)
    return report


def _tidy_names(model):
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(InferShapes())
    return model.transform(InferDataTypes())


def load_folding(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"folding file {p} not found; write a JSON object {{node name: {{\"PE\": .., \"SIMD\": ..}}}}")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"folding file {p} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"folding file {p} must hold a JSON object mapping node names to settings")
    return cfg
