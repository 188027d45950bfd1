"""C simulation of the HLS C++ twin (``hls_twin/sparse_xnor_mvau.hpp``) with g++.

The twin is a header-only finn-hlslib-style kernel for Vitis HLS users. This
module generates, from a :class:`SparseMVAUConfig`, the per-node parameter
header (compressed mask blocks in schedule order, R, T, inv or the
noActivation constant, and a top function with AXI-Stream interface pragmas)
plus a C++ testbench, compiles them with ``g++ -O2 -std=c++14`` against the
``ap_int.h``/``hls_stream.h`` C-simulation headers shipped in the hls4ml wheel
(no Xilinx install needed), and runs them. Outputs are decoded from the raw
output beats with the FINN packing, so the stream layout is checked too, and
come back shaped like :func:`reference.sparse_mvau_reference`.

Several nodes share one testbench binary (one instance each, ``csim_many``),
so a regression costs one g++ run. Builds are cached by a hash of every
source, the compiler command and the header location in
``$SBNN_BUILD_DIR/hls_csim`` (else ``<checkout>/build/hls_csim``); stimuli are
runtime files, so reruns never recompile.

Overrides: ``SBNN_AP_TYPES_DIR`` (directory holding ``ap_int.h`` and
``hls_stream.h``), ``SBNN_CXX`` (compiler, default ``g++``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sbnn.hls.build_cache import cached_build
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig, signed_width
from sbnn.hls.streams import bits_to_elements
from sbnn.hls.verilator import default_build_dir, output_tail

HERE = Path(__file__).parent
TWIN_DIR = HERE / "hls_twin"
KERNEL_HEADER = TWIN_DIR / "sparse_xnor_mvau.hpp"
CXX_FLAGS = ["-O2", "-std=c++14", "-w"]
# hls4ml's ap_int.h defaults to ap_[u]int widths <= 1024; wider stream words
# (PE*OW, SIMD) need AP_INT_MAX_W raised before the first include.
AP_INT_DEFAULT_MAX_W = 1024


class HlsCsimToolError(RuntimeError):
    """g++ or the ap_types C-simulation headers are missing."""


class HlsCsimError(RuntimeError):
    """The testbench failed to compile or misbehaved at run time."""


# ---- tools ------------------------------------------------------------------
def find_ap_types() -> Path:
    """Directory with ap_int.h and hls_stream.h (hls4ml wheel, or $SBNN_AP_TYPES_DIR)."""
    env = os.environ.get("SBNN_AP_TYPES_DIR")
    if env:
        cands = [Path(env)]
    else:
        spec = importlib.util.find_spec("hls4ml")  # locate without importing hls4ml (slow, heavy deps)
        if spec is None or not spec.submodule_search_locations:
            raise HlsCsimToolError("HLS csim needs the ap_types headers of the `hls4ml` wheel, which is not installed: "
                                   "run `make setup` or set SBNN_AP_TYPES_DIR to a directory with ap_int.h and hls_stream.h")
        pkg = Path(next(iter(spec.submodule_search_locations)))
        preferred = pkg / "templates" / "vivado" / "ap_types"
        cands = [preferred] + sorted(p.parent for p in pkg.rglob("ap_int.h") if p.parent != preferred)
    for d in cands:
        if (d / "ap_int.h").is_file() and (d / "hls_stream.h").is_file():
            return d
    raise HlsCsimToolError(f"no directory with both ap_int.h and hls_stream.h among {[str(c) for c in cands]}: "
                           "reinstall hls4ml (`make setup`) or set SBNN_AP_TYPES_DIR")


def find_cxx() -> str:
    cxx = os.environ.get("SBNN_CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise HlsCsimToolError(f"HLS csim needs a C++14 compiler: `{cxx}` not found on PATH "
                               "(install g++, e.g. `apt-get install g++`, or set SBNN_CXX)")
    return path


# ---- source generation ------------------------------------------------------
def _hex(v: int, bits: int) -> str:
    # Integer literals where they fit: g++ compiles big tables of string-initialised
    # ap_uint (parsed by a constructor each) about 4x slower.
    return f"0x{v:x}ull" if bits <= 64 else f'"0x{v:x}"'


def _int(v: int) -> str:
    # Beyond 32 bits, go through ap_int's string constructor: no literal-width or
    # long-long-width limits for wide accumulators.
    return f"{int(v)}ll" if -(1 << 31) <= v < (1 << 31) else f'"{int(v)}"'


def _array(rows: list[list[str]], indent: str = "    ") -> str:
    return "{\n" + ",\n".join(indent + "{" + ", ".join(r) + "}" for r in rows) + "}"


def kernel_widths(cfg: SparseMVAUConfig) -> dict[str, int]:
    """Template arguments of the kernel for this node (all derived from the config)."""
    r = cfg.alpha_num
    w = {"MW": cfg.MW, "MH": cfg.MH, "SIMD": cfg.SIMD, "PE": cfg.PE, "K": cfg.alpha_shift,
         "SF": cfg.SF, "NF": cfg.NF, "NSTEPS": len(cfg.schedule()), "AW": cfg.acc_width,
         "RW": signed_width(int(r.min()), int(r.max())), "OW": cfg.out_width}
    if cfg.no_activation:
        oc = cfg.out_const
        w["CCW"] = signed_width(int(oc.min()), int(oc.max()))
    return w


def max_ap_width(cfgs: list[SparseMVAUConfig]) -> int:
    return max(max(c.SIMD, c.PE * c.out_width, c.acc_width + 2) for c in cfgs)


def _round_max_w(bits: int) -> int:
    return (bits + 1023) // 1024 * 1024


def require_bit_inputs(cfg: SparseMVAUConfig) -> None:
    """The twin models {alpha, beta} layers on bit inputs only: a clear error for integer-input configs
    (in_bits > 1) and ternary ones (signs)."""
    if cfg.integer_input:
        raise HlsCsimError(f"{cfg.name}: the HLS twin supports bit inputs only, not {cfg.in_bits}-bit integer "
                           "inputs; use the Verilator rtlsim (rtlsim.py) for integer-input nodes")
    if getattr(cfg, "signs", None) is not None:
        raise HlsCsimError(f"{cfg.name}: the HLS twin has no sign bits (ternary layers); use the Verilator rtlsim "
                           "(rtlsim.py) for ternary nodes")


def params_header(cfg: SparseMVAUConfig, name: str | None = None) -> str:
    """``<name>_params.h``: constant weight/neuron data and the top function ``<name>``.

    Include it from exactly one translation unit (it defines the top function).
    """
    require_bit_inputs(cfg)
    name = name or cfg.name
    w = kernel_widths(cfg)
    pe, nf_n = cfg.PE, cfg.NF
    steps = cfg.schedule()
    blocks = []   # [PE][NSTEPS]
    for p in range(pe):
        row = []
        for nf, sf in steps:
            col = cfg.mask[sf * cfg.SIMD:(sf + 1) * cfg.SIMD, nf * pe + p]
            row.append(_hex(int(sum(int(b) << i for i, b in enumerate(col))), cfg.SIMD))
        blocks.append(row)
    sfs = [str(sf) for _, sf in steps]
    last = [str(int(i + 1 == len(steps) or steps[i + 1][0] != nf)) for i, (nf, _) in enumerate(steps)]

    def per_neuron(vals: np.ndarray) -> str:   # (MH,) -> [PE][NF], neuron nf*PE+p
        return _array([[_int(vals[nf * pe + p]) for nf in range(nf_n)] for p in range(pe)])

    if cfg.no_activation:
        ptype = f"SparseNoActivation<{pe}, {nf_n}, {w['RW']}, {w['AW']}, {w['OW']}, {w['CCW']}>"
        pinit = f"{per_neuron(cfg.alpha_num)},\n  {per_neuron(cfg.out_const)}"
        what = f"noActivation, OW={w['OW']}"
    else:
        ptype = f"SparseThresholds<{pe}, {nf_n}, {w['RW']}, {w['AW']}>"
        pinit = f"{per_neuron(cfg.alpha_num)},\n  {per_neuron(cfg.clipped_thresholds)},\n  {per_neuron(cfg.invert)}"
        what = "thresholded"
    guard = f"SPARSE_MVAU_PARAMS_{name.upper()}_H"
    wide = ""
    if max_ap_width([cfg]) > AP_INT_DEFAULT_MAX_W:   # only effective if nothing included ap_int.h before
        wide = f"#ifndef AP_INT_MAX_W\n#define AP_INT_MAX_W {_round_max_w(max_ap_width([cfg]))}\n#endif\n"
    nnz_blocks = sum(1 for nf, sf in steps if cfg.block(nf, sf).any())
    return f"""// Generated by sbnn.hls.sparse_mvau.hls_csim from a SparseMVAUConfig: do not edit.
