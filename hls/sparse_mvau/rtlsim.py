"""Verilator rtlsim of generated sparse MVAU nodes with a generated C++ testbench.

Why not cocotb: a compiled C++ loop runs millions of cycles per second, and
several node instances (one per job) are compiled into ONE Verilated model and
simulated side by side, so a regression over hundreds of configurations costs a
handful of Verilator builds. Builds are cached by a hash of the RTL, the
testbench and the Verilator flags; stimuli and options (backpressure, input
gaps, seed, frame count) are runtime inputs, so reruns never rebuild.

Metrics per job (cycles counted from reset release, one per clock):

* ``latency``: cycle of the first output beat minus cycle of the first input
  beat accepted;
* ``cycles_per_frame``: steady state, ``(c[i1] - c[i0]) / (i1 - i0)`` where
  ``c[i]`` is the cycle of frame i's last output beat, over the middle half of
  the run (needs >= 4 frames, else NaN);
* ``total_cycles``: cycle of the last output beat + 1.

Verilator location, flags, build cache and the testbench runner are shared
with the stitched rtlsim: :mod:`sbnn.hls.verilator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.estimates import cycles_per_frame
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.streams import pack_stream, unpack_stream
from sbnn.hls.verilator import (DEFAULT_SIM, RtlsimError, SimOptions, TbStream, build_simulator, run_testbench,
                                steady_cycles_per_frame)

HERE = Path(__file__).parent


@dataclass
class StreamJob:
    """One node instance and its stimulus: inputs (N, MW) of 0/1 bits, or integers in ``cfg.in_range``
    for integer-input configs (``cfg.in_bits > 1``)."""

    cfg: SparseMVAUConfig
    inputs: np.ndarray
    backpressure: float = 0.0   # P(m_axis_tready low) per cycle
    gaps: float = 0.0           # P(s_axis_tvalid held low) per cycle while idle
    seed: int = 0


@dataclass
class RtlsimResult:
    outputs: np.ndarray          # (N, MH) as the reference returns them
    latency: int
    cycles_per_frame: float
    total_cycles: int
    frame_cycles: np.ndarray = field(repr=False)   # cycle of each frame's last output beat
    sim_cycles: int = 0          # cycles simulated by the shared model
    sim_cycles_per_s: float = 0.0


def top_verilog(cfgs: list[SparseMVAUConfig]) -> str:
    """All node modules plus ``sim_top`` with ports ``i<k>_<port>`` per instance."""
    parts = [generate_verilog(c, name=f"smvau_i{k}") for k, c in enumerate(cfgs)]
    ports = ["  input wire ap_clk", "  input wire ap_rst_n"]
    insts = []
    for k, c in enumerate(cfgs):
        ports += [f"  input wire [{c.in_tdata_width - 1}:0] i{k}_s_axis_tdata", f"  input wire i{k}_s_axis_tvalid",
                  f"  output wire i{k}_s_axis_tready", f"  output wire [{c.out_tdata_width - 1}:0] i{k}_m_axis_tdata",
                  f"  output wire i{k}_m_axis_tvalid", f"  input wire i{k}_m_axis_tready"]
        conns = ", ".join(f".{p}(i{k}_{p})" for p in ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                                                      "m_axis_tdata", "m_axis_tvalid", "m_axis_tready"))
        insts.append(f"  smvau_i{k} u{k} (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), {conns});")
    top = "module sim_top (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(insts) + "\nendmodule\n"
    return "".join(parts) + top


def testbench_cpp(n: int) -> str:
    tb = (HERE / "tb_template.cpp").read_text()
    drive = " ".join(f"DRIVE({k})" for k in range(n))
    sample = " ".join(f"SAMPLE({k})" for k in range(n))
    return f"#define NINST {n}\n#define DRIVE_ALL {drive}\n#define SAMPLE_ALL {sample}\n" + tb


def build_model(cfgs: list[SparseMVAUConfig], build_dir: str | Path | None = None,
                sim: SimOptions = DEFAULT_SIM) -> Path:
    """Compile (or reuse from cache) the model of these nodes (``sim``: its Verilator options); returns the
    executable."""
    rtl, tb = top_verilog(cfgs), testbench_cpp(len(cfgs))

    def populate(work: Path) -> None:
        (work / "sim_top.v").write_text(rtl)
        (work / "tb.cpp").write_text(tb)

    exe, _ = build_simulator(["sim_top.v", "tb.cpp"], populate, "\0".join([rtl, tb]).encode(), build_dir=build_dir,
                             flags=sim.flags(), what="the node model")
    return exe


def pack_inputs(cfg: SparseMVAUConfig, inputs: np.ndarray) -> np.ndarray:
    """(N, MW) bits or integers -> (N*SF, in_words) uint32 TDATA words, FINN packing (SIMD elements of
    ``cfg.in_bits`` bits a beat, two's complement when signed); ValueError for values outside ``cfg.in_range``."""
    return pack_stream(cfg.check_inputs(inputs), cfg.SIMD, cfg.in_bits, cfg.in_tdata_width)


def unpack_outputs(cfg: SparseMVAUConfig, words: np.ndarray) -> np.ndarray:
    """(beats, out_words) uint32 -> (beats, PE) element values (signed if noActivation)."""
    return unpack_stream(words, cfg.PE, cfg.out_width, cfg.no_activation).reshape(-1, cfg.PE)


def simulate_many(jobs: list[StreamJob], build_dir: str | Path | None = None, max_cycles: int | None = None,
                  drain_cycles: int | None = None, sim: SimOptions = DEFAULT_SIM) -> list[RtlsimResult]:
    """Run all jobs in one shared model (one build); results in job order.

    Raises :class:`sbnn.hls.verilator.RtlsimTimeout` if ``max_cycles`` is reached first
    (default: generous bound from the cycle model), :class:`sbnn.hls.verilator.RtlsimError`
    on lost or extra (duplicated) output beats.
    """
    exe = build_model([j.cfg for j in jobs], build_dir, sim)
    if max_cycles is None:
        worst = max((len(j.inputs) + 2) * (cycles_per_frame(j.cfg) + j.cfg.SF + j.cfg.NF + 4)
                    / max(1e-3, (1 - j.backpressure) * (1 - j.gaps)) for j in jobs)
        max_cycles = int(20 * worst) + 1000
    if drain_cycles is None:
        drain_cycles = 2 * max(cycles_per_frame(j.cfg) + j.cfg.SF for j in jobs) + 50
    streams = [TbStream(pack_inputs(j.cfg, j.inputs), len(j.inputs) * j.cfg.NF, (j.cfg.out_tdata_width + 31) // 32,
                        j.backpressure, j.gaps, j.seed) for j in jobs]
    run = run_testbench(exe, streams, max_cycles, drain_cycles)
    return [_result(j, out, run.sim_cycles, run.cycles_per_s) for j, out in zip(jobs, run.outputs)]


def simulate(cfg: SparseMVAUConfig, inputs: np.ndarray, backpressure: float = 0.0, gaps: float = 0.0,
             seed: int = 0, **kw) -> RtlsimResult:
    """Stream ``inputs`` (N, MW) through one node; see simulate_many for kw."""
    return simulate_many([StreamJob(cfg, np.asarray(inputs), backpressure, gaps, seed)], **kw)[0]


def _result(job: StreamJob, out, sim_cycles: int, cycles_per_s: float) -> RtlsimResult:
    cfg, n = job.cfg, len(job.inputs)
    if len(out.words) != n * cfg.NF:
        raise RtlsimError(f"{cfg.name}: {len(out.words)} output beats for {n} frames x NF={cfg.NF} "
                          f"(expected {n * cfg.NF}): lost or duplicated frames")
    vals = unpack_outputs(cfg, out.words).reshape(n, cfg.MH)
    fc = out.cycles.reshape(n, cfg.NF)[:, -1] if n else np.zeros(0, np.int64)
    return RtlsimResult(outputs=vals, latency=out.latency, cycles_per_frame=steady_cycles_per_frame(fc),
                        total_cycles=int(fc[-1]) + 1 if n else 0, frame_cycles=fc, sim_cycles=sim_cycles,
                        sim_cycles_per_s=cycles_per_s)
