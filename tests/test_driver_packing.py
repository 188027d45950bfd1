"""Driver packing (packing.py, shipped to the board): round trips, agreement with the RTL testbenches'
packing, and one-line ValueErrors for bad input frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbnn.bitstreams.driver import Accelerator, SimBackend
from sbnn.bitstreams.packing import StreamSpec, pack_frames, random_frames, unpack_frames, validate_frames
from sbnn.bitstreams.simbackend import decode_words, encode_words


@st.composite
def specs(draw):
    kind = draw(st.sampled_from(["uint", "int", "binary", "bipolar"]))
    bits = 1 if kind in ("binary", "bipolar") else draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 32]))
    if kind == "int" and bits == 1:
        bits = 2
    fold = draw(st.integers(1, 40))
    beats = draw(st.integers(1, 5))
    rows = draw(st.sampled_from([1, beats]))
    shape = (rows, fold * beats // rows) if rows > 1 else (fold * beats,)
    spec = StreamSpec(shape, bits, fold, kind)
    extra = draw(st.sampled_from([0, 1, 2]))  # wider DMA beats than the minimum power of two
    return StreamSpec(shape, bits, fold, kind, dma_bits=spec.dma_bits << extra)


@settings(max_examples=150, deadline=None)
@given(spec=specs(), n=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_pack_unpack_round_trip(spec, n, seed):
    x = random_frames(spec, n, seed)
    packed = pack_frames(x, spec)
    assert packed.dtype == np.uint8 and packed.shape == (n, spec.frame_bytes)
    assert np.array_equal(unpack_frames(packed, spec), x)
    # the independent beat-by-beat codec (the reference backend's) agrees in both directions
    assert np.array_equal(decode_words(packed, spec), x.reshape(n, -1))
    assert np.array_equal(encode_words(x.reshape(n, -1), spec), packed)
    # padding above the stream bits is zero in every beat
    bits = np.unpackbits(packed.reshape(-1, spec.beat_bytes), axis=1, bitorder="little")
    assert not bits[:, spec.stream_bits:].any()


def test_element_zero_sits_at_the_lsb():
    spec = StreamSpec((4,), 4, 2, "uint")           # 2 elements of 4 bits per 8-bit beat
    packed = pack_frames(np.array([[1, 2, 3, 4]], dtype=np.uint8), spec)
    assert packed.tolist() == [[0x21, 0x43]]
    spec = StreamSpec((3,), 1, 3, "bipolar")
    assert pack_frames(np.array([[1, -1, 1]], dtype=np.int8), spec).tolist() == [[0b101]]


def test_matches_node_rtlsim_packing():
    from sbnn.bitstreams.packing import to_words
    from sbnn.bitstreams.simbackend import node_io
    from sbnn.hls.sparse_mvau.rtlsim import pack_inputs
    from support_rtl import tiny_node_config

    cfg = tiny_node_config(MW=60, MH=4, PE=2, SIMD=20)   # 24-bit TDATA on a 32-bit DMA beat
    spec = node_io(cfg)[0]
    a = random_frames(spec, 5, 1)
    ref = pack_inputs(cfg, a)
    assert np.array_equal(to_words(pack_frames(a, spec), spec, ref.shape[1]), ref)


def test_matches_stitch_packing():
    from sbnn.bitstreams.packing import to_words
    from sbnn.hls.streams import pack_stream, unpack_stream

    spec = StreamSpec((784,), 8, 49, "uint")
    x = random_frames(spec, 3, 2)
    words = pack_stream(x, 49, 8, spec.tdata_bits)
    assert np.array_equal(to_words(pack_frames(x, spec), spec, words.shape[1]), words)
    out = StreamSpec((10,), 5, 2, "int")
    y = random_frames(out, 3, 3)
    w = to_words(pack_frames(y, out), out)
    assert np.array_equal(unpack_stream(w, 2, 5, True).reshape(3, 10), y)


# ---- one-line ValueErrors ----------------------------------------------------------------
SPEC = StreamSpec((784,), 8, 49, "uint")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_wrong_shape_is_one_line_value_error():
    with pytest.raises(ValueError) as ei:
        pack_frames(np.zeros((2, 28, 28), np.uint8), SPEC)
    assert _one_line(ei) == ("input frames: expected shape (N, 784) with N >= 1 and dtype uint8, "
                             "got shape (2, 28, 28) and dtype uint8")


def test_single_frame_without_batch_axis_is_refused():
    with pytest.raises(ValueError, match=r"expected shape \(N, 784\).*got shape \(784,\)"):
        validate_frames(np.zeros(784, np.uint8), SPEC)


def test_wrong_dtype_is_one_line_value_error():
    with pytest.raises(ValueError) as ei:
        pack_frames(np.zeros((2, 784), np.float32), SPEC)
    assert _one_line(ei) == "input frames: expected dtype uint8 (shape (N, 784)), got dtype float32 (shape (2, 784))"


def test_out_of_range_values_are_refused():
    spec = StreamSpec((8,), 4, 8, "uint")
    with pytest.raises(ValueError, match=r"uint elements of 4 bits must lie in \[0, 15\], got values in \[0, 16\]"):
        pack_frames(np.array([[0] * 7 + [16]], np.uint8), spec)


def test_bad_bipolar_value_is_refused():
    spec = StreamSpec((4,), 1, 4, "bipolar")
    with pytest.raises(ValueError, match="bipolar elements must be -1 or \\+1, got 0"):
        pack_frames(np.array([[1, -1, 0, 1]], np.int8), spec)


def test_non_array_input_is_refused():
    with pytest.raises(ValueError, match=r"expected a numpy array of shape \(N, 784\) and dtype uint8, got list"):
        pack_frames([[0] * 784], SPEC)


def _identity_accel(batch=0):
    spec = StreamSpec((8,), 8, 4, "uint")
    cfg = {"input": spec.to_dict(), "output": {**spec.to_dict(), "meaning": "raw"}}
    return Accelerator(cfg, SimBackend(lambda p: p, name="loopback"), batch=batch)


def test_accelerator_validates_before_transfer():
    calls = []
    spec = StreamSpec((8,), 8, 4, "uint")
    acc = Accelerator({"input": spec.to_dict(), "output": spec.to_dict()}, SimBackend(lambda p: calls.append(p) or p))
    with pytest.raises(ValueError, match="expected dtype uint8"):
        acc.infer(np.zeros((3, 8), np.int32))
    assert calls == [], "nothing reaches the backend"


def test_labels_shape_mismatch():
    acc = _identity_accel()
    with pytest.raises(ValueError, match=r"labels: expected shape \(3,\) for 3 frames, got shape \(2,\)"):
        acc.accuracy(np.zeros((3, 8), np.uint8), np.zeros(2))


def test_backend_returning_wrong_size_is_caught():
    spec = StreamSpec((8,), 8, 4, "uint")
    acc = Accelerator({"input": spec.to_dict(), "output": spec.to_dict()}, SimBackend(lambda p: p[:, :4], name="bad"))
    msg = "backend bad returned 12 uint8 values for 3 frames, expected 24 uint8 bytes"
    with pytest.raises(RuntimeError, match=msg):
        acc.execute(np.zeros((3, 8), np.uint8))


def test_loopback_batches_and_throughput():
    acc = _identity_accel(batch=7)
    x = random_frames(acc.in_spec, 50, 4)
    assert np.array_equal(acc.execute(x), x)
    r = acc.throughput(200)
    assert r["frames"] == 200 and r["fps"] > 0 and r["fps_end_to_end"] > 0 and r["backend"] == "loopback"
    with pytest.raises(ValueError, match="need n >= 1"):
        acc.throughput(0)


def test_conv_images_in_either_layout():
    """A conv net's input is NHWC pixels (config.json image_layout); NCHW arrays are transposed, not misread."""
    from sbnn.bitstreams.deploy import make_config

    spec = StreamSpec((4, 5, 3), 8, 3, "uint")
    cfg = make_config(spec, StreamSpec((60,), 8, 3, "uint"))
    assert cfg["image_layout"] == "NHWC"
    assert make_config(StreamSpec((784,), 8, 4, "uint"), StreamSpec((1,), 8, 1, "uint"))["image_layout"] is None
    acc = Accelerator(cfg, SimBackend(lambda packed: packed))    # echo: the "scores" are the pixels
    nhwc = np.random.default_rng(0).integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    assert np.array_equal(acc.images_to_frames(nchw, "NCHW"), nhwc)
    assert np.array_equal(acc.infer(nchw, layout="NCHW"), acc.infer(nhwc))
    assert np.array_equal(acc.infer(nhwc), nhwc.reshape(6, -1).argmax(axis=1))
    with pytest.raises(ValueError, match="shape"):
        acc.infer(nchw)           # NCHW given as the default NHWC: refused by the shape check, never misread
    with pytest.raises(ValueError, match="layout"):
        acc.images_to_frames(nhwc, "NWHC")