// {name}: MW={cfg.MW} MH={cfg.MH} PE={pe} SIMD={cfg.SIMD} K={cfg.alpha_shift} ({what}),
// {w['NSTEPS']} steps ({nnz_blocks} non-zero of {cfg.NF * cfg.SF} PE x SIMD blocks), acc width {w['AW']}.
#ifndef {guard}
#define {guard}
{wide}
#include "sparse_xnor_mvau.hpp"

namespace {name}_ns {{
unsigned const MW = {cfg.MW}, MH = {cfg.MH}, SIMD = {cfg.SIMD}, PE = {pe}, K = {cfg.alpha_shift};
unsigned const SF = {cfg.SF}, NF = {nf_n}, NSTEPS = {w['NSTEPS']}, AW = {w['AW']}, OW = {w['OW']};
typedef {ptype} Params;

static SparseMaskMemory<SIMD, PE, NSTEPS, SF> const weights = {{
  {_array(blocks)},
  {{{", ".join(sfs)}}},
  {{{", ".join(last)}}}
}};

static Params const params = {{
  {pinit}
}};
}}  // namespace {name}_ns

// Top function for Vitis HLS: numReps input vectors in, numReps*NF beats out.
void {name}(hls::stream<ap_uint<{name}_ns::SIMD>> &in,
    hls::stream<ap_uint<{name}_ns::PE * {name}_ns::OW>> &out, unsigned const numReps) {{
#pragma HLS INTERFACE axis port=in
#pragma HLS INTERFACE axis port=out
#pragma HLS INTERFACE s_axilite port=numReps bundle=control
#pragma HLS INTERFACE s_axilite port=return bundle=control
  using namespace {name}_ns;
  SparseXnorMVAU<MW, MH, SIMD, PE, K, NSTEPS, AW, Params>(in, out, weights, params, numReps);
}}

