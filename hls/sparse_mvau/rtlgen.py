"""Verilog generator for one ``SparseXnorMVAU`` node (bit-true to reference.py).

Interface (FINN naming and packing)::

    module <name> (
      input  ap_clk, input ap_rst_n,                  // rising edge, sync active-low reset
      input  [IT-1:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready,
      output [OT-1:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready);

* Input: one vector of MW bits arrives as SF = MW/SIMD beats; beat ``sf`` carries
  bits ``a[sf*SIMD + i]`` at ``s_axis_tdata[i]`` (element 0 at the LSB, beats in
  increasing element order). IT = SIMD rounded up to a multiple of 8; the
  padding bits are ignored.
* Output: NF = MH/PE beats per vector; beat ``nf`` carries neuron ``nf*PE + p``
  at ``m_axis_tdata[p*OW +: OW]``; OW = 1 for thresholded layers (the bit
  ``(acc >= T) ^ inv``), otherwise the two's complement value of
  ``2*acc - (2**k*c_j + R_j*MW)``. OT = PE*OW rounded up to a multiple of 8,
  padding bits are 0.
* Handshake: AXI-Stream valid/ready; ``s_axis_tready`` and ``m_axis_tvalid``
  depend on registers only (no combinational path through the node).

Microarchitecture (one concept per stage, shared by both weight modes):

1. receiver: shifts SIMD-bit beats into a collection register and accumulates
   the shared input popcount P while receiving (omitted when all R_j = 0);
2. compute: when a full vector is collected and the compute stage is free (or
   finishing), it is copied into the compute buffer (double buffering, so the
   next vector is received while this one is processed) and the steps of
   ``cfg.schedule()`` run one per cycle: only non-zero PE x SIMD blocks, at
   least one per neuron fold. Each PE lane accumulates ``S = popc(a & b)``;
   at the last step of a neuron fold it thresholds ``acc = 2**k*S + R*P``
   (R*P from a shift-add of the shared P per distinct R) as a narrow compare
   of S against shared bounds (threshold_split.py; noActivation layers form
   the full acc);
3. a 2-entry output FIFO decouples the compute stage from ``m_axis_tready``.

Weight modes: ``baked`` wires only the b = 1 positions of the compute buffer
into each lane's popcount, one constant selection per step (LUTs ~ nnz);
``memory`` reads a PE*SIMD-bit block plus {last, first, sf} per step from a ROM
with a synchronous read (BRAM-inferable, read-ahead addressing) that stores
only non-zero blocks, and computes popc(block & mask) on a generic
SIMD-wide datapath per lane (cycles ~ non-zero blocks).

Lint waivers (Verilator -Wall), each scoped to the lines that need it:
WIDTHEXPAND on the popcount sums of 1-bit terms (the sum of n bits is meant to
widen); UNUSEDSIGNAL on TDATA padding, on compute-buffer bits no neuron reads
(pruned inputs; synthesis removes them), on ``st_first`` when every neuron
fold is one step, on the constant sf field of a SF = 1 ROM word, on the
wrapped high bits of the noActivation output, and in thresholded nodes on the
R*P products (lanes read their Q_hi / Q_lo slices) and on the high bits of S
that the narrow NF = 1 compare does not read (S <= c_max).

Weight ROMs of >= ROM_BLOCK_MIN_BITS bits carry ``(* rom_style = "block" *)``:
Yosys' memory_libmap otherwise maps every ROM to logic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen_multibit import MultibitGen
from sbnn.hls.sparse_mvau.verilog_text import (POPSUM_FLAT_MAX, ROM_BLOCK_MIN_BITS, case_select, clog2,
                                               compute_control, csd, output_fifo, popsum, slit, weight_rom,
                                               zext)

__all__ = ["POPSUM_FLAT_MAX", "ROM_BLOCK_MIN_BITS", "case_select", "clog2", "csd", "generate_verilog", "popsum",
           "slit", "write_verilog", "zext"]


def generate_verilog(cfg: SparseMVAUConfig, name: str | None = None) -> str:
    """Verilog text of one node; the module is named ``name`` or ``cfg.name``.

    A config class may name another generator (a ``_Gen`` subclass) in its
    ``GENERATOR`` attribute: dense_xnor_rtl.DenseXnorConfig does. Integer-input
    configs (``cfg.in_bits > 1``) use rtlgen_multibit.MultibitGen.
    """
    gen = getattr(cfg, "GENERATOR", None) or (MultibitGen if cfg.integer_input else _Gen)
    return "\n".join(gen(cfg, name or cfg.name).lines()) + "\n"


def write_verilog(cfg: SparseMVAUConfig, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(generate_verilog(cfg))
    return path


class _Gen:
    def __init__(self, cfg: SparseMVAUConfig, name: str):
        self.c = cfg
        self.name = name
        self.sched = cfg.schedule()
        self.NS = len(self.sched)
        self.TW = clog2(self.NS)
        self.NFW = clog2(cfg.NF)
        self.SFW = clog2(cfg.SF)
        self.CW = cfg.count_width
        self.PCW = cfg.SIMD.bit_length()
        self.AW = cfg.acc_width
        self.OW = cfg.out_width
        self.K = cfg.alpha_shift
        self.uses_p = bool(np.any(cfg.alpha_num != 0))
        firsts = [i == 0 or self.sched[i - 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        lasts = [i == self.NS - 1 or self.sched[i + 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        self.firsts, self.lasts = firsts, lasts
        self.single = all(firsts) and all(lasts)  # one step per neuron fold: no S register

    def lines(self) -> list[str]:
        c = self.c
        L = [f"// {self.name}: sparse XNOR-popcount MVAU, generated by sbnn.hls.sparse_mvau.rtlgen",
             f"// MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} k={c.alpha_shift} mode={c.weight_mode}"
             f" {'noActivation' if c.no_activation else 'thresholded'} steps/frame={self.NS}",
             "// input beat: bit i = element sf*SIMD+i; output beat: [p*OW +: OW] = neuron nf*PE+p",
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
        L += self.receiver() + self.control() + self.schedule_decode()
        L += self.shared_products()
        for p in range(c.PE):
            L += self.lane(p)
        L += self.fifo()
        L.append("endmodule")
        return L

    # ---- stage 1: receiver --------------------------------------------------
    def receiver(self) -> list[str]:
        c, CW, PCW = self.c, self.CW, self.PCW
        L = ["  // ---- receiver: collect SF beats, count P while receiving",
             f"  wire [{c.SIMD - 1}:0] beat = s_axis_tdata[{c.SIMD - 1}:0];",
             "  wire in_fire = s_axis_tvalid && s_axis_tready;",
             "  wire load;",
             "  reg full;",
             f"  reg [{c.MW - 1}:0] coll;",
             "  assign s_axis_tready = !full || load;"]
        if c.SF > 1:
            L += [f"  reg [{self.SFW - 1}:0] rcnt;",
                  f"  wire rlast = (rcnt == {self.SFW}'d{c.SF - 1});",
                  f"  always @(posedge ap_clk) if (in_fire) coll <= {{beat, coll[{c.MW - 1}:{c.SIMD}]}};"]
        else:
            L += ["  wire rlast = 1'b1;", "  always @(posedge ap_clk) if (in_fire) coll <= beat;"]
        L += ["  always @(posedge ap_clk) begin",
              "    if (!ap_rst_n) begin",
              "      full <= 1'b0;"]
        L += [f"      rcnt <= {self.SFW}'d0;"] if c.SF > 1 else []
        L += ["    end else begin",
              "      if (in_fire && rlast) full <= 1'b1;",
              "      else if (load) full <= 1'b0;"]
        L += [f"      if (in_fire) rcnt <= rlast ? {self.SFW}'d0 : rcnt + {self.SFW}'d1;"] if c.SF > 1 else []
        L += ["    end", "  end"]
        if self.uses_p:
            terms = [f"beat[{i}]" for i in range(c.SIMD)]
            L += ["  /* verilator lint_off WIDTHEXPAND */",
                  f"  wire [{PCW - 1}:0] beat_pc = {popsum(terms, PCW)};",
                  "  /* verilator lint_on WIDTHEXPAND */",
                  f"  reg [{CW - 1}:0] pacc;"]
            first = f"(rcnt == {self.SFW}'d0)" if c.SF > 1 else "1'b1"
            L += [f"  always @(posedge ap_clk) if (in_fire) pacc <= ({first} ? {{{CW}{{1'b0}}}} : pacc)"
                  f" + {zext('beat_pc', PCW, CW)};"]
        return L

    # ---- stage 2: compute control ------------------------------------------
    def control(self) -> list[str]:
        return compute_control(self.NS, self.c.NF, self.c.MW, f"[{self.CW - 1}:0]" if self.uses_p else None)

    def schedule_decode(self) -> list[str]:
        if self.c.weight_mode == "baked":
            return self.baked_decode()
        return self.memory_decode()

    def baked_decode(self) -> list[str]:
        """Per step: constant first/last flags and, per lane, the sum of wired bits."""
        c, TW, PCW = self.c, self.TW, self.PCW
        L = ["  // ---- baked weights: only b = 1 positions are wired"]
        fl = [f"2'b{int(f)}{int(la)}" for f, la in zip(self.firsts, self.lasts)]
        L += case_select("[1:0]", "st_fl", "t", fl)
        L += ["  assign st_first = st_fl[1];", "  assign st_last = st_fl[0];"]
        L.append("  /* verilator lint_off WIDTHEXPAND */")
        for p in range(c.PE):
            arms = []
            for nf, sf in self.sched:
                rows = np.flatnonzero(c.block(nf, sf)[:, p])
                arms.append(popsum([f"cbuf[{sf * c.SIMD + i}]" for i in rows], PCW))
            L += case_select(f"[{PCW - 1}:0]", f"part{p}", "t", arms)
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    def memory_decode(self) -> list[str]:
        """ROM word per step: {last, first, sf, mask lane PE-1 .. lane 0}; sync read-ahead."""
        c, TW, PCW, SFW = self.c, self.TW, self.PCW, self.SFW
        L = weight_rom(c, self.sched, self.firsts, self.lasts, TW, SFW, 1, ROM_BLOCK_MIN_BITS)
        L.append("  /* verilator lint_off WIDTHEXPAND */")
        for p in range(c.PE):
            L += [f"  wire [{c.SIMD - 1}:0] mb{p} = blk & romq[{(p + 1) * c.SIMD - 1}:{p * c.SIMD}];",
                  f"  wire [{PCW - 1}:0] part{p} = {popsum([f'mb{p}[{i}]' for i in range(c.SIMD)], PCW)};"]
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    # ---- shared R*P products and threshold terms ----------------------------
    def shared_products(self) -> list[str]:
        L = []
        if self.uses_p:
            AW, CW = self.AW, self.CW
            L += ["  // ---- R*P once per distinct R (shift-add, no multiplier)",
                  f"  wire signed [{AW - 1}:0] p_ext = $signed({zext('cp', CW, AW)});"]
            if not self.c.no_activation:   # thresholded lanes read slices (threshold_split.py)
                L.append("  /* verilator lint_off UNUSEDSIGNAL */")
            for r in sorted(set(int(v) for v in self.c.alpha_num)):
                terms = csd(r)
                expr = " ".join(f"{'+' if s > 0 else '-'} (p_ext <<< {sh})" for s, sh in terms)
                expr = f"{slit(0, AW)} {expr}" if terms else slit(0, AW)
                L.append(f"  wire signed [{AW - 1}:0] {self.rp_name(r)} = {expr};")
            if not self.c.no_activation:
                L.append("  /* verilator lint_on UNUSEDSIGNAL */")
        if not self.c.no_activation:
            L += self.shared_threshold_terms()
        return L

    @staticmethod
    def rp_name(r: int) -> str:
        return f"rp_m{-r}" if r < 0 else f"rp_{r}"

    @staticmethod
    def rtag(r: int) -> str:
        return f"m{-r}" if r < 0 else f"{r}"

    # Narrow thresholding (threshold_split.py has the math and its test). Why:
    # S has a few bits (S <= c_j), but acc >= T at the full accumulator width
    # cost an AW-bit adder and comparator per neuron. With T = 2**k T_hi + T_lo
    # and R*P = 2**k Q_hi + Q_lo (floor splits),
    #     acc >= T  <=>  S + Q_hi + g >= T_hi + 1,   g = [Q_lo >= T_lo].
    # Q_hi is shared per R, g per (R, T_lo). Fully parallel lanes (NF = 1)
    # also share F = T_hi + 1 - Q_hi - g per distinct (R, T), clamped to
    # [0, 2**EW - 1] (0 <= S <= c_max <= 2**EW - 3 keeps the result), so each
    # neuron is one EW-bit compare S >= F. (Sharing E = T_hi + 1 - Q_hi per
    # (R, T_hi) and comparing S + g >= E per neuron, or S + Q_hi + g per
    # neuron, measured 3-4 % more LUTs on 128 neurons.) Folded lanes (NF > 1)
    # select constants by nf and compare S + Q_hi + g >= T_hi + 1 at
    # HW = AW - k + 1 bits (no per-lane mux of shared signals).
    def split_consts(self, j: int) -> tuple[int, int, int]:
        """(R_j, T_hi, T_lo) of neuron j (clipped threshold, floor split at k)."""
        t = int(self.c.clipped_thresholds[j])
        return int(self.c.alpha_num[j]), t >> self.K, t & ((1 << self.K) - 1)

    @property
    def EW(self) -> int:
        return (int(self.c.c.max()) + 2).bit_length()

    @property
    def HW(self) -> int:
        return self.AW - self.K + 1

    def g_expr(self, r: int, t_lo: int) -> str:
        if t_lo == 0:
            return "1'b1"
        if r == 0:                      # Q = 0: Q_lo >= T_lo is false
            return "1'b0"
        return f"g_{self.rtag(r)}_{t_lo}"

    def f_name(self, r: int, t_hi: int, t_lo: int) -> str:
        return f"f_{self.rtag(r)}_{t_hi + 1}_{t_lo}".replace("-", "m")

    def shared_threshold_terms(self) -> list[str]:
        c, AW, K, HW, EW = self.c, self.AW, self.K, self.HW, self.EW
        consts = sorted({self.split_consts(j) for j in range(c.MH)})
        rs = sorted({r for r, _, _ in consts if r != 0})
        if not rs:
            return []
        L = ["  // ---- shared threshold terms: Q_hi = (R*P) >>> k, g = [Q_lo >= T_lo]"]
        for r in rs:
            qh = self.rp_name(r) + (f"[{AW - 1}:{K}]" if K else "")
            L.append(f"  wire signed [{AW - K - 1}:0] qh_{self.rtag(r)} = {qh};")
            for t_lo in sorted({t for rr, _, t in consts if rr == r and t}):
                L.append(f"  wire g_{self.rtag(r)}_{t_lo} = ({self.rp_name(r)}[{K - 1}:0] >= {K}'d{t_lo});")
        if self.c.NF == 1:
            L.append(f"  // F = clamp(T_hi + 1 - Q_hi - g, 0, {(1 << EW) - 1}) per (R, T_hi, T_lo)")
            for r in rs:
                qx = f"$signed({{{{2{{qh_{self.rtag(r)}[{AW - K - 1}]}}}}, qh_{self.rtag(r)}}})"
                for t_hi, t_lo in sorted({(t, tl) for rr, t, tl in consts if rr == r}):
                    f = self.f_name(r, t_hi, t_lo)
                    g = f"$signed({{{HW}'b0, {self.g_expr(r, t_lo)}}})"
                    L += [f"  wire signed [{HW}:0] {f}d = {slit(t_hi + 1, HW + 1)} - {qx} - {g};",
                          f"  wire [{EW - 1}:0] {f} = {f}d[{HW}] ? {EW}'d0 : ({f}d > {slit((1 << EW) - 1, HW + 1)})"
                          f" ? {EW}'d{(1 << EW) - 1} : {f}d[{EW - 1}:0];"]
        return L

    # ---- one PE lane --------------------------------------------------------
    def s_accumulator(self, p: int) -> list[str]:
        """``stot<p>``: this step's popcount plus the lane's running sum (none for one-step folds)."""
        CW, PCW = self.CW, self.PCW
        if self.single:
            return [f"  wire [{CW - 1}:0] stot{p} = {zext(f'part{p}', PCW, CW)};"]
        return [f"  reg [{CW - 1}:0] s{p};",
                f"  wire [{CW - 1}:0] stot{p} = (st_first ? {{{CW}{{1'b0}}}} : s{p}) + {zext(f'part{p}', PCW, CW)};",
                f"  always @(posedge ap_clk) if (adv) s{p} <= stot{p};"]

    def lane(self, p: int) -> list[str]:
        c, AW, CW, PCW, K = self.c, self.AW, self.CW, self.PCW, self.K
        js = [nf * c.PE + p for nf in range(c.NF)]
        L = [f"  // ---- lane {p}: neurons {js[0]}..{js[-1]} step {c.PE}"]
        narrow = not c.no_activation and c.NF == 1 and self.EW < CW
        if narrow:   # only the low EW bits of S are read (S <= c_max)
            L.append("  /* verilator lint_off UNUSEDSIGNAL */")
        L += self.s_accumulator(p)
        if narrow:
            L.append("  /* verilator lint_on UNUSEDSIGNAL */")
        if not c.no_activation:
            L += case_select("", f"inv{p}", "nf", [f"1'b{int(c.invert[j])}" for j in js])
            sp = [self.split_consts(j) for j in js]
            if c.NF == 1:
                r, t_hi, t_lo = sp[0]
                EW = self.EW
                sw = f"stot{p}[{EW - 1}:0]" if EW <= CW else zext(f"stot{p}", CW, EW)
                if r == 0:    # R*P = 0: constant bound T_hi + 1 - g (signed: no constant-compare lint)
                    f = min(max(t_hi + 1 - int(t_lo == 0), 0), (1 << EW) - 1)
                    L.append(f"  wire o{p} = ($signed({{1'b0, {sw}}}) >= {slit(f, EW + 1)}) ^ inv{p};")
                else:
                    L.append(f"  wire o{p} = ({sw} >= {self.f_name(r, t_hi, t_lo)}) ^ inv{p};")
            else:
                HW = self.HW
                qh = [f"qh_{self.rtag(r)}" if r else slit(0, AW - K) for r, _, _ in sp]
                L += case_select(f"signed [{AW - K - 1}:0]", f"qh{p}", "nf", qh)
                L += case_select("", f"g{p}", "nf", [self.g_expr(r, t_lo) for r, _, t_lo in sp])
                L += case_select(f"signed [{HW - 1}:0]", f"kc{p}", "nf", [slit(t_hi + 1, HW) for _, t_hi, _ in sp])
                L.append(f"  wire o{p} = ($signed({zext(f'stot{p}', CW, HW)}) + $signed({{qh{p}[{AW - K - 1}], qh{p}}})"
                         f" + $signed({{{HW - 1}'b0, g{p}}}) >= kc{p}) ^ inv{p};")
            return L
        hi_pad = AW - CW - K
        sk = f"{{{{{hi_pad}{{1'b0}}}}, stot{p}" + (f", {{{K}{{1'b0}}}}}}" if K else "}")
        acc = f"$signed({sk})"
        if self.uses_p:
            L += case_select(f"signed [{AW - 1}:0]", f"rps{p}", "nf", [self.rp_name(int(c.alpha_num[j])) for j in js])
            acc += f" + rps{p}"
        L.append(f"  wire signed [{AW - 1}:0] acc{p} = {acc};")
        OW = self.OW
        EW = max(AW, OW)
        ext = f"{{{{{EW - AW}{{acc{p}[{AW - 1}]}}}}, acc{p}}}" if EW > AW else f"acc{p}"
        L += [f"  wire signed [{EW - 1}:0] acce{p} = {ext};"]
        L += case_select(f"signed [{EW - 1}:0]", f"cst{p}", "nf", [slit(int(c.out_const[j]), EW) for j in js])
        L += [f"  wire signed [{EW - 1}:0] of{p} = (acce{p} <<< 1) - cst{p};"]
        if EW > OW:
            L += ["  /* verilator lint_off UNUSEDSIGNAL */",
                  f"  wire signed [{EW - 1}:0] ofu{p} = of{p};",
                  "  /* verilator lint_on UNUSEDSIGNAL */",
                  f"  wire [{OW - 1}:0] o{p} = ofu{p}[{OW - 1}:0];"]
        else:
            L.append(f"  wire [{OW - 1}:0] o{p} = of{p};")
        return L

    # ---- stage 3: output FIFO ----------------------------------------------
    def fifo(self) -> list[str]:
        return output_fifo(self.c.PE, self.c.out_stream_width, self.c.out_tdata_width)
