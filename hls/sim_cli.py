"""``sbnn sim``: stitch a compiled partition, rtlsim it in Verilator, compare with FINN.

Input: a build directory of ``sbnn compile`` (``compile_report.json``,
``parent.onnx``, ``hw_graph.onnx``) or a bare ``hw_graph.onnx``.

* Stimulus: with a build directory whose model came from ``sbnn export``, the
  first N test images of the model's data set (``--data test``, the default
  there), turned into the parent graph's input exactly as ``sbnn verify`` does
  and run through the host-side nodes before the partition; otherwise
  (``--data random``) uniformly random integers of the partition's input
  datatype.
* Reference: FINN's Python execution of the HW graph (``export.verify``:
  FINN's specialized layers run as their generic layer, SparseXnorMVAU as its
  bit-true reference).
* RTL: :func:`sbnn.hls.stitch.stitch` into ``<build>/stitched`` and
  :func:`sbnn.hls.stitched_rtlsim.simulate_stitched`.

Reported: mismatching frames/values, latency (first input beat -> first
output beat), steady-state cycles per frame against the graph's bottleneck
estimate, simulation speed, the Verilator build time; all also in a JSON file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sbnn.errors import UserError

REPORT = "sim_report.json"


def _resolve(target: str | Path) -> tuple[Path, Path | None]:
    """(hw_graph.onnx, build dir or None)."""
    p = Path(target)
    if p.is_dir():
        g = p / "hw_graph.onnx"
        if not g.is_file():
            raise UserError(f"{p} holds no hw_graph.onnx; pass a build directory of `sbnn compile` or a HW graph .onnx")
        return g, p if (p / "compile_report.json").is_file() and (p / "parent.onnx").is_file() else None
    if not p.is_file():
        raise UserError(f"{p} not found; pass a build directory of `sbnn compile` or its hw_graph.onnx")
    if p.suffix != ".onnx":
        raise UserError(f"{p} is not an .onnx file; pass a build directory of `sbnn compile` or its hw_graph.onnx")
    b = p.parent
    ok = (b / "compile_report.json").is_file() and (b / "parent.onnx").is_file() and p.name == "hw_graph.onnx"
    return p, b if ok else None


def _dataset_of(build: Path) -> str | None:
    rep = json.loads((build / "compile_report.json").read_text())
    exp = Path(rep.get("model", "")).with_suffix(".json")
    if exp.is_file():
        return json.loads(exp.read_text()).get("dataset")
    return None


def dataset_stimulus(build: Path, frames: int, data_dir: str | None = None):
    """(partition inputs (N, elems), expected outputs (N, out elems), labels) from the data set's test images."""
    from sbnn.export.verify import HWGraphRunner, pixels_for_hw
    from sbnn.training.datasets import load_dataset

    name = _dataset_of(build)
    if name is None:
        raise UserError(f"cannot tell the data set of {build} (no export JSON next to the compiled model); "
                        "use --data random")
    _, test_set, _ = load_dataset(name, data_dir)
    x, y = test_set.tensors
    x, y = x.numpy()[:frames], y.numpy()[:frames]
    if x.shape[0] < frames:
        raise UserError(f"--frames {frames} exceeds the {x.shape[0]} test images of {name}")
    rep = json.loads((build / "compile_report.json").read_text())
    from finn.core.onnx_exec import execute_onnx

    runner = HWGraphRunner(build, batch=500)
    xh = pixels_for_hw(x, rep.get("input_max_value"))
    ins, outs = [], []
    for i in range(0, frames, runner.batch):
        xb = xh[i:i + runner.batch]
        parent, _ = runner._models_for(xb.shape[0])
        sdp = [n for n in parent.graph.node if n.name == runner.sdp_name][0]
        ctx = execute_onnx(parent, {parent.graph.input[0].name: xb}, return_full_exec_context=True)
        ins.append(np.asarray(ctx[sdp.input[0]]).reshape(xb.shape[0], -1))
        outs.append(np.asarray(ctx[sdp.output[0]]).reshape(xb.shape[0], -1))
    return np.concatenate(ins), np.concatenate(outs), y


def random_stimulus(hw_graph: Path, design, frames: int, seed: int):
    """Random integers of the input datatype and FINN's Python execution of the HW graph."""
    import sbnn.export.sparse_xnor_mvau  # noqa: F401
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    from sbnn.export.verify import python_exec_view, set_batch

    dt = DataType[design.in_dtype]
    rng = np.random.default_rng(seed)
    shape = (frames, *design.in_shape[1:])
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)
    m = set_batch(python_exec_view(ModelWrapper(str(hw_graph))), frames)
    y = execute_onnx(m, {m.graph.input[0].name: x.astype(np.float32)})[m.graph.output[0].name]
    return x.reshape(frames, -1), np.asarray(y).reshape(frames, -1), None


