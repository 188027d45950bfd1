"""Frame packing for the accelerator's AXI-Stream ports, shared by the host and the board.

This file is copied verbatim into every deploy package as ``packing.py``, next to
``streams.py`` (``sbnn/hls/streams.py`` verbatim, the FINN beat packing every
simulator uses too): the PYNQ driver on the board and the host tests run the
same code. Both depend on numpy only (numpy 1.17+ and Python 3.8+, as on PYNQ
images).

FINN packing convention (the stitched accelerator and every sbnn RTL node):

* one frame of ``E`` elements (the frame's logical shape flattened in C order)
  arrives as ``E / F`` beats of ``F`` elements (``F`` = SIMD of the first node
  for the input, PE of the last node for the output);
* in a beat, element ``i`` sits at TDATA bits ``[i*b, (i+1)*b)`` (element 0 at
  the LSB), ``b`` bits each, two's complement for signed elements, bipolar
  {-1, +1} as the bit (x + 1) / 2;
* TDATA is ``F*b`` bits padded with zeros to a multiple of 8 (``tdata_bits``).

In memory (what the AXI DMA reads and writes) every beat occupies
``dma_bits / 8`` bytes, little endian (byte 0 = TDATA[7:0]). ``dma_bits`` is
``tdata_bits`` rounded up to a power of two (at least 8): the AXI DMA only has
power-of-two stream widths; the wrapper around the accelerator drops or zero-fills
the extra high bits. A packed batch is a uint8 array of shape
``(N, frame_bytes)`` with ``frame_bytes = beats * dma_bits / 8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

if __package__:  # sbnn.bitstreams.packing on the host
    from sbnn.hls.streams import pack_beats, pad8, unpack_beats
else:  # the deploy package on the board (no sbnn there): streams.py sits next to this file
    from streams import pack_beats, pad8, unpack_beats

__all__ = ["KINDS", "StreamSpec", "from_words", "pack_frames", "pad8", "pow2_at_least", "random_frames",
           "to_words", "unpack_frames", "validate_frames"]

KINDS = ("uint", "int", "binary", "bipolar")


def pow2_at_least(bits: int) -> int:
    n = 8
    while n < bits:
        n *= 2
    return n


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class StreamSpec:
    """One AXI-Stream port of the accelerator: frame shape, element type and folding.

    ``kind``: ``uint`` (0 .. 2**b - 1), ``int`` (two's complement), ``binary``
    (0/1, b = 1) or ``bipolar`` (-1/+1 carried as the bit (x + 1) / 2, b = 1).
    ``dma_bits`` = 0 means the default: ``tdata_bits`` rounded up to a power of two.
    """

    shape: tuple
    elem_bits: int
    elems_per_beat: int
    kind: str = "uint"
    dma_bits: int = 0

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind not in KINDS:
            raise ValueError("stream kind %r: expected one of %s" % (self.kind, ", ".join(KINDS)))
        if not 1 <= self.elem_bits <= 63:
            raise ValueError("elem_bits=%d: expected 1..63" % self.elem_bits)
        if self.kind in ("binary", "bipolar") and self.elem_bits != 1:
            raise ValueError("%s elements are 1 bit wide, got elem_bits=%d" % (self.kind, self.elem_bits))
        if not self.shape or min(self.shape) < 1:
            raise ValueError("frame shape %s must be non-empty with positive sizes" % (self.shape,))
        if self.elems_per_beat < 1 or self.elems % self.elems_per_beat:
            raise ValueError("elems_per_beat=%d must divide the %d elements of a frame"
                             % (self.elems_per_beat, self.elems))
        if self.dma_bits == 0:
            object.__setattr__(self, "dma_bits", pow2_at_least(self.tdata_bits))
        if self.dma_bits < self.tdata_bits or self.dma_bits % 8:
            raise ValueError("dma_bits=%d must be a multiple of 8 and >= tdata_bits=%d"
                             % (self.dma_bits, self.tdata_bits))

    # ---- derived sizes ------------------------------------------------------
    @property
    def elems(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def beats(self) -> int:
        return self.elems // self.elems_per_beat

    @property
    def stream_bits(self) -> int:
        return self.elems_per_beat * self.elem_bits

    @property
    def tdata_bits(self) -> int:
        return pad8(self.stream_bits)

    @property
    def beat_bytes(self) -> int:
        return self.dma_bits // 8

    @property
    def frame_bytes(self) -> int:
        return self.beats * self.beat_bytes

    @property
    def signed(self) -> bool:
        return self.kind in ("int", "bipolar")

    @property
    def value_range(self) -> tuple:
        if self.kind == "bipolar":
            return -1, 1
        if self.kind == "int":
            return -(1 << (self.elem_bits - 1)), (1 << (self.elem_bits - 1)) - 1
        return 0, (1 << self.elem_bits) - 1

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype frames must have on the host side."""
        if self.kind == "bipolar":
            return np.dtype(np.int8)
        width = 8
        while width < self.elem_bits:
            width *= 2
        return np.dtype(("int%d" if self.kind == "int" else "uint%d") % width)

    # ---- (de)serialisation for config.json ----------------------------------
    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "elem_bits": self.elem_bits, "elems_per_beat": self.elems_per_beat,
                "kind": self.kind, "dma_bits": self.dma_bits, "tdata_bits": self.tdata_bits,
                "beats": self.beats, "frame_bytes": self.frame_bytes, "dtype": self.dtype.name}

    @classmethod
    def from_dict(cls, d: dict) -> "StreamSpec":
        return cls(shape=tuple(d["shape"]), elem_bits=int(d["elem_bits"]), elems_per_beat=int(d["elems_per_beat"]),
                   kind=d.get("kind", "uint"), dma_bits=int(d.get("dma_bits", 0)))