#endif  // {guard}
"""


def testbench_cpp(names: list[str], cfgs: list[SparseMVAUConfig]) -> str:
    """main(): ``tb INST IN OUT [INST IN OUT ...]``.

    IN: one vector per line, MW characters '0'/'1', element 0 first. OUT: one
    output beat per line, PE*OW characters, bit 0 first. The testbench packs
    the input beats itself (FINN layout) and checks the beat count.
    """
    maxw = max_ap_width(cfgs)
    pre = ""
    if maxw > AP_INT_DEFAULT_MAX_W:
        pre = f"#define AP_INT_MAX_W {_round_max_w(maxw)}\n"
    incs = "\n".join(f'#include "{n}_params.h"' for n in names)
    cases = "\n".join(
        f"      case {k}: rc = sxm_tb_run<{n}_ns::MW, {n}_ns::SIMD, {n}_ns::PE * {n}_ns::OW, {n}_ns::NF>(\n"
        f"          ::{n}, argv[arg + 1], argv[arg + 2]); break;"
        for k, n in enumerate(names))
    return f"""// Generated C-simulation testbench for the sparse XNOR MVAU twin: do not edit.
{pre}#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
{incs}

template<unsigned MW, unsigned SIMD, unsigned OWP, unsigned NF, typename F>
static int sxm_tb_run(F kernel, char const *inpath, char const *outpath) {{
  std::ifstream fin(inpath);
  std::ofstream fout(outpath);
  if (!fin || !fout) {{ std::cerr << "cannot open " << inpath << " or " << outpath << std::endl; return 2; }}
  hls::stream<ap_uint<SIMD>> in("in");
  hls::stream<ap_uint<OWP>> out("out");
  std::string line;
  unsigned n = 0;
  while (fin >> line) {{
    if (line.size() != MW) {{ std::cerr << "vector " << n << " has " << line.size() << " bits, MW=" << MW << std::endl; return 2; }}
    for (unsigned sf = 0; sf < MW / SIMD; sf++) {{
      ap_uint<SIMD> beat = 0;
      for (unsigned i = 0; i < SIMD; i++) beat[i] = line[sf * SIMD + i] == '1';
      in.write(beat);
    }}
    n++;
  }}
  kernel(in, out, n);
  unsigned beats = 0;
  while (!out.empty()) {{
    ap_uint<OWP> const w = out.read();
    for (unsigned b = 0; b < OWP; b++) fout << (w[b] ? '1' : '0');
    fout << '\\n';
    beats++;
  }}
  if (!in.empty()) {{ std::cerr << "kernel left input beats unread" << std::endl; return 3; }}
  if (beats != n * NF) {{ std::cerr << "got " << beats << " output beats, expected " << n * NF << std::endl; return 3; }}
  return 0;
}}

