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

1. receiver: shifts SIMD-bit beats into a collection register (memory mode,
   SF > 1: writes them into one of two LUT-RAM banks, verilog_text.input_banks)
   and accumulates the shared input popcount P while receiving, in groups of
   input bits with one short accumulator each (omitted when all R_j = 0);
2. compute: when a full vector is collected and the compute stage is free (or
   finishing), it is copied into the compute buffer (double buffering, so the
   next vector is received while this one is processed) and the steps of
   ``cfg.schedule()`` are issued one per cycle: only non-zero PE x SIMD
   blocks, at least one per neuron fold. Each PE lane accumulates
   ``S = popc(a & b)``; at the last step of a neuron fold it thresholds
   ``acc = 2**k*S + R*P`` (R*P from a shift-add of the shared P per distinct
   R) as a narrow compare of S + Q_hi + g with T_hi + 1 (threshold_split.py)
   when NF = 1; folded lanes start their running sum at Q_hi and compare
   {S + Q_hi, Q_lo} = acc with T_j (folded_terms); noActivation layers form
   the full acc. The popcounts and P are summed
   in a pipeline of registered stages (pipeline.py: the timing budget of
   the clock, sbnn.hls.timing), all moving together, so one step still
   completes per cycle and the latency grows by the pipeline depth;
3. a 2-entry output FIFO decouples the compute stage from ``m_axis_tready``.

Weight modes: ``baked`` wires only the b = 1 positions of the compute buffer
into each lane's popcount, one constant selection per step (LUTs ~ nnz);
``memory`` reads the step's mask columns plus {last, first, sf} from a ROM
with a synchronous read (BRAM-inferable, read-ahead addressing) that stores
only non-zero blocks, and only the distinct columns that change over them
(verilog_text.mask_columns), and computes popc(block & mask) on a generic
SIMD-wide datapath per lane, one datapath for lanes with the same mask bits
(a block-constant mask: one for all lanes; cycles ~ non-zero blocks). Ternary layers (``cfg.signs``, R = 0): baked
wires ``~a`` for a negative kept weight, memory mode reads a sign word (1 = negative kept weight) from a
second ROM at the same address and computes popc((block ^ signs) & mask).

Lint waivers (Verilator -Wall), each scoped to the lines that need it:
WIDTHEXPAND on the popcount sums of 1-bit terms and of partial sums (a sum is
meant to widen); UNUSEDSIGNAL on a pipeline stage's neuron-fold copy that no
selection reads, on TDATA padding, on compute-buffer bits no neuron reads
(pruned inputs; synthesis removes them), on ``st_first`` when every neuron
fold is one step, on the constant sf field of a SF = 1 ROM word, on the
wrapped high bits of the noActivation output, and in thresholded nodes on the
R*P products (lanes read their Q_hi / Q_lo slices) and on the high bits of S
that the NF = 1 compare of an R = 0 neuron does not read (S <= c_max).

Weight ROMs of >= ROM_BLOCK_MIN_BITS bits carry ``(* rom_style = "block" *)``:
Yosys' memory_libmap otherwise maps every ROM to logic.

