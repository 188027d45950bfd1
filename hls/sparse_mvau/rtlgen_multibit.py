"""Verilog generator for the integer-input mode of ``SparseXnorMVAU`` (``cfg.in_bits > 1``).

Bit-true to ``reference.sparse_mvau_reference(..., integer_input=True)``:
``acc_j = 2**k * S_j + R_j * X`` with ``S_j = sum_{b_ij=1} x_i`` and the shared
``X = sum_i x_i``; thresholded ``(acc >= T) ^ inv`` (1 bit), noActivation
``acc`` (two's complement, ``cfg.out_width`` bits).

Same ports, packing and handshake as rtlgen.py (whose docstring describes them),
with B = ``cfg.in_bits``-bit input elements: element i of a beat sits at
``s_axis_tdata[i*B +: B]`` (two's complement when ``cfg.in_signed``), TDATA
padding ignored; ``s_axis_tready``/``m_axis_tvalid`` come from registers. The
stages are those of the binary RTL:

1. receiver: shifts SIMD*B-bit beats into the collection register and
   accumulates X while receiving, in groups of pipeline.INT_GROUP elements
   with one accumulator each (omitted when all R = 0);
2. compute: the shared control (verilog_text.pipelined_control) issues the
   steps of ``cfg.schedule()``, one per cycle, into the pipeline of
   pipeline.py; each PE lane sums one step's elements in groups, adds the
   groups up stage by stage, adds the sum to the fold's running sum ``s`` in
   the last stage and at the fold's last step forms ``acc = (S <<< k) + R*X``
   (R*X by shift-add once per distinct R, in stage D-1) and compares it with
   the fold's threshold at the full accumulator width;
3. the shared 2-entry output FIFO.

Weight modes: ``baked`` wires only the b = 1 elements into each lane's adder,
one constant sum per step (LUTs ~ nnz * B); ``memory`` reads
{last, first, sf, PE*SIMD mask bits} per step from a ROM of the non-zero
blocks (synchronous read, read-ahead, as in the binary RTL) and masks each
element of the selected SIMD-element block before a generic adder tree.

Every value is signed: unsigned elements enter as ``$signed({1'b0, x})``;
widths come from the config (``s_width``, ``x_width``, ``acc_width``) and
from the range of each partial sum, so each sum is exact. Lint waivers (Verilator -Wall), scoped:
WIDTHEXPAND on element sums (the sum of narrow terms is meant to widen),
UNUSEDSIGNAL on TDATA padding, unread compute-buffer bits, ``st_first`` of
one-step folds, the constant sf field of an SF = 1 ROM, and the high bits of
a noActivation accumulator wider than the output.
"""

from __future__ import annotations

import numpy as np

from sbnn.hls.sparse_mvau import pipeline
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.pipeline import group_sizes, plan
from sbnn.hls.sparse_mvau.verilog_text import (ROM_BLOCK_MIN_BITS, case_select, clog2, csd, output_fifo, pipe_sums,
                                               pipelined_control, popsum, slit, value_width, weight_rom)


def sext(name: str, frm: int, to: int) -> str:
    """Signed ``name`` (a plain signal, ``frm`` bits) sign-extended to ``to`` bits."""
    if to == frm:
        return name
    return f"$signed({{{{{to - frm}{{{name}[{frm - 1}]}}}}, {name}}})"


def signed_sum(terms: list[str], width: int) -> str:
    """Sum of signed terms in a ``width``-bit signed context; a sized 0 when empty."""
    return popsum(terms, width) if terms else slit(0, width)


