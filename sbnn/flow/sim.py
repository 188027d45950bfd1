"""``sbnn sim``: stitch a compiled partition into its own folder, rtlsim it in Verilator, compare with FINN.

Input: a build directory of ``sbnn compile`` (``compile_report.json``,
``parent.onnx``, ``hw_graph.onnx``) or a bare ``hw_graph.onnx``.

* Stimulus (:func:`reference`): when the compile report names the model's data
  set (``sbnn export`` records it in the QONNX metadata, the compile copies it),
  the first N test images of that data set, turned into the parent graph's
  input as ``sbnn verify`` does and run through the host-side nodes before the
  partition; otherwise (``--data random``, or a model from elsewhere) uniformly
  random integers of the partition's input datatype.
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
from sbnn.errors import UserError
from sbnn.export.compile import REPORT as COMPILE_REPORT
from sbnn.export.verify import HWGraphRunner, pixels_for_hw, python_exec_view, set_batch
from sbnn.hls.stitch import StitchedDesign, stitch
from sbnn.hls.stitched_rtlsim import simulate_stitched
from sbnn.hls.verilator import RtlsimTimeout, VerilatorNotFoundError
from sbnn.training.datasets import load_dataset

REPORT = "sim_report.json"
STITCH_KIND = "stitch"                      # the workdir kind of a folder holding a stitched design
STITCH_ARTIFACTS = ("rtl", "stitch.json")   # what stitch() writes (finn_tmp too when FINN_BUILD_DIR is unset)


@dataclass
class Stimulus:
    """Partition inputs, the expected partition outputs and (for test images) the labels."""

    x: np.ndarray               # (N, input elements), integers of the partition's input datatype
    expected: np.ndarray        # (N, output elements)
    labels: np.ndarray | None
    data: str                   # "test" or "random"
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
    return json.loads((Path(compile_dir) / COMPILE_REPORT).read_text())


def dataset_of(compile_dir: str | Path) -> str | None:
    """The data set the compiled model was trained on, as recorded by export and compile (never guessed)."""
    return compile_report(compile_dir).get("dataset")


def dataset_stimulus(compile_dir: str | Path, frames: int, data_dir: str | None = None, *,
                     at_most: bool = False) -> Stimulus:
    """The data set's first ``frames`` test images, as partition inputs, with FINN's outputs and the labels
    (``at_most``: fewer when the test set is smaller, instead of an error)."""
    t0 = time.perf_counter()
    rep = compile_report(compile_dir)
    name = rep.get("dataset")
    if name is None:
        raise UserError(f"the compile in {compile_dir} records no data set (the model was not exported by "
                        "`sbnn export`); use --data random")
    _, test_set, _ = load_dataset(name, data_dir)
    x, y = test_set.tensors
    x, y = x.numpy()[:frames], y.numpy()[:frames]
    if x.shape[0] < frames and not at_most:
        raise UserError(f"--frames {frames} exceeds the {x.shape[0]} test images of {name}")
    runner = HWGraphRunner(compile_dir, batch=500)
    ins, outs = runner.partition_io(pixels_for_hw(x, rep.get("input_max_value")))
    return Stimulus(ins, outs, y, "test", time.perf_counter() - t0)


def random_stimulus(hw_graph: str | Path, design: StitchedDesign, frames: int, seed: int) -> Stimulus:
    """Random integers of the input datatype and FINN's Python execution of the HW graph."""
    t0 = time.perf_counter()
    dt = DataType[design.in_dtype]
    rng = np.random.default_rng(seed)
    shape = (frames, *design.in_shape[1:])
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)
    m = set_batch(python_exec_view(ModelWrapper(str(hw_graph))), frames)
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


def reference(hw_graph: Path, compile_dir: Path | None, design: StitchedDesign, frames: int, *, data: str = "auto",
              data_dir: str | None = None, seed: int = 0) -> Stimulus:
    """The stimulus and FINN's expected outputs: test images when the data set is known, else random inputs."""
    if data == "test" and compile_dir is None:
        raise UserError("--data test needs a build directory of `sbnn compile` (parent.onnx, compile_report.json)")
    if data == "auto":
        data = "test" if compile_dir is not None and dataset_of(compile_dir) else "random"
    if data == "test":
        return dataset_stimulus(compile_dir, frames, data_dir)
    return random_stimulus(hw_graph, design, frames, seed)


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
    workdir.clear(stitch_dir, STITCH_KIND, inputs=[hw_graph], what="stitch directory")
    with workdir.Writing(stitch_dir, STITCH_KIND, declared=[*STITCH_ARTIFACTS, *also], what="stitch directory"):
        return stitch(hw_graph, stitch_dir, fpga_part=fpga_part, clk_ns=clk_ns)


def run_sim(target: str | Path, frames: int = 1000, *, backpressure: float = 0.0, gaps: float = 0.0, seed: int = 0,
            max_cycles: int | None = None, data: str = "auto", data_dir: str | None = None,
            stitch_dir: str | Path | None = None, build_dir: str | Path | None = None,
            out_json: str | Path | None = None, fpga_part: str = "xc7z020clg400-1", clk_ns: float = 10.0) -> dict:
    """``sbnn sim``: stitch into ``stitch_dir`` (default ``<build>/stitched``), rtlsim, compare; returns (and
    writes) the report, by default ``<stitch_dir>/sim_report.json``."""
    check_options(frames, backpressure, gaps, max_cycles, data)
    hw_graph, compile_dir = resolve_target(target)
    if data == "test" and compile_dir is None:
        raise UserError("--data test needs a build directory of `sbnn compile` (parent.onnx, compile_report.json)")
    sdir = Path(stitch_dir) if stitch_dir else hw_graph.parent / "stitched"
    with workdir.locked_claim(sdir, STITCH_KIND, what="stitch directory", hint="pass another --stitch-dir"):
        t0 = time.perf_counter()
        design = stitch_into(hw_graph, sdir, fpga_part, clk_ns, also=() if out_json else (REPORT,))
        t_stitch = time.perf_counter() - t0
        stim = reference(hw_graph, compile_dir, design, frames, data=data, data_dir=data_dir, seed=seed)
        out = Path(out_json) if out_json else sdir / REPORT
        return simulate(design, stim, backpressure=backpressure, gaps=gaps, seed=seed, max_cycles=max_cycles,
                        build_dir=build_dir, out_json=out, target=target, hw_graph=hw_graph, stitch_s=t_stitch)


def format_report(rep: dict) -> str:
    ok = "bit-exact" if rep["bit_exact"] else \
        f"MISMATCH: {rep['mismatching_frames']} of {rep['frames']} frames ({rep['mismatching_values']} values)"
    lines = [f"rtlsim of {rep['top']} ({len(rep['layers'])} layers) on {rep['frames']} {rep['data']} frames vs FINN "
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