Simulation forms (sbnn.hls.sim_forms, read by the rtlsim's Verilator only): a baked layer's sums as
``$countones`` of masked words (baked_decode), a binary memory-mode layer's masked blocks in one register
(wide_masked_blocks), a lane's running sum updated from its own expression (s_accumulator: the lane's
total is then computed inside the update, not kept every cycle for the output), the output FIFO written at
one place (verilog_text.output_fifo).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau import pipeline
from sbnn.hls.sparse_mvau.pipeline import group_maxima, group_sizes, plan
from sbnn.hls.sparse_mvau.rtlgen_multibit import MultibitGen
from sbnn.hls.sim_forms import sim_alternative
from sbnn.hls.sparse_mvau.verilog_text import (POPSUM_FLAT_MAX, ROM_BLOCK_MIN_BITS, bit_concat, case_select,
                                               case_select_many, clog2, csd, input_banks, mask_columns, masked_popcount,
                                               output_fifo, pipe_sums, pipelined_control, popsum, slit, weight_rom,
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
        self.AW = cfg.acc_width
        self.OW = cfg.out_width
        self.K = cfg.alpha_shift
        self.uses_p = bool(np.any(cfg.alpha_num != 0))
        firsts = [i == 0 or self.sched[i - 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        lasts = [i == self.NS - 1 or self.sched[i + 1][0] != nf for i, (nf, _) in enumerate(self.sched)]
        self.firsts, self.lasts = firsts, lasts
        self.single = all(firsts) and all(lasts)  # one step per neuron fold: no S register
        self.plan = plan(cfg)
        self.D = self.plan.depth
        self.lane_rep = list(range(cfg.PE))   # the lane whose datapath (popcount, S) lane p uses
        # memory mode reads its input from LUT-RAM banks (verilog_text.input_banks); baked mode wires cbuf bits
        self.banks = cfg.weight_mode == "memory" and cfg.SF > 1

    def lines(self) -> list[str]:
        c = self.c
        L = [f"// {self.name}: sparse XNOR-popcount MVAU, generated by sbnn.hls.sparse_mvau.rtlgen",
             f"// MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} k={c.alpha_shift} mode={c.weight_mode}"
             f" {'noActivation' if c.no_activation else 'thresholded'} steps/frame={self.NS}"
             f" pipeline stages={self.D}",
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

    @staticmethod
    def nf_at(j: int) -> str:
        """The neuron-fold counter of the step in stage j (0: the issuing step)."""
        return "nf" if j == 0 else f"nf_{j}"

    # ---- pipelined sums (pipeline.py) ----------------------------------------
    def pipe(self, prefix: str, vals: list[tuple[str, int]], stage: int, until: int, target: int,
             reduce_first: bool) -> tuple[list[str], list[tuple[str, int]]]:
        """verilog_text.pipe_sums on unsigned partial sums ((expr, max value) at ``stage``)."""
        lines, out = pipe_sums(prefix, [(e, 0, m) for e, m in vals], stage, until, target, reduce_first,
                               pipeline.REDUCE_RADIX)
        return lines, [(e, hi) for e, _, hi in out]

    # ---- stage 1: receiver --------------------------------------------------
    def receiver(self) -> list[str]:
        c = self.c
        L = ["  // ---- receiver: collect SF beats, count P while receiving",
             f"  wire [{c.SIMD - 1}:0] beat = s_axis_tdata[{c.SIMD - 1}:0];",
             "  wire in_fire = s_axis_tvalid && s_axis_tready;",
             "  wire load;",
             "  reg full;",
             "  assign s_axis_tready = !full || load;"]
        L += [] if self.banks else [f"  reg [{c.MW - 1}:0] coll;"]
        if self.banks:
            L += [f"  reg [{self.SFW - 1}:0] rcnt;",
                  f"  wire rlast = (rcnt == {self.SFW}'d{c.SF - 1});"]
            L += input_banks(c.SIMD, self.SFW)
        elif c.SF > 1:
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
        if self.uses_p:   # P in groups of input bits, one short accumulator per group (pipeline.py)
            L.append("  /* verilator lint_off WIDTHEXPAND */")
            off = 0
            for g, n in enumerate(self.plan.p_groups):
                bw, aw = n.bit_length(), (n * c.SF).bit_length()
                L += [f"  wire [{bw - 1}:0] bpc_{g} = {popsum([f'beat[{off + i}]' for i in range(n)], bw)};",
                      f"  reg [{aw - 1}:0] pacc_{g};"]
                if c.SF > 1:
                    L.append(f"  always @(posedge ap_clk) if (in_fire) pacc_{g} <= ((rcnt == {self.SFW}'d0) ? "
                             f"{aw}'d0 : pacc_{g}) + bpc_{g};")
                else:
                    L.append(f"  always @(posedge ap_clk) if (in_fire) pacc_{g} <= bpc_{g};")
                off += n
            L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    # ---- stage 2: compute control ------------------------------------------
    def control(self) -> list[str]:
        L = pipelined_control(self.NS, self.c.NF, self.c.MW, self.D, not self.single, not self.banks)
        if self.uses_p:   # the frame's P groups, taken from the receiver with the vector
            for g, n in enumerate(self.plan.p_groups):
                aw = (n * self.c.SF).bit_length()
                L += [f"  reg [{aw - 1}:0] cp_{g};", f"  always @(posedge ap_clk) if (load) cp_{g} <= pacc_{g};"]
        return L

    def schedule_decode(self) -> list[str]:
        if self.c.weight_mode == "baked":
            return self.baked_decode()
        return self.memory_decode()

    def arm_terms(self, p: int, nf: int, sf: int) -> list[str]:
        """The bits lane p adds at schedule step (nf, sf): the wired (b = 1) compute-buffer bits, inverted
        for a ternary layer's negative weights (XNOR(a, 0) = ~a: the inverter folds into the LUT). ``{~x}``:
        a concatenation is self-determined, so the 1-bit inversion is not widened by the sum's context."""
        c = self.c
        rows = np.flatnonzero(c.block(nf, sf)[:, p])
        if c.signs is None:
            return [f"cbuf[{sf * c.SIMD + i}]" for i in rows]
        col = nf * c.PE + p
        return [f"cbuf[{sf * c.SIMD + i}]" if c.signs[sf * c.SIMD + i, col] else f"{{~cbuf[{sf * c.SIMD + i}]}}"
                for i in rows]

    def decode_prelude(self) -> list[str]:
        return []

    def baked_decode(self) -> list[str]:
        """Per step: constant first/last flags and, per lane, the popcounts of its wired bits in groups of at
        most POP_GROUP (pipeline.py), registered and added up along the pipeline."""
        c = self.c
        L = ["  // ---- baked weights: only wired positions are counted, in groups, one step per cycle"]
        L += self.decode_prelude()
        fl = [f"2'b{int(f)}{int(la)}" for f, la in zip(self.firsts, self.lasts)]
        L += case_select("[1:0]", "st_fl", "t", fl)
        L += ["  assign st_first = st_fl[1];", "  assign st_last = st_fl[0];"]
        L.append("  /* verilator lint_off WIDTHEXPAND */")
        self.parts, selects, sim_selects, lane_vals = [], [], [], []
        vectors = {"cbuf": c.MW, "ncbuf": c.MW}   # the compute buffer (and dense_xnor_rtl's inverted copy)
        for p in range(c.PE):
            arms = [self.arm_terms(p, nf, sf) for nf, sf in self.sched]
            split = [[list(ch) for ch in np.array_split(a, len(group_sizes(len(a))))] if a else [] for a in arms]
            vals = []
            for g, mx in enumerate(group_maxima([len(a) for a in arms])):
                w = max(1, mx.bit_length())
                zero = f"{w}'d0"
                selects.append((f"[{w - 1}:0]", f"gs{p}_{g}", [popsum(s[g], w) if g < len(s) else zero for s in split]))
                sim_selects.append((f"[{w - 1}:0]", f"gs{p}_{g}",
                                    [masked_popcount(s[g], w, vectors) if g < len(s) else zero for s in split]))
                vals.append((f"gs{p}_{g}", mx))
            lane_vals.append(vals)
        # one case for all lanes: see case_select_many (rtlsim speed); the rtlsim counts words (masked_popcount)
        sim = ["  /* verilator lint_off WIDTHTRUNC */", *case_select_many("t", sim_selects),
               "  /* verilator lint_on WIDTHTRUNC */"]
        synth = case_select_many("t", selects)
        L += sim_alternative(sim, synth) if sim_selects != selects else synth
        for p, vals in enumerate(lane_vals):
            lines, fin = self.pipe(f"ls{p}", vals, 0, self.D, pipeline.FINAL_VALUES, reduce_first=False)
            L += lines
            self.parts.append(fin)
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    def memory_decode(self) -> list[str]:
        """ROM word per step: {last, first, sf, distinct mask columns} (verilog_text.mask_columns); sync
        read-ahead. Stage 0 masks the selected block (the ROM's slow clock-to-out plus the SF:1 mux), stage 1
        popcounts it in groups. Lanes with the same mask bits (same ROM columns; a block-constant mask: all
        lanes) count the same bits: one datapath serves them (``lane_rep``), binary layers only (a ternary
        lane's sign word is its own)."""
        c, TW, SFW = self.c, self.TW, self.SFW
        cols, srcs = mask_columns(c, self.sched)
        L = weight_rom(c, self.sched, self.firsts, self.lasts, TW, SFW, 1, ROM_BLOCK_MIN_BITS, cols, self.banks)
        L += self.sign_rom()
        L.append("  /* verilator lint_off WIDTHEXPAND */")
        self.parts, reps = [], {}
        lane_bits = [tuple(srcs[p * c.SIMD:(p + 1) * c.SIMD]) for p in range(c.PE)]
        for p, bits in enumerate(lane_bits):
            key = (bits, self.lane_r(p) if self.folded_thr else ()) if c.signs is None else p
            self.lane_rep[p] = reps.setdefault(key, p)
        slot = {p: k for k, p in enumerate(p for p in range(c.PE) if self.lane_rep[p] == p)}   # own datapaths
        wide = c.signs is None and len(slot) > 1   # simulation form: every lane's masked block in one register
        if wide:
            L += sim_alternative(self.wide_masked_blocks(list(slot), lane_bits), [])
        for p, bits in enumerate(lane_bits):
            if self.lane_rep[p] != p:
                self.parts.append(self.parts[self.lane_rep[p]])
                continue
            sel = f"[{(p + 1) * c.SIMD - 1}:{p * c.SIMD}]"
            ins = "blk" if c.signs is None else f"(blk ^ sromq{sel})"   # XNOR(a, s) = a ^ (negative weight)
            msk = "" if all(b == "1'b1" for b in bits) else " & {" + ", ".join(reversed(bits)) + "}"
            synth = [f"  reg [{c.SIMD - 1}:0] mb{p};", f"  always @(posedge ap_clk) if (move) mb{p} <= {ins}{msk};"]
            k = slot[p]
            L += sim_alternative([f"  wire [{c.SIMD - 1}:0] mb{p} = mball[{(k + 1) * c.SIMD - 1}:{k * c.SIMD}];"],
                                 synth) if wide else synth
            vals, off = [], 0
            for g, n in enumerate(group_sizes(c.SIMD)):
                w = n.bit_length()
                L.append(f"  wire [{w - 1}:0] gs{p}_{g} = {popsum([f'mb{p}[{off + i}]' for i in range(n)], w)};")
                vals.append((f"gs{p}_{g}", n))
                off += n
            lines, fin = self.pipe(f"ls{p}", vals, 1, self.D, pipeline.FINAL_VALUES, reduce_first=False)
            L += lines
            self.parts.append(fin)
        L.append("  /* verilator lint_on WIDTHEXPAND */")
        return L

    def wide_masked_blocks(self, own: list[int], lane_bits: list[tuple[str, ...]]) -> list[str]:
        """Simulation form of the lanes' masked-block registers ``mb<p>`` (lanes with a datapath of their own,
        binary layers): one register of all of them, ``{n{blk}} & masks``, read back per lane as a slice.
        Verilator then ANDs machine words once per cycle instead of fetching the block and extracting and
        aligning each lane's mask bits lane by lane (a 128-lane first layer: 128 times per simulated cycle)."""
        c = self.c
        masks = [b for p in reversed(own) for b in reversed(lane_bits[p])]
        return [f"  reg [{len(own) * c.SIMD - 1}:0] mball;",
                f"  always @(posedge ap_clk) if (move) mball <= {{{len(own)}{{blk}}}} & {bit_concat(masks)};"]

    def sign_rom(self) -> list[str]:
        """A ternary layer's sign ROM beside the weight ROM: per step one PE x SIMD word with a 1 at each
        negative kept weight, read at the same address (``t_next``, weight_rom)."""
        c = self.c
        if c.signs is None:
            return []
        mb, depth = c.PE * c.SIMD, 1 << self.TW
        neg = c.mask * (1 - c.signs)
        style = '(* rom_style = "block" *) ' if depth * mb >= ROM_BLOCK_MIN_BITS else ""
        L = ["  // ---- sign memory (ternary): 1 = negative kept weight, the input bit is inverted",
             f"  {style}reg [{mb - 1}:0] srom [0:{depth - 1}];", f"  reg [{mb - 1}:0] sromq;", "  initial begin"]
        for i, (nf, sf) in enumerate(self.sched):
            blk = neg[sf * c.SIMD:(sf + 1) * c.SIMD, nf * c.PE:(nf + 1) * c.PE]
            word = sum(1 << (p * c.SIMD + int(s)) for p in range(c.PE) for s in np.flatnonzero(blk[:, p]))
            L.append(f"    srom[{i}] = {mb}'h{word:x};")
        L += [f"    srom[{i}] = {mb}'h0;" for i in range(len(self.sched), depth)]
        return L + ["  end", "  always @(posedge ap_clk) sromq <= srom[t_next];"]

    # ---- shared R*P products and threshold terms ----------------------------
    def shared_products(self) -> list[str]:
        """P (the frame's input popcount) added up along the pipeline, and from it, at stage D-1, the terms
        the last stage compares against: registered there, so the last stage only adds and compares."""
        L = []
        pre = self.D - 1
        if self.uses_p:
            AW, CW = self.AW, self.CW
            vals = [(f"cp_{g}", n * self.c.SF) for g, n in enumerate(self.plan.p_groups)]
            L.append("  /* verilator lint_off WIDTHEXPAND */")
            lines, pv = self.pipe("ps", vals, 0, pre, 1, reduce_first=True)
            L += lines
            assert len(pv) == 1, "the P sum must be one value before the last stage (pipeline.plan)"
            L += [f"  wire [{CW - 1}:0] pfull = {pv[0][0]};",
                  "  /* verilator lint_on WIDTHEXPAND */",
                  "  // ---- R*P once per distinct R (shift-add, no multiplier), for the step in stage D-1",
                  f"  wire signed [{AW - 1}:0] p_ext = $signed({zext('pfull', CW, AW)});"]
            if not self.c.no_activation:   # thresholded lanes read slices (threshold_split.py)
                L.append("  /* verilator lint_off UNUSEDSIGNAL */")
            for r in sorted(set(int(v) for v in self.c.alpha_num)):
                terms = csd(r)
                expr = " ".join(f"{'+' if s > 0 else '-'} (p_ext <<< {sh})" for s, sh in terms)
                expr = f"{slit(0, AW)} {expr}" if terms else slit(0, AW)
                L.append(f"  wire signed [{AW - 1}:0] {self.rp_name(r)} = {expr};")
            if not self.c.no_activation:
                L.append("  /* verilator lint_on UNUSEDSIGNAL */")
        if self.c.no_activation:
            L += self.output_terms()
        else:
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
    # Q_hi is shared per R, g per (R, T_lo), both computed in stage D-1 from P.
    # Fully parallel lanes (NF = 1) register them and compare S + Q_hi + g with
    # the constant T_hi + 1 in the last stage (HW + 1 = AW - k + 2 bits).
    # (The unpipelined RTL shared F = T_hi + 1 - Q_hi - g per distinct (R, T)
    # and compared S >= F, 3-4 % fewer LUTs, but Yosys chains those constant
    # subtractions of one Q_hi into one long carry path: 12 adders deep on a
    # 784-input layer.) Folded lanes (NF > 1) do not split: folded_bounds.
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
        """g = [Q_lo >= T_lo] (the registered copy; fully parallel lanes)."""
        if t_lo == 0:
            return "1'b1"
        if r == 0:                      # Q = 0: Q_lo >= T_lo is false
            return "1'b0"
        return f"g_{self.rtag(r)}_{t_lo}"

    def shared_threshold_terms(self) -> list[str]:
        c, AW, K = self.c, self.AW, self.K
        if c.NF > 1:
            return self.folded_terms()
        consts = sorted({self.split_consts(j) for j in range(c.MH)})
        rs = sorted({r for r, _, _ in consts if r != 0})
        L = []
        if rs:
            L.append("  // ---- shared threshold terms (stage D-1): Q_hi = (R*P) >>> k, g = [Q_lo >= T_lo]")
            for r in rs:
                tag = self.rtag(r)
                qh = self.rp_name(r) + (f"[{AW - 1}:{K}]" if K else "")
                L += [f"  wire signed [{AW - K - 1}:0] qhc_{tag} = {qh};",
                      f"  reg signed [{AW - K - 1}:0] qh_{tag};",
                      f"  always @(posedge ap_clk) if (move) qh_{tag} <= qhc_{tag};"]
                for t_lo in sorted({t for rr, _, t in consts if rr == r and t}):
                    L += [f"  wire gc_{tag}_{t_lo} = ({self.rp_name(r)}[{K - 1}:0] >= {K}'d{t_lo});",
                          f"  reg g_{tag}_{t_lo};",
                          f"  always @(posedge ap_clk) if (move) g_{tag}_{t_lo} <= gc_{tag}_{t_lo};"]
        return L

    def folded_terms(self) -> list[str]:
        """Folded lanes (NF > 1): Q_hi = (R*P) >>> k and Q_lo = the low k bits of R*P per distinct R, registered
        into the last stage. A lane starts its running sum at its neuron's Q_hi instead of 0, so it ends at
        Z = S + Q_hi (HW bits: S < 2**(AW-1-k), |Q_hi| <= 2**(AW-1-k)), and {Z, Q_lo} = 2**k*S + R*P = acc: the
        lane compares acc >= T_j with the constant of its neuron (lane_output). Why: no per-lane bound
        (a table, a subtraction and a register per lane, as before) and no shared g comparators; the
        compare is one carry chain over an NF:1 constant table, as the bound's compare was."""
        AW, K = self.AW, self.K
        L = ["  // ---- shared threshold terms (stage D-1): Q_hi, Q_lo of R*P per distinct R, registered"]
        for r in sorted({int(v) for v in self.c.alpha_num if v}):
            tag, rp = self.rtag(r), self.rp_name(r)
            L += [f"  reg signed [{AW - K - 1}:0] qh_{tag};",
                  f"  always @(posedge ap_clk) if (move) qh_{tag} <= {rp}[{AW - 1}:{K}];"]
            if K:
                L += [f"  reg [{K - 1}:0] ql_{tag};", f"  always @(posedge ap_clk) if (move) ql_{tag} <= {rp}[{K - 1}:0];"]
        return L

    @property
    def folded_thr(self) -> bool:
        """Thresholded with folded lanes: the running sum starts at Q_hi (folded_terms)."""
        return not self.c.no_activation and self.c.NF > 1

    def lane_r(self, p: int) -> tuple[int, ...]:
        return tuple(int(self.c.alpha_num[nf * self.c.PE + p]) for nf in range(self.c.NF))

    @property
    def NW(self) -> int:
        """Width of the noActivation output arithmetic (wraps modulo 2**NW; the output is its low OW bits)."""
        return max(self.AW, self.OW)

    def output_terms(self) -> list[str]:
        """noActivation: the output 2*acc - (2**k*c_j + R_j*MW) = 2**(k+1)*S + 2*R*P - const. Folded lanes
        (NF > 1) select their neuron's R*P and constant in stage D-1 and register u = 2*R*P - const; fully
        parallel lanes register 2*R*P per distinct R and subtract their constant in the last stage (a
        constant subtracted from one shared value per lane is chained by Yosys, as in
        shared_threshold_terms)."""
        c, AW, NW = self.c, self.AW, self.NW
        L = ["  // ---- noActivation: 2*R*P (and the constant when folded), registered"]
        ext = lambda x: f"{{{{{NW - AW}{{{x}[{AW - 1}]}}}}, {x}}}" if NW > AW else x  # noqa: E731
        if c.NF == 1:
            for r in sorted(set(int(v) for v in c.alpha_num)) if self.uses_p else []:
                L += [f"  reg signed [{NW - 1}:0] rp2_{self.rtag(r)};",
                      f"  always @(posedge ap_clk) if (move) rp2_{self.rtag(r)} <= $signed({ext(self.rp_name(r))})"
                      f" <<< 1;"]
            return L
        sel = self.nf_at(self.D - 1)
        for p in range(c.PE):
            js = [nf * c.PE + p for nf in range(c.NF)]
            L += case_select(f"signed [{NW - 1}:0]", f"cst{p}", sel, [slit(int(c.out_const[j]), NW) for j in js])
            expr = f"{slit(0, NW)} - cst{p}"
            if self.uses_p:
                L += case_select(f"signed [{AW - 1}:0]", f"rps{p}", sel,
                                 [self.rp_name(int(c.alpha_num[j])) for j in js])
                expr = f"($signed({ext(f'rps{p}')}) <<< 1) - cst{p}"
            L += [f"  reg signed [{NW - 1}:0] u{p};", f"  always @(posedge ap_clk) if (move) u{p} <= {expr};"]
        return L

    # ---- one PE lane: the last stage ----------------------------------------
    def s_accumulator(self, p: int) -> list[str]:
        """``stot<p>``: the step's remaining partial sums plus the lane's running sum (none for one-step
        folds), in the last stage."""
        CW, D = self.CW, self.D
        part = " + ".join(e for e, _ in self.parts[p])
        L = ["  /* verilator lint_off WIDTHEXPAND */"]
        width, init = CW, None
        if self.folded_thr:   # starts at the neuron's Q_hi: ends at Z = S + Q_hi (folded_terms)
            HW, QW = self.HW, self.AW - self.K
            L += case_select(f"signed [{QW - 1}:0]", f"qi{p}", self.nf_at(D),
                             [f"qh_{self.rtag(r)}" if r else slit(0, QW) for r in self.lane_r(p)])
            width, init = HW, f"{{{{{HW - QW}{{qi{p}[{QW - 1}]}}}}, qi{p}}}"
        if self.single:
            L.append(f"  wire [{width - 1}:0] stot{p} = {init + ' + ' if init else ''}{part};")
        else:   # simulation form: the running sum's update written out, so Verilator reads stot only on a push
            start = init or f"{{{CW}{{1'b0}}}}"
            total = f"(fst[{D}] ? {start} : s{p}) + {part}"
            L += [f"  reg [{width - 1}:0] s{p};", f"  wire [{width - 1}:0] stot{p} = {total};",
                  *sim_alternative([f"  always @(posedge ap_clk) if (go) s{p} <= {total};"],
                                   [f"  always @(posedge ap_clk) if (go) s{p} <= stot{p};"])]
        return L + ["  /* verilator lint_on WIDTHEXPAND */"]

    def lane(self, p: int) -> list[str]:
        c, CW = self.c, self.CW
        js = [nf * c.PE + p for nf in range(c.NF)]
        L = [f"  // ---- lane {p}: neurons {js[0]}..{js[-1]} step {c.PE}, last stage"]
        narrow = not c.no_activation and c.NF == 1 and self.EW < CW
        if narrow:   # only the low EW bits of S are read (S <= c_max)
            L.append("  /* verilator lint_off UNUSEDSIGNAL */")
        rep = self.lane_rep[p]
        sw = self.HW if self.folded_thr else CW
        L += self.s_accumulator(p) if rep == p else [f"  wire [{sw - 1}:0] stot{p} = stot{rep};"]
        if narrow:
            L.append("  /* verilator lint_on UNUSEDSIGNAL */")
        return L + self.lane_output(p)

    def lane_output(self, p: int) -> list[str]:
        """``o<p>`` from ``stot<p>`` and the registered terms of the neuron in the last stage."""
        c, CW, K, D = self.c, self.CW, self.K, self.D
        js = [nf * c.PE + p for nf in range(c.NF)]
        if not c.no_activation:
            L = case_select("", f"inv{p}", self.nf_at(D), [f"1'b{int(c.invert[j])}" for j in js])
            if c.NF == 1:
                r, t_hi, t_lo = self.split_consts(js[0])
                EW = self.EW
                sw = f"stot{p}[{EW - 1}:0]" if EW <= CW else zext(f"stot{p}", CW, EW)
                if r == 0:    # R*P = 0: constant bound T_hi + 1 - g (signed: no constant-compare lint)
                    f = min(max(t_hi + 1 - int(t_lo == 0), 0), (1 << EW) - 1)
                    L.append(f"  wire o{p} = ($signed({{1'b0, {sw}}}) >= {slit(f, EW + 1)}) ^ inv{p};")
                else:         # S + Q_hi + g >= T_hi + 1 at HW + 1 bits
                    HW, qh = self.HW, f"qh_{self.rtag(r)}"
                    L.append(f"  wire o{p} = ($signed({zext(f'stot{p}', CW, HW + 1)}) + $signed({{{{2{{{qh}"
                             f"[{self.AW - K - 1}]}}}}, {qh}}}) + $signed({{{HW}'b0, {self.g_expr(r, t_lo)}}}) >= "
                             f"{slit(t_hi + 1, HW + 1)}) ^ inv{p};")
            else:   # {Z, Q_lo} = acc >= T_j at AW + 1 bits (folded_terms)
                AW, sel = self.AW, self.nf_at(D)
                L += case_select(f"signed [{AW}:0]", f"tc{p}", sel,
                                 [slit(int(c.clipped_thresholds[j]), AW + 1) for j in js])
                if K:
                    L += case_select(f"[{K - 1}:0]", f"qo{p}", sel,
                                     [f"ql_{self.rtag(r)}" if r else f"{K}'d0" for r in self.lane_r(p)])
                x = f"{{stot{p}, qo{p}}}" if K else f"stot{p}"
                L.append(f"  wire o{p} = ($signed({x}) >= tc{p}) ^ inv{p};")
            return L
        NW, OW, sw = self.NW, self.OW, CW + K + 1
        sk = f"{{stot{p}, {K + 1}'b0}}"
        L = []
        if sw < NW:
            sk = f"{{{NW - sw}'b0, {sk}}}"
        elif sw > NW:
            L += ["  /* verilator lint_off UNUSEDSIGNAL */", f"  wire [{sw - 1}:0] skw{p} = {sk};",
                  "  /* verilator lint_on UNUSEDSIGNAL */"]
            sk = f"skw{p}[{NW - 1}:0]"
        if c.NF > 1:
            L.append(f"  wire signed [{NW - 1}:0] of{p} = $signed({sk}) + u{p};")
        else:
            j = js[0]
            rp2 = f" + rp2_{self.rtag(int(c.alpha_num[j]))}" if self.uses_p else ""
            L.append(f"  wire signed [{NW - 1}:0] of{p} = ($signed({sk}) - {slit(int(c.out_const[j]), NW)}){rp2};")
        if NW > OW:
            L += ["  /* verilator lint_off UNUSEDSIGNAL */",
                  f"  wire signed [{NW - 1}:0] ofu{p} = of{p};",
                  "  /* verilator lint_on UNUSEDSIGNAL */",
                  f"  wire [{OW - 1}:0] o{p} = ofu{p}[{OW - 1}:0];"]
        else:
            L.append(f"  wire [{OW - 1}:0] o{p} = of{p};")
        return L

    # ---- stage 3: output FIFO ----------------------------------------------
    def fifo(self) -> list[str]:
        return output_fifo(self.c.PE, self.c.out_stream_width, self.c.out_tdata_width)