def validate_frames(frames, spec: StreamSpec, what: str = "input frames") -> np.ndarray:
    """Check shape (N, *spec.shape), dtype and value range; one-line ValueError naming expected vs given."""
    expected = "(N, " + ", ".join(str(s) for s in spec.shape) + ")"
    if not isinstance(frames, np.ndarray):
        raise ValueError("%s: expected a numpy array of shape %s and dtype %s, got %s"
                         % (what, expected, spec.dtype.name, type(frames).__name__))
    if frames.ndim != len(spec.shape) + 1 or tuple(frames.shape[1:]) != spec.shape or frames.shape[0] < 1:
        raise ValueError("%s: expected shape %s with N >= 1 and dtype %s, got shape %s and dtype %s"
                         % (what, expected, spec.dtype.name, _fmt_shape(frames.shape), frames.dtype.name))
    if frames.dtype != spec.dtype:
        raise ValueError("%s: expected dtype %s (shape %s), got dtype %s (shape %s)"
                         % (what, spec.dtype.name, expected, frames.dtype.name, _fmt_shape(frames.shape)))
    lo, hi = spec.value_range
    if spec.kind == "bipolar":
        bad = (frames != -1) & (frames != 1)
        if bad.any():
            raise ValueError("%s: bipolar elements must be -1 or +1, got %d" % (what, int(frames[bad].flat[0])))
    else:
        fmin, fmax = int(frames.min()), int(frames.max())
        if fmin < lo or fmax > hi:
            raise ValueError("%s: %s elements of %d bits must lie in [%d, %d], got values in [%d, %d]"
                             % (what, spec.kind, spec.elem_bits, lo, hi, fmin, fmax))
    return frames


def pack_frames(frames, spec: StreamSpec, validate: bool = True) -> np.ndarray:
    """(N, *shape) frames -> (N, frame_bytes) uint8, the DMA's memory image of the input stream."""
    if validate:
        validate_frames(frames, spec)
    n = frames.shape[0]
    vals = frames.reshape(n * spec.beats, spec.elems_per_beat)
    if spec.kind == "bipolar":
        vals = (vals.astype(np.int8) + 1) // 2  # -1/+1 travel as the bits 0/1
    out = pack_beats(vals, spec.elems_per_beat, spec.elem_bits, spec.dma_bits)
    return out.reshape(n, spec.frame_bytes)


def unpack_frames(buf, spec: StreamSpec) -> np.ndarray:
    """(N, frame_bytes) (or flat) uint8 -> (N, *shape) int64 element values; padding bits are ignored."""
    buf = np.asarray(buf)
    if buf.dtype != np.uint8 or buf.size % spec.frame_bytes:
        raise ValueError("packed stream: expected uint8 with a multiple of %d bytes per frame, got dtype %s, %d bytes"
                         % (spec.frame_bytes, buf.dtype.name, buf.size))
    n = buf.size // spec.frame_bytes
    v = unpack_beats(np.ascontiguousarray(buf).reshape(n * spec.beats, spec.beat_bytes), spec.elems_per_beat,
                     spec.elem_bits, spec.kind == "int")
    if spec.kind == "bipolar":
        v = 2 * v - 1
    return v.reshape((n,) + spec.shape)


def to_words(buf, spec: StreamSpec, words_per_beat: int = 0) -> np.ndarray:
    """(N, frame_bytes) uint8 -> (N*beats, words_per_beat) little-endian uint32 words per beat
    (the layout of a C++/Verilator testbench); zero-filled or truncated to ``words_per_beat``."""
    buf = np.ascontiguousarray(np.asarray(buf, dtype=np.uint8)).reshape(-1, spec.beat_bytes)
    wpb = words_per_beat or (spec.beat_bytes + 3) // 4
    padded = np.zeros((buf.shape[0], 4 * wpb), dtype=np.uint8)
    k = min(4 * wpb, spec.beat_bytes)
    padded[:, :k] = buf[:, :k]
    return padded.view("<u4")


def from_words(words, spec: StreamSpec) -> np.ndarray:
    """Inverse of :func:`to_words`: (N*beats, W) uint32 -> (N, frame_bytes) uint8."""
    w = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
    raw = w.view(np.uint8).reshape(w.shape[0], -1)
    out = np.zeros((raw.shape[0], spec.beat_bytes), dtype=np.uint8)
    k = min(raw.shape[1], spec.beat_bytes)
    out[:, :k] = raw[:, :k]
    if out.shape[0] % spec.beats:
        raise ValueError("%d beats is not a whole number of frames of %d beats" % (out.shape[0], spec.beats))
    return out.reshape(-1, spec.frame_bytes)


def random_frames(spec: StreamSpec, n: int, seed: int = 0) -> np.ndarray:
    """n valid frames (for throughput tests and self-checks)."""
    rng = np.random.default_rng(seed)
    lo, hi = spec.value_range
    if spec.kind == "bipolar":
        x = rng.integers(0, 2, size=(n,) + spec.shape) * 2 - 1
    else:
        x = rng.integers(lo, hi, size=(n,) + spec.shape, endpoint=True)
    return x.astype(spec.dtype)