int main(int argc, char **argv) {{
  if (argc < 4 || (argc - 1) % 3) {{ std::cerr << "usage: " << argv[0] << " INST IN OUT [INST IN OUT ...]" << std::endl; return 2; }}
  for (int arg = 1; arg < argc; arg += 3) {{
    int rc = 2;
    switch (std::atoi(argv[arg])) {{
{cases}
      default: std::cerr << "no instance " << argv[arg] << std::endl;
    }}
    if (rc) return rc;
  }}
  return 0;
}}
"""


def instance_names(cfgs: list[SparseMVAUConfig]) -> list[str]:
    """Names used by csim builds: ``smvau_i<k>`` (cfg.name may repeat or clash with testbench symbols)."""
    return [f"smvau_i{k}" for k in range(len(cfgs))]


def write_sources(cfgs: SparseMVAUConfig | list[SparseMVAUConfig], out_dir: str | Path,
                  names: list[str] | None = None) -> list[Path]:
    """Write ``<name>_params.h`` per node, ``tb.cpp`` and a copy of the kernel header.

    The directory is self-contained apart from the ap_types headers: see
    :func:`compile_command`. For Vitis HLS, add the header and a .cpp that
    includes ``<name>_params.h``, and set ``<name>`` as top function.
    """
    cfgs = [cfgs] if isinstance(cfgs, SparseMVAUConfig) else list(cfgs)
    names = list(names) if names is not None else [c.name for c in cfgs]
    if len(set(names)) != len(names) or len(names) != len(cfgs):
        raise ValueError(f"instance names must be unique, one per config, got {names}")
    clash = [n for n in names if n == "main" or n.startswith(("sxm_", "Sparse"))]
    if clash:
        raise ValueError(f"instance names {clash} clash with testbench/kernel symbols: rename the configs")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / KERNEL_HEADER.name]
    paths[0].write_text(KERNEL_HEADER.read_text())
    for n, c in zip(names, cfgs):
        p = out / f"{n}_params.h"
        p.write_text(params_header(c, n))
        paths.append(p)
    tb = out / "tb.cpp"
    tb.write_text(testbench_cpp(names, cfgs))
    return paths + [tb]


def compile_command(src_dir: str | Path, exe: str = "tb") -> list[str]:
    """g++ command that builds the testbench in ``src_dir`` (run with cwd=src_dir)."""
    return [find_cxx(), *CXX_FLAGS, "-I.", f"-I{find_ap_types()}", "tb.cpp", "-o", exe]


def build(cfgs: list[SparseMVAUConfig], build_dir: str | Path | None = None) -> Path:
    """Compile (or reuse from cache) one testbench for these nodes; returns the executable."""
    cmd = compile_command(".")
    names = instance_names(cfgs)
    sources = [KERNEL_HEADER.read_text(), testbench_cpp(names, cfgs)] + [params_header(c, n) for n, c in zip(names, cfgs)]
    key = hashlib.sha256("\0".join(sources + cmd).encode()).hexdigest()[:20]

    def error(log: Path, res: subprocess.CompletedProcess) -> HlsCsimError:
        return HlsCsimError(f"g++ failed (exit {res.returncode}; whole output in {log}): "
                            f"{' '.join(cmd)}\n{output_tail(res, 4000)}")

    exe, _ = cached_build(build_dir or default_build_dir("hls_csim"), key, "tb",
                          lambda work: write_sources(cfgs, work, names), cmd, error)
    return exe


# ---- stimulus / decoding ----------------------------------------------------
def _check_inputs(cfg: SparseMVAUConfig, a_bits: np.ndarray) -> np.ndarray:
    require_bit_inputs(cfg)
    a = np.asarray(a_bits)
    if a.ndim == 0 or a.shape[-1] != cfg.MW:
        raise ValueError(f"inputs must have shape (..., MW={cfg.MW}), got {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError("inputs must be 0/1 bits")
    return a.astype(np.uint8)


def decode_beats(cfg: SparseMVAUConfig, lines: list[str], lead_shape: tuple[int, ...]) -> np.ndarray:
    """Output beats ('0'/'1' strings, bit 0 first) -> (..., MH) values like the reference."""
    n = int(np.prod(lead_shape, dtype=np.int64))
    ow, owp = cfg.out_width, cfg.PE * cfg.out_width
    if len(lines) != n * cfg.NF or any(len(s) != owp for s in lines):
        raise HlsCsimError(f"expected {n * cfg.NF} output beats of {owp} bits, got {len(lines)}")
    bits = (np.frombuffer("".join(lines).encode(), dtype=np.uint8) - ord("0")).reshape(n * cfg.NF, owp)
    vals = bits_to_elements(bits, cfg.PE, ow, cfg.no_activation)
    return vals.reshape(*lead_shape, cfg.MH)   # beat nf holds neurons nf*PE .. nf*PE+PE-1


def csim_many(jobs: list[tuple[SparseMVAUConfig, np.ndarray]], build_dir: str | Path | None = None) -> list[np.ndarray]:
    """C-simulate several (config, inputs (..., MW)) pairs with one shared build."""
    if not jobs:
        return []
    cfgs = [c for c, _ in jobs]
    ins = [_check_inputs(c, a) for c, a in jobs]
    exe = build(cfgs, build_dir)
    with tempfile.TemporaryDirectory(prefix="run.", dir=exe.parent) as tmp:
        argv = [str(exe)]
        for k, a in enumerate(ins):
            flat = a.reshape(-1, a.shape[-1])
            text = "".join("".join("01"[b] for b in row) + "\n" for row in flat)
            (Path(tmp) / f"in{k}.txt").write_text(text)
            argv += [str(k), str(Path(tmp) / f"in{k}.txt"), str(Path(tmp) / f"out{k}.txt")]
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode != 0:
            raise HlsCsimError(f"csim testbench {exe} failed (exit {res.returncode}): {output_tail(res)}")
        if "WARNING" in res.stdout:  # hls::stream reports reads from empty streams / leftovers this way
            raise HlsCsimError(f"csim testbench {exe} reported stream misuse: {res.stdout[-3000:]}")
        return [decode_beats(c, (Path(tmp) / f"out{k}.txt").read_text().split(), a.shape[:-1])
                for k, (c, a) in enumerate(zip(cfgs, ins))]


def csim(cfg: SparseMVAUConfig, inputs_bits: np.ndarray, build_dir: str | Path | None = None) -> np.ndarray:
    """Outputs of the HLS twin for ``inputs_bits[..., MW]``, shaped like the reference's."""
    return csim_many([(cfg, inputs_bits)], build_dir)[0]
