"""Vivado project generation and run: stitched accelerator RTL -> IP -> Zynq block design -> .bit + .hwh.

Stage functions for ``sbnn build`` (and usable alone):

* :func:`generate_vivado_project` writes a self-contained project folder::

      <project>/build_vivado.tcl      single entry: vivado -mode batch -source build_vivado.tcl
      <project>/rtl/src/...           copy of the stitched RTL (.v/.sv/.vh/.svh/.dat/.mem)
      <project>/rtl/<wrapper>.v       AXI DMA adapter (stream width padding, TLAST counter)
      <project>/project.json          what was generated: board, widths, stream specs, artifact names
      <project>/README.md

  The Tcl (template ``templates/build_vivado.tcl.in``) packages the RTL as an
  IP, builds a block design (PS7 or PS8 with the board preset when its board
  files are installed, AXI DMA on the board's HP port, FCLK at the board's
  clock, proc_sys_reset, SmartConnects, address assignment), makes the HDL
  wrapper, runs synthesis, implementation and write_bitstream, and copies
  ``<design>.bit`` and ``<design>.hwh`` to ``<project>/output/``.
* :func:`run_vivado` runs it when ``vivado`` is on PATH; without Vivado it
  returns a ``project_ready`` status (not an error: the caller decides).

Memory layout of the streams (packing.py): every DMA beat is the accelerator's
TDATA width rounded up to a power of two (AXI DMA stream widths are powers of
two); the wrapper drops/zero-fills the extra bits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sbnn.artifacts import write_text_atomic
from sbnn.errors import UserError

from sbnn.export.notice import warn

from .boards import Board, get_board
from .hwh import check_fclk
from .packing import StreamSpec, pow2_at_least

TEMPLATES = Path(__file__).parent / "templates"
TCL_NAME = "build_vivado.tcl"
PROJECT_JSON = "project.json"
VIVADO_ARGS = ["-mode", "batch", "-source", TCL_NAME]
VIVADO_COMMAND = "vivado " + " ".join(VIVADO_ARGS)
RTL_SUFFIXES = (".v", ".sv", ".vh", ".svh", ".dat", ".mem")
DEFAULT_DESIGN = "sbnn_accel"
DMA_STREAM_MAX_BITS = 1024
DMA_LENGTH_BITS = 26          # AXI DMA c_sg_length_width: at most 2**26 - 1 bytes per transfer


# ---- processing-system ports per board family -------------------------------------
@dataclass(frozen=True)
class PSPorts:
    name: str
    vlnv: str
    rule: str
    clk: str
    resetn: str
    master: str
    master_aclk: str
    slave: str
    slave_aclk: str
    config: dict
    dma_addr_bits: int
    clock_config: dict        # the fabric clock's CONFIG, applied key by key in this order after ``config``


def ps_ports(board: Board) -> PSPorts:
    """PS cell, pins and CONFIG for the board's PS type, fabric clock and memory port."""
    fclk = _fmt_mhz(board.fclk_mhz)
    if board.ps == "ps7":
        m = re.fullmatch(r"S_AXI_HP([0-3])", board.memory)
        if not m:
            raise UserError(f"board {board.name}: memory port {board.memory!r} is not a Zynq-7000 HP port "
                            "(S_AXI_HP0..S_AXI_HP3)")
        n = m.group(1)
        return PSPorts("Zynq-7000 PS (processing_system7)", "xilinx.com:ip:processing_system7:*",
                       "xilinx.com:bd_rule:processing_system7", "FCLK_CLK0", "FCLK_RESET0_N",
                       "M_AXI_GP0", "M_AXI_GP0_ACLK", f"S_AXI_HP{n}", f"S_AXI_HP{n}_ACLK",
                       {"PCW_EN_CLK0_PORT": "1", "PCW_EN_RST0_PORT": "1",
                        "PCW_USE_M_AXI_GP0": "1", f"PCW_USE_S_AXI_HP{n}": "1",
                        f"PCW_S_AXI_HP{n}_DATA_WIDTH": "64"}, 32,
                       {"PCW_FPGA0_PERIPHERAL_FREQMHZ": fclk})
    if board.ps == "ps8":
        m = re.fullmatch(r"S_AXI_HP([0-3])_FPD", board.memory)
        mc = re.fullmatch(r"S_AXI_HPC([01])_FPD", board.memory)
        if m:
            n, gp, aclk = m.group(1), int(m.group(1)) + 2, f"saxihp{m.group(1)}_fpd_aclk"
        elif mc:
            n, gp, aclk = mc.group(1), int(mc.group(1)), f"saxihpc{mc.group(1)}_fpd_aclk"
        else:
            raise UserError(f"board {board.name}: memory port {board.memory!r} is not a Zynq UltraScale+ "
                            "HP/HPC port (S_AXI_HP0_FPD..S_AXI_HP3_FPD, S_AXI_HPC0_FPD, S_AXI_HPC1_FPD)")
        del n
        return PSPorts("Zynq UltraScale+ PS (zynq_ultra_ps_e)", "xilinx.com:ip:zynq_ultra_ps_e:*",
                       "xilinx.com:bd_rule:zynq_ultra_ps_e", "pl_clk0", "pl_resetn0",
                       "M_AXI_HPM0_FPD", "maxihpm0_fpd_aclk", board.memory, aclk,
                       {"PSU__FPGA_PL0_ENABLE": "1",
                        "PSU__USE__M_AXI_GP0": "1", "PSU__USE__M_AXI_GP1": "0", "PSU__USE__M_AXI_GP2": "0",
                        f"PSU__USE__S_AXI_GP{gp}": "1", f"PSU__SAXIGP{gp}__DATA_WIDTH": "128"}, 64,
                       # as FINN's Zynq flow: without the override the board preset's basic clocks win
                       {"PSU__OVERRIDE__BASIC_CLOCK": "0", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": fclk})
    raise UserError(f"board {board.name}: unknown processing system {board.ps!r} (expected ps7 or ps8)")


def _fmt_mhz(f: float) -> str:
    return f"{float(f):g}"


# ---- stream description -------------------------------------------------------------
@dataclass(frozen=True)
class PortIO:
    """One accelerator stream as the Vivado project sees it."""

    tdata_bits: int            # the stitched top's TDATA width (multiple of 8)
    dma_bits: int              # the DMA stream width (power of two >= tdata_bits)
    spec: StreamSpec | None    # full description (shape, element type, fold), needed by the deploy package


def _port_io(value, what: str) -> PortIO:
    if isinstance(value, dict):
        value = StreamSpec.from_dict(value)
    if isinstance(value, StreamSpec):
        spec, bits = value, value.tdata_bits
        dma = value.dma_bits
    elif isinstance(value, int) and not isinstance(value, bool):
        spec, bits, dma = None, value, pow2_at_least(value)
    else:
        raise UserError(f"io_widths[{what!r}] must be a StreamSpec, its dict or a TDATA width in bits, "
                        f"got {type(value).__name__}")
    if bits < 8 or bits % 8:
        raise UserError(f"{what} stream: TDATA width {bits} bits is not a positive multiple of 8 (FINN pads to bytes)")
    if dma > DMA_STREAM_MAX_BITS or dma & (dma - 1):
        raise UserError(f"{what} stream: {bits}-bit TDATA needs a {dma}-bit DMA stream; the AXI DMA supports "
                        f"power-of-two widths up to {DMA_STREAM_MAX_BITS} bits: lower the first/last layer's "
                        "SIMD/PE")
    return PortIO(bits, dma, spec)


def normalize_io(io_widths) -> tuple[PortIO, PortIO]:
    """``{"input": .., "output": ..}`` (or a 2-tuple) of StreamSpec / dict / TDATA bits -> (in, out)."""
    if isinstance(io_widths, (tuple, list)) and len(io_widths) == 2:
        i, o = io_widths
    elif isinstance(io_widths, dict) and {"input", "output"} <= set(io_widths):
        i, o = io_widths["input"], io_widths["output"]
    else:
        raise UserError("io_widths must be {'input': ..., 'output': ...} (StreamSpec, dict or TDATA bits each)")
    return _port_io(i, "input"), _port_io(o, "output")


def io_from_stitched(design) -> dict:
    """Stream specs of a :class:`sbnn.hls.stitch.StitchedDesign` (or its stitch.json dict)."""
    d = design if isinstance(design, dict) else design.__dict__
    ops = [n["op_type"] if isinstance(n, dict) else n.op_type for n in d.get("nodes") or []]
    # the last computing layer (FIFOs and width converters only move data)
    compute = [op for op in ops if not op.startswith(("StreamingFIFO", "StreamingDataWidthConverter"))]
    last_op = compute[-1] if compute else ""
    out = {}
    for side in ("in", "out"):
        dtype = d[f"{side}_dtype"]
        kind, bits = _finn_dtype(dtype)
        shape = [int(v) for v in d[f"{side}_shape"]]
        if len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]  # drop the batch dimension
        fold, beats = int(d[f"{side}_fold"]), int(d[f"{side}_beats"])
        spec = StreamSpec(tuple(shape), bits, fold, kind)
        if spec.beats != beats or spec.tdata_bits != int(d[f"{side}_width"]):
            raise UserError(f"stitched design {side}put: shape {shape} with fold {fold} gives {spec.beats} beats of "
                            f"{spec.tdata_bits} bits, the design says {beats} beats of {d[f'{side}_width']} bits")
        out["input" if side == "in" else "output"] = spec
    out["meaning"] = "class_index" if last_op.startswith("LabelSelect") else "scores"
    return out


def _finn_dtype(name: str) -> tuple[str, int]:
    if name == "BIPOLAR":
        return "bipolar", 1
    if name == "BINARY":
        return "binary", 1
    m = re.fullmatch(r"(U?)INT(\d+)", name)
    if not m:
        raise UserError(f"stream datatype {name} is not supported on the DMA interface (integers, BINARY, BIPOLAR)")
    return ("uint" if m.group(1) else "int"), int(m.group(2))


# ---- the stitched top's ports ----------------------------------------------------------
@dataclass
class TopPorts:
    in_prefix: str
    out_prefix: str
    in_bits: int | None
    out_bits: int | None
    file: Path


_DECL = re.compile(r"\b(input|output|inout)\b\s*(?:wire|reg|logic)?\s*(?:signed\s*)?(\[[^\]]*\])?\s*([A-Za-z_]\w*)")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _width(rng: str | None) -> int | None:
    if rng is None:
        return 1
    m = re.fullmatch(r"\[\s*(\d+)\s*(?:-\s*1\s*)?:\s*0\s*\]", rng)
    if not m:
        return None
    hi = int(m.group(1))
    return hi if "-" in rng else hi + 1


def find_top_ports(rtl_dir: Path, top: str) -> TopPorts:
    """Locate ``module <top>`` in the RTL folder and its AXI-Stream/clock/reset ports (one-line errors)."""
    files = sorted(p for p in Path(rtl_dir).rglob("*") if p.suffix in (".v", ".sv"))
    for f in files:
        text = _strip_comments(f.read_text(errors="replace"))
        m = re.search(rf"\bmodule\s+{re.escape(top)}\b(.*?)\bendmodule\b", text, flags=re.S)
        if not m:
            continue
        ports = {name: (d, _width(r)) for d, r, name in _DECL.findall(m.group(1))}
        for clk in ("ap_clk", "ap_rst_n"):
            if clk not in ports:
                raise UserError(f"top module {top} in {f} has no {clk} port; the accelerator must use FINN's "
                                "ap_clk / ap_rst_n (active-low) naming")
        ins = [n[:-6] for n, (d, _) in ports.items() if d == "input" and n.endswith("_tdata")]
        outs = [n[:-6] for n, (d, _) in ports.items() if d == "output" and n.endswith("_tdata")]
        if len(ins) != 1 or len(outs) != 1:
            raise UserError(f"top module {top} in {f} must have exactly one AXI-Stream input and one output "
                            f"(*_tdata ports), found inputs {ins or 'none'} and outputs {outs or 'none'}")
        for p, sig, d in ((ins[0], "tvalid", "input"), (ins[0], "tready", "output"),
                          (outs[0], "tvalid", "output"), (outs[0], "tready", "input")):
            if ports.get(f"{p}_{sig}", ("", 0))[0] != d:
                raise UserError(f"top module {top} in {f}: missing {d} {p}_{sig}")
        return TopPorts(ins[0], outs[0], ports[f"{ins[0]}_tdata"][1], ports[f"{outs[0]}_tdata"][1], f)
    raise UserError(f"top module {top} not found in the .v/.sv files of {rtl_dir}")


# ---- generation ---------------------------------------------------------------------------
def fill_template(text: str, values: dict) -> str:
    """Replace ``@KEY@`` placeholders; every placeholder must be given."""
    out = re.sub(r"@([A-Z0-9_]+)@", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
    left = sorted(set(re.findall(r"@([A-Z0-9_]+)@", out)))
    if left:
        raise KeyError(f"template placeholders without a value: {', '.join(left)}")
    return out


def wrapper_verilog(wrapper: str, top: str, ports: TopPorts, io_in: PortIO, io_out: PortIO) -> str:
    ob, odb = io_out.tdata_bits, io_out.dma_bits
    pad = "" if io_in.dma_bits == io_in.tdata_bits else (
        f"  wire _unused_pad = &{{1'b0, s_axis_tdata[{io_in.dma_bits - 1}:{io_in.tdata_bits}]}};  "
        "// padding bits of each DMA beat\n")
    out_expr = "core_tdata" if odb == ob else f"{{{{{odb - ob}{{1'b0}}}}, core_tdata}}"
    return fill_template((TEMPLATES / "sbnn_dma_wrapper.v.in").read_text(), {
        "WRAPPER": wrapper, "TOP": top, "IN_PREFIX": ports.in_prefix, "OUT_PREFIX": ports.out_prefix,
        "IN_BITS": io_in.tdata_bits, "IN_DMA_BITS": io_in.dma_bits, "IN_DMA_BYTES": io_in.dma_bits // 8,
        "OUT_BITS": ob, "OUT_DMA_BITS": odb,
        "OUT_DMA_BYTES": odb // 8, "IN_PAD_WAIVER": pad.rstrip("\n"), "OUT_TDATA_EXPR": out_expr})


def _copy_rtl(src: Path, dst: Path) -> list[str]:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    names: dict[str, Path] = {}
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.suffix in RTL_SUFFIXES:
            if p.name in names:
                raise UserError(f"RTL folder {src} holds two files named {p.name} ({names[p.name]} and {p}); "
                                "the Vivado project needs unique file names")
            names[p.name] = p
            shutil.copy2(p, dst / p.name)
    return sorted(names)


def _sources_sha(project: Path) -> str:
    """Hash of what the bitstream is built from: the RTL copied into the project and the build Tcl."""
    h = hashlib.sha256()
    for p in sorted((project / "rtl").rglob("*")) + [project / TCL_NAME]:
        if p.is_file():
            h.update(p.relative_to(project).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def generate_vivado_project(stitched_rtl_dir, top_name: str, io_widths, board, out_dir, *,
                            design_name: str = DEFAULT_DESIGN, jobs: int | None = None,
                            extra: dict | None = None) -> Path:
    """Write the Vivado project folder ``out_dir`` for the stitched accelerator; returns it.

    ``io_widths``: ``{"input": .., "output": ..}``, each a :class:`StreamSpec`
    (or its dict; needed later by the deploy package) or the TDATA width in bits.
    ``board``: a :class:`Board` or a board name. ``extra`` is stored in project.json
    (e.g. the output meaning, the expected accuracy) for the deploy stage.
    """
    board = get_board(board) if isinstance(board, str) else board
    rtl_src = Path(stitched_rtl_dir)
    if not rtl_src.is_dir():
        raise UserError(f"stitched RTL folder {rtl_src} not found; run the stitch stage first")
    if not top_name.isidentifier() or not design_name.isidentifier():
        raise UserError(f"top {top_name!r} and design name {design_name!r} must be Verilog identifiers")
    io_in, io_out = normalize_io(io_widths)
    ports = find_top_ports(rtl_src, top_name)
    for what, io, bits in (("input", io_in, ports.in_bits), ("output", io_out, ports.out_bits)):
        if bits is not None and bits != io.tdata_bits:
            raise UserError(f"{what} stream: top {top_name} has a {bits}-bit TDATA in {ports.file.name}, the stream "
                            f"description says {io.tdata_bits} bits")
    pp = ps_ports(board)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _copy_rtl(rtl_src, out / "rtl" / "src")
    wrapper = f"{top_name}_dma"
    if f"{wrapper}.v" in files:
        raise UserError(f"the stitched RTL already has a file {wrapper}.v; rename the top")
    (out / "rtl" / f"{wrapper}.v").write_text(wrapper_verilog(wrapper, top_name, ports, io_in, io_out))
    jobs = jobs or max(1, min(8, os.cpu_count() or 1))
    ps_cfg = " \\\n".join(f"    CONFIG.{k} {{{v}}}" for k, v in pp.config.items())
    clock_cfg = " \\\n".join(f"    CONFIG.{k} {{{v}}}" for k, v in pp.clock_config.items())
    values = {
        "BOARD": board.name, "PART": board.part, "BOARD_PART": board.board_part, "PS": board.ps,
        "PS_NAME": pp.name, "FCLK_MHZ": _fmt_mhz(board.fclk_mhz), "TOP": top_name, "WRAPPER": wrapper,
        "DESIGN": design_name, "IN_BITS": io_in.tdata_bits, "OUT_BITS": io_out.tdata_bits,
        "IN_DMA_BITS": io_in.dma_bits, "OUT_DMA_BITS": io_out.dma_bits,
        "MM2S_MM_BITS": max(32, io_in.dma_bits), "S2MM_MM_BITS": max(32, io_out.dma_bits),
        "DMA_ADDR_BITS": pp.dma_addr_bits, "JOBS": jobs, "PS_VLNV": pp.vlnv, "PS_RULE": pp.rule,
        "PS_CLK": pp.clk, "PS_RESETN": pp.resetn, "PS_MASTER": pp.master, "PS_MASTER_ACLK": pp.master_aclk,
        "PS_SLAVE": pp.slave, "PS_SLAVE_ACLK": pp.slave_aclk, "PS_CONFIG": ps_cfg + " \\",
        "PS_CLOCK_CONFIG": clock_cfg + " \\",
    }
    (out / TCL_NAME).write_text(fill_template((TEMPLATES / "build_vivado.tcl.in").read_text(), values))
    meta = {
        "design": design_name, "board": board.name, "part": board.part, "board_part": board.board_part,
        "ps": board.ps, "fclk_mhz": board.fclk_mhz, "memory_port": board.memory,
        "top": top_name, "wrapper": wrapper, "source_rtl_dir": str(rtl_src.resolve()), "rtl_files": files,
        "ports": {"input": ports.in_prefix, "output": ports.out_prefix},
        "input": _io_meta(io_in), "output": _io_meta(io_out),
        "ip": {"dma": "dma", "out_beats": "out_beats", "accel": "accel"},
        "dma_max_bytes": (1 << DMA_LENGTH_BITS) - 1,
        "bit": f"output/{design_name}.bit", "hwh": f"output/{design_name}.hwh",
        "command": VIVADO_COMMAND, **(extra or {}),
    }
    meta["sources_sha"] = _sources_sha(out)
    prev = out / PROJECT_JSON
    prev_sha = json.loads(prev.read_text()).get("sources_sha") if prev.is_file() else None
    if prev_sha != meta["sources_sha"]:
        for stale in (out / meta["bit"], out / meta["hwh"]):
            if stale.exists():
                stale.unlink()  # built from other RTL or Tcl: must not reach a deploy package
    # same sources: a bitstream built from this project (by hand, or by an earlier run) is kept
    # project.json decides whether a bitstream is kept: never half-written
    write_text_atomic(out / PROJECT_JSON, json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(fill_template((TEMPLATES / "project_README.md.in").read_text(), {
        "DESIGN": design_name, "BOARD": board.name, "PART": board.part, "FCLK_MHZ": _fmt_mhz(board.fclk_mhz),
        "COMMAND": VIVADO_COMMAND, "TOP": top_name, "WRAPPER": wrapper}))
    return out


def _io_meta(io: PortIO) -> dict:
    d = io.spec.to_dict() if io.spec is not None else {}
    d.update({"tdata_bits": io.tdata_bits, "dma_bits": io.dma_bits})
    return d


def load_project(project_dir) -> dict:
    p = Path(project_dir) / PROJECT_JSON
    if not p.is_file():
        raise UserError(f"{project_dir} is not an sbnn Vivado project (no {PROJECT_JSON}); generate it first")
    return json.loads(p.read_text())


# ---- running Vivado ------------------------------------------------------------------------------
@dataclass
class VivadoResult:
    """Outcome of :func:`run_vivado`: ``status`` is ``built`` or ``project_ready`` (no Vivado here)."""

    status: str
    project_dir: Path
    message: str
    bit: Path | None = None
    hwh: Path | None = None
    log: Path | None = None
    vivado: str | None = None
    wall_s: float = 0.0
    summary: dict = field(default_factory=dict)
    clock: dict | None = None   # built only: the .hwh's fabric clock against the requested one (hwh.ClockCheck)

    @property
    def built(self) -> bool:
        return self.status == "built"

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message, "project_dir": str(self.project_dir),
                "bit": str(self.bit) if self.bit else None, "hwh": str(self.hwh) if self.hwh else None,
                "log": str(self.log) if self.log else None, "vivado": self.vivado,
                "wall_s": round(self.wall_s, 1), "summary": self.summary,
                **({"clock": self.clock} if self.clock is not None else {})}


def find_vivado(vivado: str | None = None) -> str | None:
    """The vivado executable: the argument, else ``vivado`` on PATH, else $XILINX_VIVADO/bin/vivado."""
    if vivado:
        found = shutil.which(vivado)
        if found is None:
            raise UserError(f"vivado executable {vivado} not found")
        return found
    found = shutil.which("vivado")
    if found:
        return found
    xv = os.environ.get("XILINX_VIVADO")
    if xv and os.access(Path(xv) / "bin" / "vivado", os.X_OK):
        return str(Path(xv) / "bin" / "vivado")
    return None


def run_vivado(project_dir, vivado: str | None = None, timeout_s: float | None = None,
               log_name: str = "vivado_build.log") -> VivadoResult:
    """Run ``vivado -mode batch -source build_vivado.tcl`` in the project folder.

    No Vivado: returns status ``project_ready`` with a one-line message (no error).
    Vivado fails, times out or leaves no .bit/.hwh: :class:`UserError` naming the log.
    """
    project_dir = Path(project_dir)
    meta = load_project(project_dir)
    if not (project_dir / TCL_NAME).is_file():
        raise UserError(f"{project_dir / TCL_NAME} missing; regenerate the Vivado project")
    exe = find_vivado(vivado)
    if exe is None:
        return VivadoResult("project_ready", project_dir,
                            f"project ready, vivado not found: run `{VIVADO_COMMAND}` in {project_dir}")
    bit, hwh = project_dir / meta["bit"], project_dir / meta["hwh"]
    for stale in (bit, hwh):
        if stale.exists():
            stale.unlink()  # a stale bitstream must never pass for this run's result
    log = project_dir / log_name
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        try:
            res = subprocess.run([exe, *VIVADO_ARGS], cwd=project_dir, stdout=fh, stderr=subprocess.STDOUT,
                                 timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise UserError(f"vivado did not finish within {timeout_s:g} s; see {log}") from None
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise UserError(f"vivado failed (exit {res.returncode}){_first_error(log)}; see {log}")
    missing = [p for p in (bit, hwh) if not p.is_file()]
    if missing:
        raise UserError(f"vivado finished but {missing[0].relative_to(project_dir)} was not produced; see {log}")
    summary = {}
    sj = bit.parent / "vivado_summary.json"
    if sj.is_file():
        try:
            summary = json.loads(sj.read_text())
        except json.JSONDecodeError:
            summary = {}
    msg = f"bitstream built: {bit} and {hwh.name}"
    wns = summary.get("wns_ns")
    if isinstance(wns, (int, float)) and wns < 0:
        msg += f" (timing NOT met: WNS {wns} ns at {meta['fclk_mhz']} MHz)"
    clock = check_fclk(hwh, float(meta["fclk_mhz"]))
    if not clock.ok:
        warn(clock.message)
        msg += f" (fabric clock NOT as requested: {clock.message})"
    return VivadoResult("built", project_dir, msg, bit, hwh, log, exe, wall, summary, clock.to_dict())


def _first_error(log: Path) -> str:
    try:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("ERROR:"):
                return ": " + line.strip()[:200]
    except OSError:
        pass
    return ""