def run_sim(target: str | Path, frames: int = 1000, *, backpressure: float = 0.0, gaps: float = 0.0, seed: int = 0,
            max_cycles: int | None = None, data: str = "auto", data_dir: str | None = None,
            stitch_dir: str | Path | None = None, build_dir: str | Path | None = None,
            out_json: str | Path | None = None, fpga_part: str = "xc7z020clg400-1", clk_ns: float = 10.0) -> dict:
    """Stitch + rtlsim + compare; returns (and writes) the report dict."""
    from sbnn.hls.sparse_mvau.rtlsim import RtlsimTimeout, VerilatorNotFoundError
    from sbnn.hls.stitch import stitch
    from sbnn.hls.stitched_rtlsim import simulate_stitched

    if frames < 1:
        raise UserError(f"--frames must be >= 1, got {frames}")
    for nm, v in (("--backpressure", backpressure), ("--gaps", gaps)):
        if not 0.0 <= v < 1.0:
            raise UserError(f"{nm} is a probability per cycle in [0, 1), got {v}")
    if max_cycles is not None and max_cycles < 1:
        raise UserError(f"--max-cycles must be positive, got {max_cycles}")
    if data not in ("auto", "test", "random"):
        raise UserError(f"--data must be auto, test or random, got '{data}'")
    hw_graph, build = _resolve(target)
    if data == "test" and build is None:
        raise UserError("--data test needs a build directory of `sbnn compile` (parent.onnx, compile_report.json)")
    if data == "auto":
        data = "test" if build is not None and _dataset_of(build) else "random"
    sdir = Path(stitch_dir) if stitch_dir else hw_graph.parent / "stitched"
    t0 = time.perf_counter()
    design = stitch(hw_graph, sdir, fpga_part=fpga_part, clk_ns=clk_ns)
    t_stitch = time.perf_counter() - t0
    t0 = time.perf_counter()
    if data == "test":
        x, expected, labels = dataset_stimulus(build, frames, data_dir)
    else:
        x, expected, labels = random_stimulus(hw_graph, design, frames, seed)
    t_ref = time.perf_counter() - t0
    try:
        res = simulate_stitched(design, x, backpressure=backpressure, gaps=gaps, seed=seed, max_cycles=max_cycles,
                                build_dir=build_dir)
    except RtlsimTimeout as exc:
        raise UserError(f"{exc}; raise --max-cycles") from None
    except VerilatorNotFoundError as exc:
        raise UserError(str(exc)) from None
    got = res.outputs.reshape(frames, -1)
    exp = expected.reshape(frames, -1).astype(np.int64)
    bad = (got != exp)
    est = design.est_cycles_per_frame
    rep = {
        "target": str(target), "hw_graph": str(hw_graph), "stitched_dir": design.out_dir, "top": design.top,
        "data": data, "frames": frames, "backpressure": backpressure, "gaps": gaps, "seed": seed,
        "bit_exact": not bad.any(), "mismatching_frames": int(bad.any(axis=1).sum()),
        "mismatching_values": int(bad.sum()),
        "latency_cycles": res.latency, "cycles_per_frame": res.cycles_per_frame,
        "est_cycles_per_frame": est, "bottleneck": design.bottleneck,
        "cycles_vs_estimate": res.cycles_per_frame / est if est else None,
        "total_cycles": res.total_cycles, "sim_cycles": res.sim_cycles, "sim_wall_s": round(res.sim_wall_s, 3),
        "sim_cycles_per_s": round(res.sim_cycles_per_s), "verilator_build_s": round(res.build_s, 1),
        "build_cached": res.cached_build, "stitch_s": round(t_stitch, 2), "reference_s": round(t_ref, 2),
        "layers": [{"name": s.name, "op": s.op_type, "impl": s.impl, "est_cycles": s.exp_cycles}
                   for s in design.nodes],
    }
    if labels is not None and got.shape[1] == 1:
        rep["accuracy_rtl"] = float((got[:, 0] == labels).mean())
    out = Path(out_json) if out_json else hw_graph.parent / REPORT
    out.write_text(json.dumps(rep, indent=2) + "\n")
    rep["json"] = str(out)
    return rep


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
