"""Verilator rtlsim of a stitched dataflow partition (see stitch.py).

Reuses the node-level machinery of :mod:`sbnn.hls.sparse_mvau.rtlsim`: the same
generated C++ testbench (``tb_template.cpp``, one instance), the same Verilator
location/flags, the same build cache keyed by a hash of every RTL source
(threshold ``.dat`` files included), the testbench and the flags. Stimuli and
options (frames, backpressure, input gaps, seed, max cycles) are runtime
inputs, so reruns never rebuild.

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
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau.rtlsim import (HERE as NODE_HERE, VERILATOR_FLAGS, RtlsimError, RtlsimTimeout,
                                         default_build_dir, find_verilator, verilator_env)
from sbnn.hls.build_cache import cached_build
from sbnn.hls.stitch import StitchedDesign, pack_stream, unpack_stream

# FINN's SystemVerilog is not -Wall clean; its warnings must not stop the build.
STITCH_FLAGS = VERILATOR_FLAGS + ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTITOP"]


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


def _testbench() -> str:
    return "#define NINST 1\n#define DRIVE_ALL DRIVE(0)\n#define SAMPLE_ALL SAMPLE(0)\n" + \
        (NODE_HERE / "tb_template.cpp").read_text()


def build_stitched(design: StitchedDesign, build_dir: str | Path | None = None) -> tuple[Path, float]:
    """Compile (or reuse) the Verilated model of the design; returns (executable, build seconds)."""
    root = find_verilator()
    missing = [str(p) for p in design.source_paths() if not p.is_file()]
    if missing:
        raise RtlsimError(f"stitched design in {design.out_dir} is incomplete (missing {missing[0]}); re-run the stitch")
    wrapper, tb = sim_wrapper(design), _testbench()
    h = hashlib.sha256()
    for p in sorted(design.rtl_dir.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update("\0".join([wrapper, tb, " ".join(STITCH_FLAGS), str(root), " ".join(design.files)]).encode())
    key = "stitch_" + h.hexdigest()[:20]
    cmd = [str(root / "bin" / "verilator"), *STITCH_FLAGS, "-j", str(min(4, os.cpu_count() or 1)),
           "--Mdir", "obj", "-o", "Vsim", *design.files, "sim_top.v", "tb.cpp"]

    def populate(work: Path) -> None:
        for p in design.source_paths():
            shutil.copy(p, work / p.name)
        (work / "sim_top.v").write_text(wrapper)
        (work / "tb.cpp").write_text(tb)

    def error(work: Path, res) -> RtlsimError:
        tail = (res.stdout + res.stderr)[-3000:]
        return RtlsimError(f"Verilator build of the stitched design failed in {work} (exit {res.returncode}):\n{tail}")

    t0 = time.perf_counter()
    exe, built = cached_build(build_dir or default_build_dir(), key, "obj/Vsim", populate, cmd, error,
                              env=verilator_env(root))
    return exe, (time.perf_counter() - t0 if built else 0.0)


def _dtype(name: str):
    from qonnx.core.datatype import DataType

    return DataType[name]


def simulate_stitched(design: StitchedDesign, inputs: np.ndarray, backpressure: float = 0.0, gaps: float = 0.0,
                      seed: int = 0, max_cycles: int | None = None, build_dir: str | Path | None = None,
                      drain_cycles: int | None = None) -> StitchedResult:
    """Stream ``inputs`` (N, input elements; integers of the input datatype) through the design.

    Raises :class:`RtlsimTimeout` (with the cycle reached) when ``max_cycles``
    pass before every expected output beat arrived (default: a generous bound
    from the bottleneck estimate), :class:`RtlsimError` on lost/extra beats.
    """
    x = np.asarray(inputs)
    n = x.shape[0]
    per_frame = design.in_fold * design.in_beats
    if x.size != n * per_frame:
        raise ValueError(f"inputs must hold {per_frame} elements per frame, got shape {x.shape}")
    idt, odt = _dtype(design.in_dtype), _dtype(design.out_dtype)
    if not (np.all(x >= idt.min()) and np.all(x <= idt.max()) and np.array_equal(x, np.round(x))):
        raise ValueError(f"inputs must be integers of the partition's input datatype {design.in_dtype}")
    exe, build_s = build_stitched(design, build_dir)
    words = pack_stream(x.reshape(n, -1), design.in_fold, idt.bitwidth(), design.in_width)
    out_words = (design.out_width + 31) // 32
    est = max(design.est_cycles_per_frame, design.in_beats, design.out_beats)
    if max_cycles is None:
        lat_bound = sum(s.exp_cycles for s in design.nodes) + 64 * len(design.nodes)
        max_cycles = int(4 * ((n + 2) * est / max(1e-3, (1 - backpressure) * (1 - gaps)) + lat_bound)) + 10000
    if drain_cycles is None:
        drain_cycles = 2 * est + 100
    with tempfile.TemporaryDirectory(prefix="run", dir=exe.parent) as tmp:
        tmp = Path(tmp)
        words.tofile(tmp / "in0.bin")
        (tmp / "run.cfg").write_text(
            f"{max_cycles} {drain_cycles}\n{tmp / 'in0.bin'} {tmp / 'out0.bin'} {words.shape[0]} "
            f"{n * design.out_beats} {backpressure!r} {gaps!r} {seed} {words.shape[1]} {out_words}\n")
        t0 = time.perf_counter()
        res = subprocess.run([str(exe), str(tmp / "run.cfg")], capture_output=True, text=True, cwd=design.rtl_dir)
        wall_total = time.perf_counter() - t0
        if res.returncode == 3:
            parts = res.stdout.split()
            reached = parts[1] if len(parts) > 1 else "?"
            st = "; ".join(ln for ln in res.stdout.splitlines() if ln.startswith("inst "))
            raise RtlsimTimeout(f"rtlsim timeout: {reached} cycles simulated (max_cycles={max_cycles}) before all "
                                f"{n * design.out_beats} output beats arrived ({st.replace('inst 0 ', '')})")
        if res.returncode != 0:
            raise RtlsimError(f"rtlsim exited with {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
        head = res.stdout.split()
        sim_cycles, wall = int(head[1]), float(head[5])
        st = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("inst ")][0]
        rec = np.fromfile(tmp / "out0.bin", dtype=np.dtype([("cyc", "<u8"), ("w", "<u4", (out_words,))]))
    if len(rec) != n * design.out_beats:
        raise RtlsimError(f"{len(rec)} output beats for {n} frames x {design.out_beats} beats: lost or duplicated frames")
    vals = unpack_stream(rec["w"].reshape(len(rec), out_words), design.out_fold, odt.bitwidth(), odt.signed())
    outputs = vals.reshape(n, -1)
    fc = rec["cyc"].astype(np.int64).reshape(n, design.out_beats)[:, -1] if n else np.zeros(0, np.int64)
    i0, i1 = n // 4, n - 1 - n // 4
    cpf = float(fc[i1] - fc[i0]) / (i1 - i0) if n >= 4 and i1 > i0 else float("nan")
    del wall_total
    return StitchedResult(outputs=outputs, latency=int(st[9]) - int(st[7]), cycles_per_frame=cpf,
                          total_cycles=int(fc[-1]) + 1 if n else 0, frame_cycles=fc, sim_cycles=sim_cycles,
                          sim_wall_s=wall, sim_cycles_per_s=sim_cycles / wall if wall > 0 else float("inf"),
                          build_s=build_s, cached_build=build_s == 0.0)
