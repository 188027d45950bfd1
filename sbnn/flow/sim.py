"""``sbnn sim``: stitch a compiled partition into its own folder, rtlsim it in Verilator, compare with FINN.

Input: a build directory of ``sbnn compile`` (``compile_report.json``,
``parent.onnx``, ``hw_graph.onnx``) or a bare ``hw_graph.onnx``.

* Stimulus (:func:`reference`): the user's images (``--images X.npy``, labels
  from ``--labels y.npy``, :mod:`sbnn.flow.user_data`), or the first N test
  images of a data set (``--dataset NAME``, else the one the compile report
  names: ``sbnn export`` records it in the QONNX metadata, the compile copies
  it), turned into the parent graph's input as ``sbnn verify`` does and run
  through the host-side nodes before the partition; otherwise (``--data
  random``, or a model from elsewhere with no data named) random values of the
  partition's input datatype (:func:`random_inputs`).
* Reference: FINN's Python execution of the HW graph (:mod:`sbnn.export.verify`:
  FINN's specialized layers run as their generic layer, our kernels as their
  bit-true reference).
* RTL: :func:`sbnn.hls.stitch.stitch` into the stitch folder (``<build>/stitched``
  by default; sbnn owns it, see :mod:`sbnn.workdir`), then :func:`simulate`.

:func:`simulate` is the part without stitching: "this design against this
reference"; the rtlsim stage of ``sbnn build`` calls it on the stitch stage's
design. Reported: mismatching frames/values, latency (first input beat ->
first output beat), steady-state cycles per frame against the graph's
bottleneck estimate, simulation speed, the Verilator build time; all also in a
JSON file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from finn.core.onnx_exec import execute_onnx
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from sbnn import workdir
from sbnn.artifacts import check_onnx_artifact, check_output_dir, check_output_file, read_json_object
from sbnn.errors import UserError
from sbnn.export.compile import PARENT
from sbnn.export.compile import REPORT as COMPILE_REPORT
from sbnn.export.verify import HWGraphRunner, pixels_for_hw, python_exec_view, set_batch
from sbnn.hls.stitch import StitchedDesign, stitch
from sbnn.hls.stitched_rtlsim import simulate_stitched
from sbnn.hls.verilator import RtlsimTimeout, VerilatorNotFoundError
from sbnn.flow.user_data import as_model_input, check_data_options, check_dataset_frames, load_frames
from sbnn.training.datasets import load_dataset

REPORT = "sim_report.json"
STITCH_KIND = "stitch"                      # the workdir kind of a folder holding a stitched design
STITCH_ARTIFACTS = ("rtl", "stitch.json")   # what stitch() writes (finn_tmp too when FINN_BUILD_DIR is unset)


@dataclass
class Stimulus:
    """Partition inputs, the expected partition outputs and (for test images) the labels."""

    x: np.ndarray               # (N, input elements), values of the partition's input datatype
    expected: np.ndarray        # (N, output elements)
    labels: np.ndarray | None
    data: str                   # "test" (a data set's test images), "files" (--images) or "random"
    seconds: float = 0.0        # time spent on the reference


def resolve_target(target: str | Path) -> tuple[Path, Path | None]:
    """(hw_graph.onnx, compile build dir or None) of what ``sbnn sim`` was given; paths absolute."""
    p = Path(target)
    if p.is_dir():
        g = p / "hw_graph.onnx"
        if not g.is_file():
            raise UserError(f"{p} holds no hw_graph.onnx; pass a build directory of `sbnn compile` or a HW graph .onnx")
        return g.resolve(), p.resolve() if _is_compile_dir(p) else None
    if not p.is_file():
        raise UserError(f"{p} not found; pass a build directory of `sbnn compile` or its hw_graph.onnx")
    if p.suffix != ".onnx":
        raise UserError(f"{p} is not an .onnx file; pass a build directory of `sbnn compile` or its hw_graph.onnx")
    b = p.parent
    return p.resolve(), b.resolve() if _is_compile_dir(b) and p.name == "hw_graph.onnx" else None


def _is_compile_dir(p: Path) -> bool:
    return (p / COMPILE_REPORT).is_file() and (p / "parent.onnx").is_file()


def compile_report(compile_dir: str | Path) -> dict:
    return read_json_object(Path(compile_dir) / COMPILE_REPORT, "compile report", _RECOMPILE)


# what to do about a damaged file of a compile directory
_RECOMPILE = "run `sbnn compile` into that directory again (or, in a build, rerun with --start-step compile)"


def check_compile_files(hw_graph: Path, compile_dir: Path | None) -> None:
    """The compile's files that sim reads parse (a truncated one stops here, naming it, before stitching)."""
    check_onnx_artifact(hw_graph, "HW graph", _RECOMPILE)
    if compile_dir is not None:
        compile_report(compile_dir)
        check_onnx_artifact(compile_dir / PARENT, "parent graph", _RECOMPILE)


