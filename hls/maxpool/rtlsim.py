"""Verilator rtlsim of generated ``BinaryMaxPool`` nodes, several instances in one Verilated model.

Same machinery as the sparse MVAU's node rtlsim: the generated C++ AXI-Stream
testbench (``sparse_mvau/tb_template.cpp`` via :func:`testbench_cpp`), the
build cache and runner of :mod:`sbnn.hls.verilator`, FINN packing from
:mod:`sbnn.hls.streams`. Stimuli and options (backpressure, input gaps, seed,
frames) are runtime inputs, so reruns never rebuild.

Metrics per job (cycles from reset release): ``latency`` (first input beat
accepted -> first output beat), ``cycles_per_frame`` (steady state over the
middle half of the run, from each frame's last output beat; NaN below 4
frames), ``total_cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbnn.hls.maxpool.config import MaxPoolConfig
from sbnn.hls.maxpool.estimates import cycles_per_frame, latency
from sbnn.hls.maxpool.rtlgen import generate_maxpool
from sbnn.hls.sparse_mvau.rtlsim import testbench_cpp
from sbnn.hls.streams import pack_stream, unpack_stream
from sbnn.hls.verilator import RtlsimError, TbStream, build_simulator, run_testbench, steady_cycles_per_frame

PORTS = ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready")


@dataclass
class PoolJob:
    """One node instance and its stimulus: inputs (N, H, W, C) of 0/1 bits."""

    cfg: MaxPoolConfig
    inputs: np.ndarray
    backpressure: float = 0.0   # P(m_axis_tready low) per cycle
    gaps: float = 0.0           # P(s_axis_tvalid held low) per cycle while idle
    seed: int = 0


@dataclass
class PoolResult:
    outputs: np.ndarray          # (N, Ho, Wo, C)
    latency: int
    cycles_per_frame: float
    total_cycles: int
    frame_cycles: np.ndarray = field(repr=False)   # cycle of each frame's last output beat
    sim_cycles: int = 0


def top_verilog(cfgs: list[MaxPoolConfig]) -> str:
    """All node modules plus ``sim_top`` with ports ``i<k>_<port>`` per instance (the testbench's names)."""
    parts = [generate_maxpool(c, name=f"maxpool_i{k}") for k, c in enumerate(cfgs)]
    ports = ["  input wire ap_clk", "  input wire ap_rst_n"]
    insts = []
    for k, c in enumerate(cfgs):
        t = c.tdata_width
        ports += [f"  input wire [{t - 1}:0] i{k}_s_axis_tdata", f"  input wire i{k}_s_axis_tvalid",
                  f"  output wire i{k}_s_axis_tready", f"  output wire [{t - 1}:0] i{k}_m_axis_tdata",
                  f"  output wire i{k}_m_axis_tvalid", f"  input wire i{k}_m_axis_tready"]
        conns = ", ".join(f".{p}(i{k}_{p})" for p in PORTS)
        insts.append(f"  maxpool_i{k} u{k} (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), {conns});")
    top = "module sim_top (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(insts) + "\nendmodule\n"
    return "".join(parts) + top


def build_model(cfgs: list[MaxPoolConfig], build_dir: str | Path | None = None) -> Path:
    """Compile (or reuse from cache) the model of these nodes; returns the executable."""
    rtl, tb = top_verilog(cfgs), testbench_cpp(len(cfgs))

    def populate(work: Path) -> None:
        (work / "sim_top.v").write_text(rtl)
        (work / "tb.cpp").write_text(tb)

    exe, _ = build_simulator(["sim_top.v", "tb.cpp"], populate, "\0".join([rtl, tb]).encode(), build_dir=build_dir,
                             key_prefix="maxpool_", what="the max-pool model")
    return exe


def simulate_many(jobs: list[PoolJob], build_dir: str | Path | None = None, max_cycles: int | None = None,
                  drain_cycles: int | None = None) -> list[PoolResult]:
    """Run all jobs in one shared model (one build); results in job order.

    Raises :class:`sbnn.hls.verilator.RtlsimTimeout` when ``max_cycles`` pass first (default: a
    generous bound from the cycle model), :class:`RtlsimError` on lost or extra output beats.
    """
    for j in jobs:
        want = (j.cfg.H, j.cfg.W, j.cfg.C)
        if np.asarray(j.inputs).shape[1:] != want:
            raise ValueError(f"{j.cfg.name}: inputs must be (N, {want[0]}, {want[1]}, {want[2]}), "
                             f"got {np.asarray(j.inputs).shape}")
    exe = build_model([j.cfg for j in jobs], build_dir)
    if max_cycles is None:
        worst = max((len(j.inputs) + 2) * (cycles_per_frame(j.cfg) + latency(j.cfg) + 4)
                    / max(1e-3, (1 - j.backpressure) * (1 - j.gaps)) for j in jobs)
        max_cycles = int(20 * worst) + 1000
    if drain_cycles is None:
        drain_cycles = 2 * max(cycles_per_frame(j.cfg) for j in jobs) + 50
    streams = [TbStream(pack_stream(np.asarray(j.inputs).reshape(-1, j.cfg.PE), j.cfg.PE, 1, j.cfg.tdata_width),
                        len(j.inputs) * j.cfg.out_beats, (j.cfg.tdata_width + 31) // 32, j.backpressure, j.gaps,
                        j.seed) for j in jobs]
    run = run_testbench(exe, streams, max_cycles, drain_cycles)
    return [_result(j, out, run.sim_cycles) for j, out in zip(jobs, run.outputs)]


def simulate(cfg: MaxPoolConfig, inputs: np.ndarray, backpressure: float = 0.0, gaps: float = 0.0, seed: int = 0,
             **kw) -> PoolResult:
    """Stream ``inputs`` (N, H, W, C) through one node; see :func:`simulate_many` for kw."""
    return simulate_many([PoolJob(cfg, np.asarray(inputs), backpressure, gaps, seed)], **kw)[0]


def _result(job: PoolJob, out, sim_cycles: int) -> PoolResult:
    cfg, n = job.cfg, len(job.inputs)
    if len(out.words) != n * cfg.out_beats:
        raise RtlsimError(f"{cfg.name}: {len(out.words)} output beats for {n} frames x {cfg.out_beats} beats "
                          f"(expected {n * cfg.out_beats}): lost or duplicated frames")
    vals = unpack_stream(out.words, cfg.PE, 1, False).reshape(n, cfg.Ho, cfg.Wo, cfg.C)
    fc = out.cycles.reshape(n, cfg.out_beats)[:, -1] if n else np.zeros(0, np.int64)
    return PoolResult(outputs=vals, latency=out.latency, cycles_per_frame=steady_cycles_per_frame(fc),
                      total_cycles=int(fc[-1]) + 1 if n else 0, frame_cycles=fc, sim_cycles=sim_cycles)