class MultibitGen:
    """Lines of one integer-input node module (see module docstring)."""

    def __init__(self, cfg: SparseMVAUConfig, name: str):
        self.c = cfg
        self.name = name
        self.sched = cfg.schedule()
        self.NS = len(self.sched)
        self.TW = clog2(self.NS)
        self.SFW = clog2(cfg.SF)
        self.B = cfg.in_bits
        self.SW, self.XW = cfg.s_width, cfg.x_width
        self.AW, self.OW, self.K = cfg.acc_width, cfg.out_width, cfg.alpha_shift
        self.uses_x = bool(np.any(cfg.alpha_num != 0))
        self.firsts = [i == 0 or self.sched[i - 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        self.lasts = [i == self.NS - 1 or self.sched[i + 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        self.single = all(self.firsts) and all(self.lasts)
        self.plan = plan(cfg)
        self.D = self.plan.depth
        self.elo, self.ehi = cfg.in_range
        self.cap_n = max(1, min(cfg.SIMD, int(cfg.c.max())))   # non-zero elements of a lane's step, at most

    def elem(self, bus: str, i: int) -> str:
        """Element i of a packed bus as a signed expression (B bits signed, B+1 if unsigned)."""
        field = f"{bus}[{(i + 1) * self.B - 1}:{i * self.B}]"
        return f"$signed({field})" if self.c.in_signed else f"$signed({{1'b0, {field}}})"

    def group_sum(self, terms: list[str], cap: bool = False) -> tuple[str, int, int]:
        """(sum of the element ``terms``, its range); ``cap``: a lane's masked elements, of which at most
        ``cap_n`` are non-zero."""
        n = min(len(terms), self.cap_n) if cap else len(terms)
        return signed_sum(terms, value_width(n * self.elo, n * self.ehi, True)), n * self.elo, n * self.ehi

    def nf_at(self, j: int) -> str:
        return "nf" if j == 0 else f"nf_{j}"

    def pipe(self, prefix: str, vals, stage: int, until: int, target: int, reduce_first: bool, lane: bool = True):
        cap = (self.cap_n * self.elo, self.cap_n * self.ehi) if lane else None
        return pipe_sums(prefix, vals, stage, until, target, reduce_first, pipeline.REDUCE_RADIX, signed=True,
                         cap=cap)

    def lines(self) -> list[str]:
        c = self.c
        kind = f"{'INT' if c.in_signed else 'UINT'}{c.in_bits}"
        L = [f"// {self.name}: sparse MVAU with {kind} inputs, generated by sbnn.hls.sparse_mvau.rtlgen_multibit",
             f"// MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} k={c.alpha_shift} mode={c.weight_mode}"
             f" {'noActivation' if c.no_activation else 'thresholded'} steps/frame={self.NS}"
             f" pipeline stages={self.D}",
             f"// input beat: [i*{self.B} +: {self.B}] = element sf*SIMD+i; output beat: [p*OW +: OW] = neuron nf*PE+p",
             f"module {self.name} (",
             "  input  wire ap_clk,",
             "  input  wire ap_rst_n,",
             "  /* verilator lint_off UNUSEDSIGNAL */",
             f"  input  wire [{c.in_tdata_width - 1}:0] s_axis_tdata,",
             "  /* verilator lint_on UNUSEDSIGNAL */",
             "  input  wire s_axis_tvalid,",
             "  output wire s_axis_tready,",
             f"  output wire [{c.out_tdata_width - 1}:0] m_axis_tdata,",
             "  output wire m_axis_tvalid,",
             "  input  wire m_axis_tready",
             ");"]
        L += self.receiver()
        L += pipelined_control(self.NS, c.NF, c.MW * self.B, self.D, not self.single)
        L += self.x_groups()
        L += self.baked_decode() if c.weight_mode == "baked" else self.memory_decode()
        L += self.shared_products()
        for p in range(c.PE):
            L += self.lane(p)
        L += output_fifo(c.PE, c.out_stream_width, c.out_tdata_width)
        L.append("endmodule")
        return L

    # ---- stage 1: receiver --------------------------------------------------
    def receiver(self) -> list[str]:
        c, SFW = self.c, self.SFW
        BW, CB = c.SIMD * self.B, c.MW * self.B
        L = ["  // ---- receiver: collect SF beats, sum X while receiving (in groups of elements)",
             f"  wire [{BW - 1}:0] beat = s_axis_tdata[{BW - 1}:0];",
             "  wire in_fire = s_axis_tvalid && s_axis_tready;",
             "  wire load;",
             "  reg full;",
             f"  reg [{CB - 1}:0] coll;",
             "  assign s_axis_tready = !full || load;"]
        if c.SF > 1:
            L += [f"  reg [{SFW - 1}:0] rcnt;",
                  f"  wire rlast = (rcnt == {SFW}'d{c.SF - 1});",
                  f"  always @(posedge ap_clk) if (in_fire) coll <= {{beat, coll[{CB - 1}:{BW}]}};"]
        else:
            L += ["  wire rlast = 1'b1;", "  always @(posedge ap_clk) if (in_fire) coll <= beat;"]
        L += ["  always @(posedge ap_clk) begin", "    if (!ap_rst_n) begin", "      full <= 1'b0;"]
        L += [f"      rcnt <= {SFW}'d0;"] if c.SF > 1 else []
        L += ["    end else begin",
              "      if (in_fire && rlast) full <= 1'b1;",
              "      else if (load) full <= 1'b0;"]
        L += [f"      if (in_fire) rcnt <= rlast ? {SFW}'d0 : rcnt + {SFW}'d1;"] if c.SF > 1 else []
        L += ["    end", "  end"]
        if self.uses_x:
            L.append("  /* verilator lint_off WIDTHEXPAND */")
            off = 0
            for g, n in enumerate(self.plan.p_groups):
                expr, lo, hi = self.group_sum([self.elem("beat", off + i) for i in range(n)])
                gw, aw = value_width(lo, hi, True), value_width(c.SF * lo, c.SF * hi, True)
                L += [f"  wire signed [{gw - 1}:0] bx_{g} = {expr};", f"  reg signed [{aw - 1}:0] pacc_{g};"]
                if c.SF > 1:
                    L.append(f"  always @(posedge ap_clk) if (in_fire) pacc_{g} <= ((rcnt == {SFW}'d0) ? "
                             f"{slit(0, aw)} : pacc_{g}) + bx_{g};")
                else:
                    L.append(f"  always @(posedge ap_clk) if (in_fire) pacc_{g} <= bx_{g};")
                off += n
            L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    def x_groups(self) -> list[str]:
        """The frame's X groups, taken from the receiver with the vector."""
        L = []
        for g, n in enumerate(self.plan.p_groups if self.uses_x else []):
            aw = value_width(self.c.SF * n * self.elo, self.c.SF * n * self.ehi, True)
            L += [f"  reg signed [{aw - 1}:0] cp_{g};", f"  always @(posedge ap_clk) if (load) cp_{g} <= pacc_{g};"]
        return L

    # ---- per-step element sums, in groups, along the pipeline ----------------
    def lane_groups(self, p: int, arms: list[list[str]]) -> tuple[list[str], list[tuple[str, int, int]]]:
        """Stage-0 group sums of lane p (one arm of element terms per schedule step, selected by t)."""
        split = [[list(ch) for ch in np.array_split(a, len(group_sizes(len(a), pipeline.INT_GROUP)))] if a else []
                 for a in arms]
        L, vals = [], []
        for g in range(max(1, max(len(s) for s in split))):
            n = max([len(s[g]) for s in split if g < len(s)] or [0])
            lo, hi = n * self.elo, n * self.ehi
            w = value_width(lo, hi, True)
            L += case_select(f"signed [{w - 1}:0]", f"gs{p}_{g}", "t",
                             [signed_sum(s[g], w) if g < len(s) else slit(0, w) for s in split])
            vals.append((f"gs{p}_{g}", lo, hi))
        return L, vals

    def baked_decode(self) -> list[str]:
        """Per step: constant first/last flags and, per lane, the sums of its wired (b = 1) elements in groups
        of pipeline.INT_GROUP, registered and added up along the pipeline."""
        c = self.c
        L = ["  // ---- baked weights: only b = 1 elements are wired"]
        L += case_select("[1:0]", "st_fl", "t", [f"2'b{int(f)}{int(la)}" for f, la in zip(self.firsts, self.lasts)])
        L += ["  assign st_first = st_fl[1];", "  assign st_last = st_fl[0];",
              "  /* verilator lint_off WIDTHEXPAND */"]
        self.parts = []
        for p in range(c.PE):
            arms = [[self.elem("cbuf", sf * c.SIMD + int(i)) for i in np.flatnonzero(c.block(nf, sf)[:, p])]
                    for nf, sf in self.sched]
            lines, vals = self.lane_groups(p, arms)
            more, fin = self.pipe(f"ls{p}", vals, 0, self.D, pipeline.INT_FINAL_VALUES, reduce_first=False)
            L += lines + more
            self.parts.append(fin)
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    def memory_decode(self) -> list[str]:
        """ROM word per step: {last, first, sf, mask lane PE-1 .. lane 0}; sync read-ahead. Stage 0 masks the
        selected block, stage 1 sums it in groups of pipeline.INT_GROUP elements."""
        c, TW, SFW, B = self.c, self.TW, self.SFW, self.B
        BW = c.SIMD * B
        L = weight_rom(c, self.sched, self.firsts, self.lasts, TW, SFW, B, ROM_BLOCK_MIN_BITS)
        L.append("  /* verilator lint_off WIDTHEXPAND */")
        self.parts = []
        for p in range(c.PE):
            bits = ", ".join(f"{{{B}{{romq[{p * c.SIMD + i}]}}}}" for i in reversed(range(c.SIMD)))
            L += [f"  reg [{BW - 1}:0] mb{p};",
                  f"  always @(posedge ap_clk) if (move) mb{p} <= blk & {{{bits}}};"]
            vals, off = [], 0
            for g, n in enumerate(group_sizes(c.SIMD, pipeline.INT_GROUP)):
                expr, lo, hi = self.group_sum([self.elem(f"mb{p}", off + i) for i in range(n)], cap=True)
                L.append(f"  wire signed [{value_width(lo, hi, True) - 1}:0] gs{p}_{g} = {expr};")
                vals.append((f"gs{p}_{g}", lo, hi))
                off += n
            more, fin = self.pipe(f"ls{p}", vals, 1, self.D, pipeline.INT_FINAL_VALUES, reduce_first=False)
            L += more
            self.parts.append(fin)
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    # ---- shared R*X products ------------------------------------------------
    @staticmethod
    def rx_name(r: int) -> str:
        return f"rx_m{-r}" if r < 0 else f"rx_{r}"

    def shared_products(self) -> list[str]:
        """X added up along the pipeline and R*X per distinct R in stage D-1. Fully parallel lanes (NF = 1)
        register R*X per R and add it in the last stage; folded lanes select their neuron's R*X and
        threshold in stage D-1 and register the difference (noActivation: R*X). A constant minus one shared
        value per lane would be chained by Yosys (see rtlgen.py, shared_threshold_terms)."""
        c, AW, D = self.c, self.AW, self.D
        L = []
        if self.uses_x:
            vals = [(f"cp_{g}", c.SF * n * self.elo, c.SF * n * self.ehi) for g, n in enumerate(self.plan.p_groups)]
            L.append("  /* verilator lint_off WIDTHEXPAND */")
            lines, xv = self.pipe("xs", vals, 0, D - 1, 1, reduce_first=True, lane=False)
            L += lines
            assert len(xv) == 1, "X must be one value before the last stage (pipeline.plan)"
            L += [f"  wire signed [{self.XW - 1}:0] xfull = {xv[0][0]};",
                  "  /* verilator lint_on WIDTHEXPAND */",
                  "  // ---- R*X once per distinct R (shift-add, no multiplier), for the step in stage D-1",
                  f"  wire signed [{AW - 1}:0] x_ext = {sext('xfull', self.XW, AW)};"]
            for r in sorted(set(int(v) for v in c.alpha_num)):
                terms = csd(r)
                expr = " ".join(f"{'+' if s > 0 else '-'} (x_ext <<< {sh})" for s, sh in terms)
                L.append(f"  wire signed [{AW - 1}:0] {self.rx_name(r)} = {slit(0, AW)} {expr};" if terms
                         else f"  wire signed [{AW - 1}:0] {self.rx_name(r)} = {slit(0, AW)};")
                if c.NF == 1:
                    L += [f"  reg signed [{AW - 1}:0] {self.rx_name(r)}_r;",
                          f"  always @(posedge ap_clk) if (move) {self.rx_name(r)}_r <= {self.rx_name(r)};"]
        if c.NF > 1:
            sel = self.nf_at(D - 1)
            for p in range(c.PE):
                js = [nf * c.PE + p for nf in range(c.NF)]
                rx = None
                if self.uses_x:
                    L += case_select(f"signed [{AW - 1}:0]", f"rxs{p}", sel,
                                     [self.rx_name(int(c.alpha_num[j])) for j in js])
                    rx = f"rxs{p}"
                if c.no_activation:
                    if rx:
                        L += [f"  reg signed [{AW - 1}:0] rxr{p};", f"  always @(posedge ap_clk) if (move) rxr{p} <= {rx};"]
                    continue
                L += case_select(f"signed [{AW - 1}:0]", f"thr{p}", sel,
                                 [slit(int(c.clipped_thresholds[j]), AW) for j in js])
                sub = f" - {sext(rx, AW, AW + 1)}" if rx else ""
                L += [f"  reg signed [{AW}:0] bnd{p};",
                      f"  always @(posedge ap_clk) if (move) bnd{p} <= {sext(f'thr{p}', AW, AW + 1)}{sub};"]
        return L

    # ---- one PE lane: the last stage ----------------------------------------
    def lane(self, p: int) -> list[str]:
        c, AW, SW, K, OW, D = self.c, self.AW, self.SW, self.K, self.OW, self.D
        js = [nf * c.PE + p for nf in range(c.NF)]
        L = [f"  // ---- lane {p}: neurons {js[0]}..{js[-1]} step {c.PE}, last stage",
             "  /* verilator lint_off WIDTHEXPAND */"]
        part = " + ".join(e for e, _, _ in self.parts[p])
        if self.single:
            L.append(f"  wire signed [{SW - 1}:0] stot{p} = {part};")
        else:
            L += [f"  reg signed [{SW - 1}:0] s{p};",
                  f"  wire signed [{SW - 1}:0] stot{p} = (fst[{D}] ? {slit(0, SW)} : s{p}) + {part};",
                  f"  always @(posedge ap_clk) if (go) s{p} <= stot{p};"]
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        sx = sext(f"stot{p}", SW, AW - K)
        sk = f"$signed({{{sx}, {K}'b0}})" if K else sx
        if c.NF == 1:
            rx = f" + {self.rx_name(int(c.alpha_num[js[0]]))}_r" if self.uses_x else ""
        else:
            rx = f" + rxr{p}" if self.uses_x and c.no_activation else ""
        if not c.no_activation:
            L += case_select("", f"inv{p}", self.nf_at(D), [f"1'b{int(c.invert[j])}" for j in js])
            if c.NF == 1:
                L += [f"  wire signed [{AW - 1}:0] acc{p} = {sk}{rx};",
                      f"  wire o{p} = (acc{p} >= {slit(int(c.clipped_thresholds[js[0]]), AW)}) ^ inv{p};"]
            else:
                L += [f"  wire signed [{AW - 1}:0] sk{p} = {sk};",
                      f"  wire o{p} = ({sext(f'sk{p}', AW, AW + 1)} >= bnd{p}) ^ inv{p};"]
            return L
        L.append(f"  wire signed [{AW - 1}:0] acc{p} = {sk}{rx};")
        if OW < AW:
            L += ["  /* verilator lint_off UNUSEDSIGNAL */",
                  f"  wire [{AW - 1}:0] accu{p} = acc{p};",
                  "  /* verilator lint_on UNUSEDSIGNAL */",
                  f"  wire [{OW - 1}:0] o{p} = accu{p}[{OW - 1}:0];"]
        else:
            L.append(f"  wire [{OW - 1}:0] o{p} = acc{p};")
        return L
