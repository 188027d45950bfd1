"""FINN AXI-Stream packing: the one implementation for the host and the board.

Used by the Verilator testbenches (node and stitched rtlsim), the stitcher and
the driver's frame packing (``sbnn.bitstreams.packing``). Every deploy package
ships this file verbatim as ``streams.py`` next to ``packing.py``, so it
depends on numpy only (numpy 1.17+, Python 3.8+, as on PYNQ images).

FINN packing convention (every sbnn RTL node and the stitched accelerator):

* a stream of elements is cut into beats of ``fold`` elements (SIMD of the
  consuming node, PE of the producing one), in order;
* in a beat, element ``i`` sits at TDATA bits ``[i*b, (i+1)*b)`` (element 0 at
  the LSBs), ``b`` bits each, two's complement for signed elements;
* TDATA is ``fold*b`` bits padded with zeros to a multiple of 8 (:func:`pad8`).

A beat in memory is little endian: byte 0 holds TDATA[7:0]. The testbenches
exchange beats as 32-bit words (:func:`pack_stream`), the AXI DMA as
power-of-two byte widths (:func:`pack_beats` with the DMA width).
"""

from __future__ import annotations

import numpy as np

_BYTE_WIDTHS = (8, 16, 32)   # element widths packed by a byte view instead of bit by bit


def pad8(bits: int) -> int:
    """AXI-Stream TDATA width of a ``bits``-wide stream: at least 8, rounded up to a multiple of 8."""
    return max(8, (bits + 7) // 8 * 8)


def _beats(values, fold: int) -> np.ndarray:
    """values -> (beats, fold) int64; a ValueError names non-integer values."""
    a = np.asarray(values)
    v = a.astype(np.int64).reshape(-1, fold)
    if a.dtype.kind not in "iub" and not np.array_equal(v, a.reshape(-1, fold)):
        raise ValueError("stream values must be integers")
    return v


def pack_beats(values, fold: int, bits: int, beat_bits: int) -> np.ndarray:
    """Integers (any shape, ``fold`` elements per beat) -> (beats, beat_bits / 8) uint8 beats in memory.

    Elements are ``bits`` wide (two's complement when negative), element 0 of a beat
    at the LSBs; each beat is zero-padded to ``beat_bits`` (a multiple of 8, at least ``fold*bits``).
    """
    if beat_bits % 8 or beat_bits < fold * bits:
        raise ValueError("beat_bits=%d must be a multiple of 8 and >= fold*bits=%d" % (beat_bits, fold * bits))
    v = _beats(values, fold)
    out = np.zeros((v.shape[0], beat_bits // 8), dtype=np.uint8)
    if bits in _BYTE_WIDTHS:  # byte-aligned elements: their little-endian bytes, in order
        raw = np.ascontiguousarray((v & ((1 << bits) - 1)).astype("<u%d" % (bits // 8)))
        out[:, :fold * bits // 8] = raw.view(np.uint8).reshape(v.shape[0], -1)
        return out
    el = ((v[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8).reshape(v.shape[0], -1)
    padded = np.zeros((v.shape[0], beat_bits), dtype=np.uint8)
    padded[:, :fold * bits] = el
    return np.packbits(padded, axis=1, bitorder="little")


def bits_to_elements(bit_rows, fold: int, bits: int, signed: bool) -> np.ndarray:
    """(beats, >= fold*bits) 0/1 values, TDATA bit 0 first -> (beats, fold) int64 elements."""
    el = np.asarray(bit_rows)[:, :fold * bits].reshape(-1, fold, bits).astype(np.int64)
    vals = (el << np.arange(bits, dtype=np.int64)).sum(axis=2)
    if signed:
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals


def unpack_beats(raw, fold: int, bits: int, signed: bool) -> np.ndarray:
    """(beats, beat bytes) uint8 -> (beats, fold) int64 elements; bits above ``fold*bits`` are ignored."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if bits in _BYTE_WIDTHS:
        el = np.ascontiguousarray(raw[:, :fold * bits // 8])
        return el.view(("<i%d" if signed else "<u%d") % (bits // 8)).astype(np.int64).reshape(-1, fold)
    return bits_to_elements(np.unpackbits(raw, axis=1, bitorder="little"), fold, bits, signed)


def pack_stream(values, fold: int, bits: int, tdata_width: int) -> np.ndarray:
    """(N, elems) integers -> (N*elems/fold, words) uint32 TDATA words: element 0 of a beat at the LSBs.

    ``words`` = ceil(tdata_width / 32): the testbenches' layout of one beat.
    """
    words = (tdata_width + 31) // 32
    return pack_beats(values, fold, bits, 32 * words).view("<u4")


def unpack_stream(words, fold: int, bits: int, signed: bool) -> np.ndarray:
    """(beats, words) uint32 -> (beats*fold,) integers (two's complement when signed)."""
    w = np.ascontiguousarray(words, dtype="<u4")
    return unpack_beats(w.view(np.uint8).reshape(w.shape[0], -1), fold, bits, signed).reshape(-1)
