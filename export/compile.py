"""``sbnn compile``: QONNX model -> FINN dataflow graph of sbnn's hardware kernels.

The compile is a list of named steps (FINN's builder is the model): ``STEPS``
maps a name to a function ``step(model, ctx) -> model``; ``ctx.cfg`` is the
run's one :class:`sbnn.flow.config.CompileConfig`. :data:`DEFAULT_STEPS` is the
sequence; every step saves its result as ``BUILD/step_XX_<name>.onnx``:

 1. ``qonnx_cleanup``; 2. ``binary_domain_quant`` (our {alpha, beta} weight Quant ->
    integer Quant); 3. ``qonnx_to_finn`` (FINN ConvertQONNXtoFINN);
 4. ``tidy_up`` (integer pixel input, if the export recorded the pixel scale; FINN tidy-up);
 5. ``streamline`` (step_streamline's sequence without FINN's own XNOR conversion, + TopK;
    then the supported-layer check);
 6. ``infer_kernels`` (the kernels' rewrites, :func:`sbnn.hls.ops.infer_transforms`);
 7. ``convert_to_hw`` (FINN Thresholding / LabelSelect for the rest; partitionability check);
 8. ``dataflow_parent`` and 9. ``dataflow_partition`` (FINN CreateDataflowPartition);
10. ``specialize_layers``; 11. ``folding`` (JSON file or target fps);
12. ``minimize_bit_width``; 13. ``dwc_fifo`` (InsertDWC + InsertFIFO: FINN's default of no depth-2 FIFOs in MLPs,
    FIFOs of 128 in conv nets; + SpecializeLayers).

Then ``hw_graph.onnx``, ``parent.onnx`` and ``compile_report.json`` (written last:
its presence marks a complete compile). The report stores absolute paths and the
model's data set, read from the QONNX metadata that ``sbnn export`` writes
(``sbnn.dataset``; None for a model from elsewhere).

The build directory is sbnn's own (:mod:`sbnn.workdir`): a new or empty one is
claimed, one written by an earlier compile loses only what that compile listed,
anything else is refused; one compile at a time holds its lock.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import finn.transformation.streamline.absorb as absorb
import numpy as np
from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
from finn.transformation.streamline import Streamline
from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveScalarLinearPastInvariants
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from finn.util.fpgadataflow import is_fpgadataflow_node
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueNodeNames, RemoveStaticGraphInputs,
                                          RemoveUnusedTensors)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.insert_topk import InsertTopK
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
from qonnx.util.cleanup import cleanup_model

from sbnn import workdir
from sbnn.artifacts import write_text_atomic
from sbnn.errors import UserError
from sbnn.finn_env import ensure_finn_env
from sbnn.flow.config import CompileConfig, load_folding
from sbnn.hls import ops
from sbnn.hls.kernel import AUTO_WEIGHT_MODE, WEIGHT_MODES, FoldingPolicy
from sbnn.hls.resources import part_limits
from sbnn.hls.timing import budget

from .fastest_fit import FoldFastestFitting, input_stream, target_reach, target_warning, throughput_bound
from .folding import SetSparseFolding, apply_folding, fps_to_cycles
from .notice import warn
from .passes import (AbsorbTransposeFlattenIntoMatMul, ConvertBinaryDomainQuant, DeepenFifosInWindowedPipelines,
                     MoveTransposeBeforeMultiThreshold, has_sliding_window)
from .qonnx_input import META_DATASET, META_INPUT_MAX   # QONNX metadata written by `sbnn export`
from .report import format_table, layer_table
from .timing_refold import yosys_depth

REPORT = "compile_report.json"
HW_GRAPH = "hw_graph.onnx"
PARENT = "parent.onnx"
KIND = "compile"                         # the workdir kind of a compile's build directory
# Op types allowed in a streamlined graph (before our conversion): everything else is unsupported.
STREAMLINED_OK = {"MatMul", "MultiThreshold", "Mul", "Add", "TopK", "Flatten", "Reshape", "Transpose", "Identity",
                  "Im2Col", "MaxPoolNHWC"}
# Non-HW nodes allowed outside the dataflow partition (at the start / end of the graph).
HOST_OK = {"Flatten", "Reshape", "Mul", "Add", "TopK", "Transpose", "Identity"}

@dataclass
class StepContext:
    """What a step gets besides the model: the config, the build directory, and what earlier steps found."""

    cfg: CompileConfig
    build_dir: Path
    input_max_value: int | None = None   # pixel scale of the integer input (tidy_up)
    parent: ModelWrapper | None = None   # the graph around the dataflow partition (dataflow_parent)
    target_cycles: int | None = None     # cycles per frame that the folding aimed at (--target-fps, or found)
    folding_how: str = "fastest"         # "folding file", "target" or "fastest" (throughput-first search)
    fastest_fit: dict | None = None      # the search's decision (export/fastest_fit.py)
    input_stream: dict | None = None     # the board's input-stream floor (--target-fps; fastest_fit.input_stream)
    depth_cache: Path | None = None      # Yosys cache: refold layers over the clock's depth budget (timing_refold)
    extra: dict = field(default_factory=dict)


STEPS: dict = {}


def step(name: str):
    """Register ``fn(model, ctx) -> model`` as the compile step ``name``."""
    def deco(fn):
        STEPS[name] = fn
        return fn
    return deco


# ---- graph helpers -------------------------------------------------------------------
def _tidy(model):
    model = model.transform(InferShapes())
    model = model.transform(FoldConstants())
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(InferDataTypes())
    return model.transform(RemoveStaticGraphInputs())


def _tidy_names(model):
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(InferShapes())
    return model.transform(InferDataTypes())


def _add_pixel_preprocessing(model, max_value: int | None = None):
    """Integer pixels in: prepend Mul(1/max_value) and mark the input UINTn (FINN's end2end ToTensor step).

    ``max_value`` (``--input-max-value``) overrides what ``sbnn export`` recorded in the model."""
    mv = max_value or model.get_metadata_prop(META_INPUT_MAX)
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


def check_supported(model) -> None:
    """One line naming the first node FINN + sbnn cannot map."""
    for n in model.graph.node:
        if n.op_type not in STREAMLINED_OK:
            raise UserError(f"unsupported layer: node '{n.name}' of op type {n.op_type} is left after streamlining; "
                            "sbnn compiles binary FC and conv layers, sign activations, max-pools, batch norm and "
                            "scalar scaling")


def check_partitionable(model) -> None:
    """Non-HW nodes may only sit before or after the HW section."""
    kinds = ["hw" if is_fpgadataflow_node(n) else "host" for n in model.graph.node]
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


# ---- the steps -----------------------------------------------------------------------
@step("qonnx_cleanup")
def step_qonnx_cleanup(model, ctx):
    return cleanup_model(model)


@step("binary_domain_quant")
def step_binary_domain_quant(model, ctx):
    return model.transform(ConvertBinaryDomainQuant())


@step("qonnx_to_finn")
def step_qonnx_to_finn(model, ctx):
    return model.transform(ConvertQONNXtoFINN())


@step("tidy_up")
def step_tidy_up(model, ctx):
    model, ctx.input_max_value = _add_pixel_preprocessing(model, ctx.cfg.input_max_value)
    return _tidy(model)


@step("streamline")
def step_streamline(model, ctx):
    """FINN's streamlining for FC and conv nets (its end-to-end CNV recipe), minus its own XNOR conversion:
    our kernels' rewrites replace ConvertBipolarMatMulToXnorPopcount."""
    model = model.transform(MoveScalarLinearPastInvariants())
    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    model = model.transform(LowerConvsToMatMul())
    model = model.transform(MakeMaxPoolNHWC())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(MakeMaxPoolNHWC())
    model = model.transform(Streamline())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(MoveTransposeBeforeMultiThreshold())        # NHWC pixels into the hardware
    model = model.transform(AbsorbTransposeFlattenIntoMatMul())         # conv part -> FC part
    model = model.transform(InsertTopK(k=1))
    model = model.transform(absorb.AbsorbScalarMulAddIntoTopK())
    model = model.transform(InferDataLayouts())
    model = model.transform(RemoveUnusedTensors())
    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    check_supported(model)
    return model


@step("infer_kernels")
def step_infer_kernels(model, ctx):
    # under --weight-mode auto the folding step picks each layer's mode; until then layers are baked
    mode = ctx.cfg.weight_mode if ctx.cfg.weight_mode in WEIGHT_MODES else WEIGHT_MODES[0]
    for t in ops.infer_transforms(mode):
        model = model.transform(t)
    return model


@step("convert_to_hw")
def step_convert_to_hw(model, ctx):
    model = model.transform(InferThresholdingLayer())
    model = model.transform(InferConvInpGen())
    model = model.transform(RemoveCNVtoFCFlatten())
    topk = model.get_nodes_by_op_type("TopK")
    if topk:
        prod = model.find_producer(topk[0].input[0])
        if prod is not None and ops.is_sbnn_kernel_node(prod):
            model = model.transform(InferLabelSelectLayer())
    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    check_partitionable(model)
    return model


@step("dataflow_parent")
def step_dataflow_parent(model, ctx):
    model = _tidy_names(model)
    ctx.parent = model.transform(CreateDataflowPartition(partition_model_dir=str(ctx.build_dir / "partitions")))
    return ctx.parent


def _sdp(parent):
    return parent.get_nodes_by_op_type("StreamingDataflowPartition")[0]


@step("dataflow_partition")
def step_dataflow_partition(model, ctx):
    return ModelWrapper(getCustomOp(_sdp(ctx.parent)).get_nodeattr("model"))


@step("specialize_layers")
def step_specialize_layers(model, ctx):
    return model.transform(SpecializeLayers(ctx.cfg.fpga_part))


@step("folding")
def step_folding(model, ctx):
    cfg = ctx.cfg
    board = part_limits(cfg.fpga_part)
    modes = WEIGHT_MODES if cfg.weight_mode == AUTO_WEIGHT_MODE else (cfg.weight_mode,)
    policy = FoldingPolicy(modes=modes, lut_per_bram18=board.lut / (2 * board.bram36))
    if cfg.folding_config_file is not None:
        ctx.folding_how = "folding file"
        return apply_folding(model, load_folding(cfg.folding_config_file), weight_mode_default=cfg.weight_mode)
    if cfg.target_fps is not None:
        ctx.folding_how = "target"
        ctx.target_cycles = fps_to_cycles(cfg.target_fps, cfg.fclk_mhz)
        ctx.input_stream = input_stream(model, board)   # the board's DMA bounds the rate too
        return model.transform(SetSparseFolding(ctx.target_cycles, policy=policy))
    depth_of = None if ctx.depth_cache is None else yosys_depth(ctx.depth_cache, board.family)
    search = FoldFastestFitting(board, cfg.fpga_part, policy, depth_of, budget(cfg.fclk_mhz)["levels"])
    model = model.transform(search)
    ctx.fastest_fit, ctx.target_cycles = search.decision, search.decision["target_cycles"]
    return model


@step("minimize_bit_width")
def step_minimize_bit_width(model, ctx):
    # FINN builder's _minimize_bit_width sequence (weights, accumulators, thresholds, weights again), with the
    # thresholds rounded and clipped first too: an input quantizer whose learned scale grew has thresholds
    # outside the pixels' 0..255 (and fractional), which MinimizeWeightBitWidth's Thresholding refuses
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(MinimizeAccumulatorWidth())
    model = model.transform(InferDataTypes())
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(InferDataTypes())
    model = model.transform(MinimizeWeightBitWidth())
    return model.transform(InferDataTypes())


@step("dwc_fifo")
def step_dwc_fifo(model, ctx):
    model = model.transform(InsertDWC())
    # FINN's default: no depth-2 FIFOs between layers that stream evenly (every sbnn kernel registers its
    # stream interfaces); a sliding window's bursts need FIFOs, deepened next
    model = model.transform(InsertFIFO(create_shallow_fifos=has_sliding_window(model)))
    model = model.transform(DeepenFifosInWindowedPipelines())
    model = model.transform(SpecializeLayers(ctx.cfg.fpga_part))
    return _tidy_names(model)


DEFAULT_STEPS = ("qonnx_cleanup", "binary_domain_quant", "qonnx_to_finn", "tidy_up", "streamline", "infer_kernels",
                 "convert_to_hw", "dataflow_parent", "dataflow_partition", "specialize_layers", "folding",
                 "minimize_bit_width", "dwc_fifo")


def step_file(i: int, name: str) -> str:
    return f"step_{i:02d}_{name}.onnx"


def _artifacts(steps) -> list[str]:
    """Every top-level name a compile may write (listed in the ownership marker before it is written)."""
    names = [step_file(i, s) for i, s in enumerate(steps, 1)]
    names += ["partitions", HW_GRAPH, PARENT, REPORT, REPORT + ".tmp"]
    if not os.environ.get("FINN_BUILD_DIR"):
        names.append("finn_tmp")   # ensure_finn_env puts FINN's scratch folder here
    return names


def check_build_dir(build_dir: Path) -> None:
    """Refuse a build directory inside the source tree (outside build/ and runs/): a compile there would mix
    generated files with the sources."""
    src = Path(__file__).resolve().parents[1]
    b = build_dir.resolve()
    if b.is_relative_to(src) and not b.is_relative_to(src / "build") and not b.is_relative_to(src / "runs"):
        raise UserError(f"--build-dir {build_dir} is inside the source tree; use a directory under build/ or runs/ "
                        "or outside the repository")


def _load_model(model_path: Path) -> ModelWrapper:
    if not model_path.is_file():
        raise UserError(f"model {model_path} not found; create it with `sbnn export CHECKPOINT --out {model_path}`")
    try:
        return ModelWrapper(str(model_path))
    except Exception as exc:  # noqa: BLE001  (onnx raises several types for a file that is not a model)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{model_path} is not a readable ONNX model ({first})") from None


def compile_model(model_path: str | Path, build_dir: str | Path, cfg: CompileConfig | None = None, *,
                  steps=DEFAULT_STEPS, quiet: bool = True, depth_cache: str | Path | None = None, **options) -> dict:
    """Run the compile's steps on ``model_path`` into ``build_dir``; returns the report (also in
    ``BUILD/compile_report.json``).

    ``cfg`` is the run's :class:`CompileConfig`; without it the keyword options
    (``folding``, ``target_fps``, ``fclk_mhz``, ``weight_mode``, ``fpga_part``) make one.
    ``quiet`` is accepted for older callers; the compile prints nothing but one warning line when
    ``--target-fps`` is out of reach (the report's ``target_fps_reach`` holds the figures).
    ``depth_cache`` (a Yosys cache folder; ``sbnn build`` passes its own): the throughput-first search also
    synthesises the folded sparse MVAUs and refolds those over the clock's logic-depth budget
    (sbnn.export.timing_refold); without it the compile runs no Yosys.
    """
    if cfg is None:
        cfg = CompileConfig.from_options(**options)
    elif options:
        raise TypeError(f"compile_model: pass either cfg or keyword options, not both ({', '.join(options)})")
    cfg = cfg.resolved()
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise UserError(f"unknown compile step '{unknown[0]}'; known steps: {', '.join(STEPS)}")
    model_path, build_dir = Path(model_path).resolve(), Path(build_dir)
    check_build_dir(build_dir)
    model = _load_model(model_path)   # a model that cannot be read removes nothing
    with workdir.locked_claim(build_dir, KIND, what="compile build directory"):
        build_dir = build_dir.resolve()
        workdir.clear(build_dir, KIND, inputs=[model_path, cfg.folding_config_file], what="compile build directory")
        with workdir.Writing(build_dir, KIND, declared=_artifacts(steps), what="compile build directory"):
            return _run_steps(model, model_path, build_dir, cfg, steps, depth_cache)


def _decision_json(decision: dict | None) -> dict | None:
    if decision is None:
        return None
    out = dict(decision)
    for key in ("cost", "blocked_cost"):
        c = out.get(key)
        out[key] = None if c is None else {"LUT": c.lut, "BRAM18": c.bram18}
    return out


def _run_steps(model, model_path: Path, build_dir: Path, cfg: CompileConfig, steps, depth_cache=None) -> dict:
    ensure_finn_env(build_dir)
    t_start = time.perf_counter()
    ctx = StepContext(cfg, build_dir, depth_cache=None if depth_cache is None else Path(depth_cache))
    dataset = model.get_metadata_prop(META_DATASET) or None
    log = []
    for i, name in enumerate(steps, 1):
        model = STEPS[name](model, ctx)
        path = build_dir / step_file(i, name)
        model.save(str(path))
        log.append({"step": i, "name": name, "file": path.name, "t_s": round(time.perf_counter() - t_start, 3)})
    final = build_dir / HW_GRAPH
    model.save(str(final))
    if ctx.parent is not None:
        # the parent model now points at the final child graph
        getCustomOp(_sdp(ctx.parent)).set_nodeattr("model", str(final))
        ctx.parent.save(str(build_dir / PARENT))

    rows = layer_table(model, cfg.fpga_part)
    max_cycles = max((r["cycles"] for r in rows), default=0)
    report = {
        "model": str(model_path), "build_dir": str(build_dir), "hw_graph": final.name,
        "parent_graph": PARENT if ctx.parent is not None else None,
        "dataset": dataset, "fpga_part": cfg.fpga_part, "weight_mode": cfg.weight_mode,
        "input_max_value": ctx.input_max_value, "folding": cfg.folding_config_file, "target_fps": cfg.target_fps,
        "fclk_mhz": cfg.fclk_mhz, "target_cycles_per_frame": ctx.target_cycles, "layers": rows,
        "max_cycles_per_frame": max_cycles, "steps": log, "compile_wall_s": round(time.perf_counter() - t_start, 3),
        "est_fps": cfg.fclk_mhz * 1e6 / max_cycles if max_cycles else None,
        "folding_how": ctx.folding_how,
        "throughput_bound": throughput_bound(rows, ctx.folding_how, ctx.fastest_fit, ctx.target_cycles,
                                             cfg.fclk_mhz) if rows else None,
        "fastest_fit": _decision_json(ctx.fastest_fit),
        "table": format_table(rows),
    }
    reach = (target_reach(cfg.target_fps, cfg.fclk_mhz, report["throughput_bound"], ctx.input_stream)
             if ctx.input_stream is not None and rows else None)
    report["target_fps_reached"] = None if reach is None else reach["reached"]   # None: no --target-fps
    report["target_fps_reach"] = reach
    write_text_atomic(build_dir / REPORT, json.dumps(report, indent=2) + "\n")
    if reach is not None and not reach["reached"]:
        warn(target_warning(reach, cfg.fclk_mhz))
    return report