def dataset_of(compile_dir: str | Path) -> str | None:
    """The data set the compiled model was trained on, as recorded by export and compile (never guessed)."""
    return compile_report(compile_dir).get("dataset")


def model_input_shape(compile_dir: str | Path) -> list[int]:
    """The compiled model's graph input shape (batch first): what the host feeds parent.onnx."""
    parent = ModelWrapper(str(Path(compile_dir) / PARENT))
    return parent.get_tensor_shape(parent.graph.input[0].name)


def dataset_frames(compile_dir: str | Path, frames: int, data_dir: str | None = None, *, at_most: bool = False,
                   dataset: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``frames`` test images of ``dataset`` (default: the one the compile records) as the model's
    float input, and their labels (``at_most``: fewer when the test set is smaller, instead of an error)."""
    name = dataset or dataset_of(compile_dir)
    if name is None:
        raise UserError(f"the compile in {compile_dir} records no data set (the model was not exported by "
                        "`sbnn export`); name one with --dataset, pass --images, or use --data random")
    _, test_set, _ = load_dataset(name, data_dir)
    x, y = test_set.tensors
    x, y = x.numpy()[:frames], y.numpy()[:frames]
    if x.shape[0] < frames and not at_most:
        raise UserError(f"--frames {frames} exceeds the {x.shape[0]} test images of {name}")
    return as_model_input(x, model_input_shape(compile_dir), f"data set {name}"), y


def file_frames(compile_dir: str | Path, frames: int, images: str, labels: str | None = None, *,
                at_most: bool = False, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The first ``frames`` of the user's images as the model's float input (pixel / input_max_value when the
    compile merged the pixel scaling), and the user's labels (None without a labels file)."""
    max_value = compile_report(compile_dir).get("input_max_value")
    x, y = load_frames(images, labels, frames, model_input_shape(compile_dir), max_value, num_classes,
                       at_most=at_most)
    return (x / np.float32(max_value) if max_value else x), y


def verification_frames(source: str, compile_dir: str | Path, frames: int, *, data_dir: str | None = None,
                        dataset: str | None = None, images: str | None = None, labels: str | None = None,
                        num_classes: int | None = None, at_most: bool = False):
    """(model inputs, labels or None) of a "test" or "files" source (:func:`data_source`)."""
    if source == "files":
        return file_frames(compile_dir, frames, images, labels, at_most=at_most, num_classes=num_classes)
    return dataset_frames(compile_dir, frames, data_dir, at_most=at_most, dataset=dataset)


def frames_stimulus(compile_dir: str | Path, x: np.ndarray, labels: np.ndarray | None, data: str) -> Stimulus:
    """Model inputs ``x`` through the host nodes into partition inputs, with FINN's partition outputs."""
    t0 = time.perf_counter()
    runner = HWGraphRunner(compile_dir, batch=500)
    ins, outs = runner.partition_io(pixels_for_hw(x, compile_report(compile_dir).get("input_max_value")))
    return Stimulus(ins, outs, labels, data, time.perf_counter() - t0)


def dataset_stimulus(compile_dir: str | Path, frames: int, data_dir: str | None = None, *,
                     at_most: bool = False, dataset: str | None = None) -> Stimulus:
    """The first ``frames`` test images of a data set, as partition inputs, with FINN's outputs and the labels."""
    return frames_stimulus(compile_dir, *dataset_frames(compile_dir, frames, data_dir, at_most=at_most,
                                                        dataset=dataset), "test")


FLOAT_MARGIN = 0.1   # random float inputs reach this share of the levels' span beyond the lowest and highest


def float_input_range(model: ModelWrapper) -> tuple[float, float]:
    """Where random float inputs are drawn: the span of the first float parameters the input meets (the input
    quantizer's thresholds, past parameter-free FIFOs and width converters) widened by :data:`FLOAT_MARGIN`
    on each side, so every output level occurs; [0, 1) (pixels read as pixel / 255) when there are none."""
    node = model.find_consumer(model.graph.input[0].name)
    while node is not None:
        params = [model.get_initializer(i) for i in node.input[1:]]
        params = [p for p in params if p is not None and p.size and np.issubdtype(p.dtype, np.floating)]
        if params:
            lo, hi = min(float(p.min()) for p in params), max(float(p.max()) for p in params)
            margin = FLOAT_MARGIN * (hi - lo) if hi > lo else 1.0
            return lo - margin, hi + margin
        node = model.find_consumer(node.output[0]) if node.output else None
    return 0.0, 1.0


def random_inputs(dt: DataType, shape: tuple, rng: np.random.Generator,
                  float_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Uniformly random values of ``dt``: -1/+1 for BIPOLAR, every integer of an integer type, floats in
    ``float_range`` for FLOAT32."""
    if dt == DataType["BIPOLAR"]:
        return rng.choice(np.array([-1, 1]), size=shape)
    if dt.is_integer():
        return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)
    if dt == DataType["FLOAT32"]:
        return rng.uniform(*float_range, size=shape).astype(np.float32)
    raise UserError(f"random inputs of datatype {dt.name} are not supported; pass --images of the hardware's "
                    "input values, or compile with --input-max-value for integer pixels")


def random_stimulus(hw_graph: str | Path, design: StitchedDesign, frames: int, seed: int) -> Stimulus:
    """Random values of the input datatype and FINN's Python execution of the HW graph."""
    t0 = time.perf_counter()
    dt = DataType[design.in_dtype]
    model = ModelWrapper(str(hw_graph))
    shape = (frames, *design.in_shape[1:])
    x = random_inputs(dt, shape, np.random.default_rng(seed), float_input_range(model))
    m = set_batch(python_exec_view(model), frames)
    y = execute_onnx(m, {m.graph.input[0].name: x.astype(np.float32)})[m.graph.output[0].name]
    return Stimulus(x.reshape(frames, -1), np.asarray(y).reshape(frames, -1), None, "random",
                    time.perf_counter() - t0)


def check_options(frames: int, backpressure: float = 0.0, gaps: float = 0.0, max_cycles: int | None = None,
                  data: str = "auto") -> None:
    if frames < 1:
        raise UserError(f"--frames must be >= 1, got {frames}")
    for nm, v in (("--backpressure", backpressure), ("--gaps", gaps)):
        if not 0.0 <= v < 1.0:
            raise UserError(f"{nm} is a probability per cycle in [0, 1), got {v}")
    if max_cycles is not None and max_cycles < 1:
        raise UserError(f"--max-cycles must be positive, got {max_cycles}")
    if data not in ("auto", "test", "random"):
        raise UserError(f"--data must be auto, test or random, got '{data}'")


def data_source(data: str, compile_dir: Path | None, dataset: str | None = None, images: str | None = None) -> str:
    """Which stimulus ``--data`` with ``--dataset`` / ``--images`` asks for: "files", "test" or "random"."""
    if images is not None and dataset is not None:
        raise UserError("pass either --images or --dataset as verification data, not both")
    if data == "random" and (images is not None or dataset is not None):
        raise UserError("--data random takes no --images or --dataset; drop one or the other")
    if (data == "test" or images is not None or dataset is not None) and compile_dir is None:
        raise UserError("test images (--data test, --dataset, --images) need a build directory of `sbnn compile` "
                        "(parent.onnx, compile_report.json)")
    if images is not None:
        return "files"
    if data == "auto":
        return "test" if dataset is not None or (compile_dir is not None and dataset_of(compile_dir)) else "random"
    return data


def reference(hw_graph: Path, compile_dir: Path | None, design: StitchedDesign, frames: int, *, data: str = "auto",
              data_dir: str | None = None, seed: int = 0, dataset: str | None = None, images: str | None = None,
              labels: str | None = None, num_classes: int | None = None) -> Stimulus:
    """The stimulus and FINN's expected outputs: the user's images, a data set's test images (named, or the
    one the compile records), else random inputs."""
    source = data_source(data, compile_dir, dataset, images)
    if source == "random":
        return random_stimulus(hw_graph, design, frames, seed)
    x, y = verification_frames(source, compile_dir, frames, data_dir=data_dir, dataset=dataset, images=images,
                               labels=labels, num_classes=num_classes)
    return frames_stimulus(compile_dir, x, y, source)


def simulate(design: StitchedDesign, stim: Stimulus, *, backpressure: float = 0.0, gaps: float = 0.0, seed: int = 0,
             max_cycles: int | None = None, build_dir: str | Path | None = None, out_json: str | Path,
             target: str | Path | None = None, hw_graph: str | Path | None = None, stitch_s: float = 0.0) -> dict:
    """rtlsim of an already stitched ``design`` on ``stim``, compared with its expected outputs.

    Writes nothing into the design's folder: the Verilator build goes to ``build_dir``
    (a cache), the report to ``out_json``. Returns the report.
    """
    frames = stim.x.shape[0]
    try:
        res = simulate_stitched(design, stim.x, backpressure=backpressure, gaps=gaps, seed=seed, max_cycles=max_cycles,
                                build_dir=build_dir)
    except RtlsimTimeout as exc:
        raise UserError(f"{exc}; raise --max-cycles") from None
    except VerilatorNotFoundError as exc:
        raise UserError(str(exc)) from None
    got = res.outputs.reshape(frames, -1)
    exp = stim.expected.reshape(frames, -1).astype(np.int64)
    bad = (got != exp)
    est = design.est_cycles_per_frame
    rep = {
        "target": str(target if target is not None else design.out_dir),
        "hw_graph": str(hw_graph if hw_graph is not None else design.hw_graph),
        "stitched_dir": design.out_dir, "top": design.top,
        "data": stim.data, "frames": frames, "backpressure": backpressure, "gaps": gaps, "seed": seed,
        "bit_exact": not bad.any(), "mismatching_frames": int(bad.any(axis=1).sum()),
        "mismatching_values": int(bad.sum()),
        "latency_cycles": res.latency, "cycles_per_frame": res.cycles_per_frame,
        "est_cycles_per_frame": est, "bottleneck": design.bottleneck,
        "cycles_vs_estimate": res.cycles_per_frame / est if est else None,
        "total_cycles": res.total_cycles, "sim_cycles": res.sim_cycles, "sim_wall_s": round(res.sim_wall_s, 3),
        "sim_cycles_per_s": round(res.sim_cycles_per_s), "verilator_build_s": round(res.build_s, 1),
        "build_cached": res.cached_build, "stitch_s": round(stitch_s, 2), "reference_s": round(stim.seconds, 2),
        "layers": [{"name": s.name, "op": s.op_type, "impl": s.impl, "est_cycles": s.exp_cycles}
                   for s in design.nodes],
    }
    if stim.labels is not None and got.shape[1] == 1:
        rep["accuracy_rtl"] = float((got[:, 0] == stim.labels).mean())
    out = Path(out_json).resolve()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(rep, indent=2) + "\n")
    tmp.replace(out)
    rep["json"] = str(out)
    return rep


def stitch_into(hw_graph: Path, stitch_dir: Path, fpga_part: str, clk_ns: float, also=()) -> StitchedDesign:
    """Stitch ``hw_graph`` into ``stitch_dir``, a folder sbnn owns (a foreign non-empty one is refused).

    What an earlier stitch listed there is removed first; ``also`` names further files the caller
    will write into the folder (listed as sbnn's before they exist).
    """
    check_onnx_artifact(hw_graph, "HW graph", _RECOMPILE)   # a truncated graph: its name, not a parser traceback
    workdir.clear(stitch_dir, STITCH_KIND, inputs=[hw_graph], what="stitch directory")
    with workdir.Writing(stitch_dir, STITCH_KIND, declared=[*STITCH_ARTIFACTS, *also], what="stitch directory"):
        return stitch(hw_graph, stitch_dir, fpga_part=fpga_part, clk_ns=clk_ns)


def run_sim(target: str | Path, frames: int = 1000, *, backpressure: float = 0.0, gaps: float = 0.0, seed: int = 0,
            max_cycles: int | None = None, data: str = "auto", data_dir: str | None = None,
            stitch_dir: str | Path | None = None, build_dir: str | Path | None = None,
            out_json: str | Path | None = None, fpga_part: str = "xc7z020clg400-1", clk_ns: float = 10.0,
            dataset: str | None = None, images: str | None = None, labels: str | None = None) -> dict:
    """``sbnn sim``: stitch into ``stitch_dir`` (default ``<build>/stitched``), rtlsim, compare; returns (and
    writes) the report, by default ``<stitch_dir>/sim_report.json``."""
    check_options(frames, backpressure, gaps, max_cycles, data)
    check_data_options(frames, dataset, images, labels)
    hw_graph, compile_dir = resolve_target(target)
    check_compile_files(hw_graph, compile_dir)
    source = data_source(data, compile_dir, dataset, images)   # contradictory options stop before stitching
    if source == "test":
        check_dataset_frames(frames, dataset or dataset_of(compile_dir), data_dir)
    sdir = Path(stitch_dir) if stitch_dir else hw_graph.parent / "stitched"
    check_output_dir(sdir, "--stitch-dir")
    if out_json is not None:
        check_output_file(out_json, "--out")
    with workdir.locked_claim(sdir, STITCH_KIND, what="stitch directory", hint="pass another --stitch-dir"):
        t0 = time.perf_counter()
        design = stitch_into(hw_graph, sdir, fpga_part, clk_ns, also=() if out_json else (REPORT,))
        t_stitch = time.perf_counter() - t0
        stim = reference(hw_graph, compile_dir, design, frames, data=data, data_dir=data_dir, seed=seed,
                         dataset=dataset, images=images, labels=labels)
        out = Path(out_json) if out_json else sdir / REPORT
        return simulate(design, stim, backpressure=backpressure, gaps=gaps, seed=seed, max_cycles=max_cycles,
                        build_dir=build_dir, out_json=out, target=target, hw_graph=hw_graph, stitch_s=t_stitch)


def format_report(rep: dict) -> str:
    ok = "bit-exact" if rep["bit_exact"] else \
        f"MISMATCH: {rep['mismatching_frames']} of {rep['frames']} frames ({rep['mismatching_values']} values)"
    data = {"files": "user (--images)"}.get(rep["data"], rep["data"])
    lines = [f"rtlsim of {rep['top']} ({len(rep['layers'])} layers) on {rep['frames']} {data} frames vs FINN "
             f"HW-graph execution: {ok}",
             f"latency {rep['latency_cycles']} cycles; steady state {rep['cycles_per_frame']:.1f} cycles/frame "
             f"(estimate {rep['est_cycles_per_frame']}, bottleneck {rep['bottleneck']}"
             + (f", ratio {rep['cycles_vs_estimate']:.3f})" if rep.get("cycles_vs_estimate") else ")"),
             f"simulated {rep['sim_cycles']} cycles in {rep['sim_wall_s']:.2f} s "
             f"({rep['sim_cycles_per_s'] / 1e6:.2f} M cycles/s); Verilator build "
             + ("cached" if rep["build_cached"] else f"{rep['verilator_build_s']:.1f} s")]
    if rep["backpressure"] or rep["gaps"]:
        lines.append(f"random backpressure {rep['backpressure']}, input gaps {rep['gaps']}, seed {rep['seed']}")
    if "accuracy_rtl" in rep:
        lines.append(f"accuracy of the RTL on these frames {rep['accuracy_rtl']:.4f}")
    lines.append(f"wrote {rep['json']}")
    return "\n".join(lines)
