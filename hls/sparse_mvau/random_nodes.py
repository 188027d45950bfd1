"""Random SparseXnorMVAU weights for the regression tests (RTL and HLS twin).

Both regressions draw node configurations the same way: a random element mask
at a given sparsity, optionally an all-zero neuron and whole pruned PE x SIMD
blocks, and one of four arithmetic kinds for R / 2**k. Keeping the draw here
means the two test files exercise the same corner cases.

Integer-input nodes (the multi-bit mode) add an input format
(``random_input_format``) and integer stimuli that hit the range ends
(``random_int_inputs``), where accumulator widths are decided.
"""

from __future__ import annotations

import numpy as np

ARITH_KINDS = ("bipolar", "zero_beta", "shared_r", "per_neuron_r")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_mask(rng: np.random.Generator, mw: int, mh: int, pe: int, simd: int, sparsity: float, *,
                zero_neuron: bool, blocks: bool) -> np.ndarray:
    """0/1 mask (MW, MH) with density 1 - sparsity; ``zero_neuron`` empties one column (a neuron with no
    connections), ``blocks`` prunes whole PE x SIMD blocks (memory mode skips them)."""
    mask = (rng.random((mw, mh)) >= sparsity).astype(np.int64)
    if zero_neuron:
        mask[:, rng.integers(mh)] = 0
    if blocks:
        keep = rng.random((mw // simd, mh // pe)) < 0.4
        mask *= np.kron(keep, np.ones((simd, pe), dtype=np.int64))
    return mask


def random_arith(rng: np.random.Generator, mh: int, kind: int) -> tuple[int, np.ndarray]:
    """(k, R) of one ARITH_KINDS entry: +-1 (R = -1, k = 1), {0, beta} (R = 0), one shared R, or R per neuron."""
    if kind == 0:
        return 1, np.full(mh, -1)
    if kind == 1:
        return int(rng.integers(0, 3)), np.zeros(mh, dtype=np.int64)
    k = int(rng.integers(0, 4))
    if kind == 2:
        return k, np.full(mh, int(rng.choice([v for v in range(-(2 << k) - 3, (2 << k) + 4) if v not in (0, -1)])))
    return k, rng.integers(-(2 << k) - 3, (2 << k) + 4, mh)


INPUT_FORMATS = ((8, False), (8, True), (4, False), (4, True), (2, False), (2, True), (3, True), (12, True),
                 (16, False))   # (in_bits, in_signed): UINT8, INT8, UINT4, INT4, UINT2, INT2, INT3, INT12, UINT16


def random_input_format(rng: np.random.Generator) -> tuple[int, bool]:
    """(in_bits, in_signed), UINT8 and INT8 (pixels) most often."""
    if rng.random() < 0.5:
        return 8, bool(rng.integers(2))
    return INPUT_FORMATS[int(rng.integers(len(INPUT_FORMATS)))]


def random_int_inputs(rng: np.random.Generator, n: int, mw: int, bits: int, signed: bool) -> np.ndarray:
    """(n, mw) integers of the format: uniform rows, rows at the range ends (all min, all max, mixed) first."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = rng.integers(lo, hi + 1, (n, mw))
    ends = [np.full(mw, lo), np.full(mw, hi), rng.choice([lo, hi], mw)]
    for i, row in enumerate(ends[:n]):
        x[i] = row
    return x
