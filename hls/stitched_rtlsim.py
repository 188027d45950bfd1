"""Verilator rtlsim of a stitched dataflow partition (see stitch.py).

Reuses the node-level machinery: the generated C++ testbench of
:mod:`sbnn.hls.sparse_mvau.rtlsim` (``tb_template.cpp``, one instance), and
:mod:`sbnn.hls.verilator` for the Verilator location/flags, the build cache
keyed by a hash of every RTL source (threshold ``.dat`` files included), the
testbench and the flags, and the testbench run. The FINN stream packing is
:mod:`sbnn.hls.streams`. Stimuli and options (frames, backpressure, input
gaps, seed, max cycles) are runtime inputs, so reruns never rebuild.

Metrics (cycles counted from reset release):

* ``latency``: first input beat accepted -> first output beat;
* ``cycles_per_frame``: steady state, ``(c[i1] - c[i0]) / (i1 - i0)`` with
  ``c[i]`` the cycle of frame i's last output beat over the middle half of the
  run (NaN below 4 frames);
* ``sim_cycles_per_s``: simulated clock cycles per wall-clock second.

The executable runs with the design's rtl/ folder as working directory
(FINN's thresholding reads its ``./<node>_threshs_*.dat`` files from there).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType

from sbnn.hls.sparse_mvau.rtlsim import testbench_cpp
from sbnn.hls.stitch import StitchedDesign
from sbnn.hls.streams import pack_stream, unpack_stream
from sbnn.hls.verilator import (DEFAULT_SIM, RtlsimError, SimOptions, TbStream, build_simulator, run_testbench,
                                steady_cycles_per_frame)

# FINN's SystemVerilog is not -Wall clean; its warnings must not stop the build.
STITCH_WARNINGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTITOP"]
STITCH_FLAGS = DEFAULT_SIM.flags() + STITCH_WARNINGS


@dataclass
class StitchedResult:
    outputs: np.ndarray            # (N, out elements) integers
    latency: int
    cycles_per_frame: float
    total_cycles: int
    frame_cycles: np.ndarray = field(repr=False)
    sim_cycles: int = 0
    sim_wall_s: float = 0.0
    sim_cycles_per_s: float = 0.0
    build_s: float = 0.0           # Verilator build time of this call (0 when cached)
    cached_build: bool = True


def sim_wrapper(design: StitchedDesign) -> str:
    """``sim_top`` with the node testbench's port names (instance 0)."""
    return (f"module sim_top (\n  input wire ap_clk,\n  input wire ap_rst_n,\n"
            f"  input wire [{design.in_width - 1}:0] i0_s_axis_tdata,\n  input wire i0_s_axis_tvalid,\n"
            f"  output wire i0_s_axis_tready,\n  output wire [{design.out_width - 1}:0] i0_m_axis_tdata,\n"
            f"  output wire i0_m_axis_tvalid,\n  input wire i0_m_axis_tready\n);\n"
            f"  {design.top} dut (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .s_axis_0_tdata(i0_s_axis_tdata), "
            f".s_axis_0_tvalid(i0_s_axis_tvalid), .s_axis_0_tready(i0_s_axis_tready), "
            f".m_axis_0_tdata(i0_m_axis_tdata), .m_axis_0_tvalid(i0_m_axis_tvalid), "
            f".m_axis_0_tready(i0_m_axis_tready));\nendmodule\n")


