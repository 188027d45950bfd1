"""Host-side transfer hooks for the driver's :class:`~sbnn.bitstreams.driver.SimBackend`.

A hook is ``transfer(packed_in: (N, in frame_bytes) uint8) -> (N, out frame_bytes) uint8``:
exactly what the AXI DMA moves on the board, so ``Accelerator(config,
SimBackend(hook))`` runs the board's packing/unpacking code against a model of
the accelerator.

* :func:`reference_node_transfer`: one sparse MVAU node emulated by the bit-true
  Python reference, decoding and encoding the DMA words with its own
  (deliberately independent, integer-per-beat) implementation of the FINN
  packing, so a packing bug on the driver side cannot cancel out.
* :func:`node_rtlsim_transfer`: the same node in Verilator (generated RTL).
* :func:`stitched_rtlsim_transfer`: the stitched accelerator
  (:mod:`sbnn.hls.stitched_rtlsim`) in Verilator; checks that the driver's
  words equal the testbench's packing of the same values (same FINN stream
  parameters: fold, element bits, TDATA width).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from sbnn.hls.sparse_mvau.rtlsim import pack_inputs, simulate
from sbnn.hls.stitched_rtlsim import simulate_stitched
from sbnn.hls.streams import pack_stream

from .packing import StreamSpec, pack_frames, to_words, unpack_frames
from .vivado import io_from_stitched

Transfer = Callable[[np.ndarray], np.ndarray]


# ---- an independent word-level codec (Python integers, one beat at a time) ------------
def decode_words(packed: np.ndarray, spec: StreamSpec) -> np.ndarray:
    """(N, frame_bytes) uint8 -> (N, elems) int64, beat by beat as the RTL reads TDATA."""
    beats = np.asarray(packed, dtype=np.uint8).reshape(-1, spec.beat_bytes)
    b, f, mask = spec.elem_bits, spec.elems_per_beat, (1 << spec.elem_bits) - 1
    vals = []
    for beat in beats:
        word = int.from_bytes(beat.tobytes(), "little") & ((1 << spec.tdata_bits) - 1)
        for i in range(f):
            v = (word >> (i * b)) & mask
            if spec.kind == "int" and v >> (b - 1):
                v -= 1 << b
            elif spec.kind == "bipolar":
                v = 2 * v - 1
            vals.append(v)
    return np.array(vals, dtype=np.int64).reshape(-1, spec.elems)


def encode_words(values: np.ndarray, spec: StreamSpec) -> np.ndarray:
    """(N, elems) integers -> (N, frame_bytes) uint8, beat by beat as the RTL writes TDATA."""
    v = np.asarray(values, dtype=np.int64).reshape(-1, spec.elems_per_beat)
    b, mask = spec.elem_bits, (1 << spec.elem_bits) - 1
    out = bytearray()
    for beat in v:
        word = 0
        for i, x in enumerate(beat.tolist()):
            if spec.kind == "bipolar":
                x = (x + 1) // 2
            word |= (x & mask) << (i * b)
        out += word.to_bytes(spec.beat_bytes, "little")
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(-1, spec.frame_bytes)


# ---- one sparse MVAU node ---------------------------------------------------------------
def node_io(cfg) -> tuple[StreamSpec, StreamSpec, str]:
    """Stream specs and output meaning of a :class:`SparseMVAUConfig` used as a whole accelerator."""
    in_spec = StreamSpec((cfg.MW,), 1, cfg.SIMD, "binary")
    if cfg.no_activation:
        return in_spec, StreamSpec((cfg.MH,), cfg.out_width, cfg.PE, "int"), "scores"
    return in_spec, StreamSpec((cfg.MH,), 1, cfg.PE, "binary"), "raw"


def reference_node_transfer(cfg, in_spec: StreamSpec | None = None, out_spec: StreamSpec | None = None) -> Transfer:
    """Hook emulating one node with :func:`sbnn.hls.sparse_mvau.reference.sparse_mvau_reference`."""
    d_in, d_out, _ = node_io(cfg)
    in_spec, out_spec = in_spec or d_in, out_spec or d_out

    def transfer(packed_in: np.ndarray) -> np.ndarray:
        a = decode_words(packed_in, in_spec)
        if in_spec.kind == "bipolar":
            a = (a + 1) // 2
        return encode_words(cfg.reference(a), out_spec)

    return transfer


def node_rtlsim_transfer(cfg, in_spec: StreamSpec | None = None, out_spec: StreamSpec | None = None,
                         **sim_kw) -> Transfer:
    """Hook streaming the frames through the node's generated RTL in Verilator (hls.sparse_mvau.rtlsim)."""
    d_in, d_out, _ = node_io(cfg)
    in_spec, out_spec = in_spec or d_in, out_spec or d_out

    def transfer(packed_in: np.ndarray) -> np.ndarray:
        bits = unpack_frames(packed_in, in_spec).reshape(-1, cfg.MW)
        if in_spec.kind == "bipolar":
            bits = (bits + 1) // 2
        ref_words = pack_inputs(cfg, bits)
        if not np.array_equal(to_words(packed_in, in_spec, ref_words.shape[1]), ref_words):
            raise AssertionError("driver packing differs from the rtlsim testbench's packing")
        res = simulate(cfg, bits, **sim_kw)
        return pack_frames(res.outputs.astype(out_spec.dtype), out_spec)

    return transfer


# ---- the stitched accelerator -----------------------------------------------------------------
def stitched_rtlsim_transfer(design, in_spec: StreamSpec | None = None, out_spec: StreamSpec | None = None,
                             **sim_kw) -> Transfer:
    """Hook over :func:`sbnn.hls.stitched_rtlsim.simulate_stitched` for a stitched design.

    The driver's packed input words are checked against the testbench's own
    packing of the same values (:func:`sbnn.hls.streams.pack_stream`) before simulating.
    """
    io = io_from_stitched(design)
    in_spec, out_spec = in_spec or io["input"], out_spec or io["output"]

    def transfer(packed_in: np.ndarray) -> np.ndarray:
        vals = unpack_frames(packed_in, in_spec).reshape(packed_in.shape[0], -1)
        hw_vals = (vals + 1) // 2 if in_spec.kind == "bipolar" else vals
        ref_words = pack_stream(hw_vals, design.in_fold, in_spec.elem_bits, design.in_width)
        if not np.array_equal(to_words(packed_in, in_spec, ref_words.shape[1]), ref_words):
            raise AssertionError("driver packing differs from the stitched rtlsim's packing")
        res = simulate_stitched(design, hw_vals, **sim_kw)
        outs = res.outputs.reshape((packed_in.shape[0],) + out_spec.shape)
        return pack_frames(outs.astype(out_spec.dtype), out_spec)

    return transfer