def build_stitched(design: StitchedDesign, build_dir: str | Path | None = None,
                   sim: SimOptions = DEFAULT_SIM) -> tuple[Path, float]:
    """Compile (or reuse) the Verilated model of the design with ``sim``'s compiler options; returns
    (executable, build seconds, 0 when cached)."""
    missing = [str(p) for p in design.source_paths() if not p.is_file()]
    if missing:
        raise RtlsimError(f"stitched design in {design.out_dir} is incomplete (missing {missing[0]}); re-run the stitch")
    wrapper, tb = sim_wrapper(design), testbench_cpp(1)
    h = hashlib.sha256()
    for p in sorted(design.rtl_dir.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update("\0".join([wrapper, tb]).encode())

    def populate(work: Path) -> None:
        for p in design.source_paths():
            shutil.copy(p, work / p.name)
        (work / "sim_top.v").write_text(wrapper)
        (work / "tb.cpp").write_text(tb)

    return build_simulator([*design.files, "sim_top.v", "tb.cpp"], populate, h.digest(),
                           flags=sim.flags() + STITCH_WARNINGS,
                           build_dir=build_dir, key_prefix="stitch_", what="the stitched design")


def to_stream_elements(x: np.ndarray, dt: DataType) -> np.ndarray:
    """Values of datatype ``dt`` as the integers FINN puts on the stream: the IEEE-754 bits of a FLOAT32
    (FINN's thresholding compares them with ``FPARG``), 0/1 for BIPOLAR -1/+1, the value itself otherwise."""
    if dt == DataType["FLOAT32"]:
        return np.asarray(x, dtype="<f4").view("<u4").astype(np.int64)
    if not dt.is_integer():
        raise ValueError(f"rtlsim streams integers or FLOAT32, not the partition's input datatype {dt.name}")
    if not (np.all(x >= dt.min()) and np.all(x <= dt.max()) and np.array_equal(x, np.round(x))):
        raise ValueError(f"inputs must be integers of the partition's input datatype {dt.name}")
    if dt == DataType["BIPOLAR"]:
        if not np.all(np.abs(x) == 1):
            raise ValueError("BIPOLAR inputs must be -1 or +1")
        return (np.asarray(x, dtype=np.int64) + 1) // 2
    return x


def from_stream_elements(v: np.ndarray, dt: DataType) -> np.ndarray:
    """Stream integers back to values of ``dt`` (inverse of :func:`to_stream_elements`)."""
    if dt == DataType["FLOAT32"]:
        return v.astype("<u4").view("<f4").astype(np.float64)
    if dt == DataType["BIPOLAR"]:
        return 2 * v - 1
    return v


def simulate_stitched(design: StitchedDesign, inputs: np.ndarray, backpressure: float = 0.0, gaps: float = 0.0,
                      seed: int = 0, max_cycles: int | None = None, build_dir: str | Path | None = None,
                      drain_cycles: int | None = None, sim: SimOptions = DEFAULT_SIM) -> StitchedResult:
    """Stream ``inputs`` (N, input elements; values of the input datatype: integers, or FLOAT32) through the design
    (``sim``: the Verilator/compiler options of its model, see :class:`SimOptions`).

    Raises :class:`RtlsimTimeout` (with the cycle reached) when ``max_cycles``
    pass before every expected output beat arrived (default: a generous bound
    from the bottleneck estimate), :class:`RtlsimError` on lost/extra beats.
    """
    x = np.asarray(inputs)
    n = x.shape[0]
    per_frame = design.in_fold * design.in_beats
    if x.size != n * per_frame:
        raise ValueError(f"inputs must hold {per_frame} elements per frame, got shape {x.shape}")
    idt, odt = DataType[design.in_dtype], DataType[design.out_dtype]
    words = pack_stream(to_stream_elements(x.reshape(n, -1), idt), design.in_fold, idt.bitwidth(), design.in_width)
    exe, build_s = build_stitched(design, build_dir, sim)
    out_words = (design.out_width + 31) // 32
    est = max(design.est_cycles_per_frame, design.in_beats, design.out_beats)
    if max_cycles is None:
        lat_bound = sum(s.exp_cycles for s in design.nodes) + 64 * len(design.nodes)
        max_cycles = int(4 * ((n + 2) * est / max(1e-3, (1 - backpressure) * (1 - gaps)) + lat_bound)) + 10000
    if drain_cycles is None:
        drain_cycles = 2 * est + 100
    stream = TbStream(words, n * design.out_beats, out_words, backpressure, gaps, seed)
    run = run_testbench(exe, [stream], max_cycles, drain_cycles, cwd=design.rtl_dir)
    out = run.outputs[0]
    if len(out.words) != n * design.out_beats:
        raise RtlsimError(f"{len(out.words)} output beats for {n} frames x {design.out_beats} beats: "
                          "lost or duplicated frames")
    outputs = from_stream_elements(unpack_stream(out.words, design.out_fold, odt.bitwidth(), odt.signed()),
                                   odt).reshape(n, -1)
    fc = out.cycles.reshape(n, design.out_beats)[:, -1] if n else np.zeros(0, np.int64)
    return StitchedResult(outputs=outputs, latency=out.latency, cycles_per_frame=steady_cycles_per_frame(fc),
                          total_cycles=int(fc[-1]) + 1 if n else 0, frame_cycles=fc, sim_cycles=run.sim_cycles,
                          sim_wall_s=run.wall_s, sim_cycles_per_s=run.cycles_per_s,
                          build_s=build_s, cached_build=build_s == 0.0)
