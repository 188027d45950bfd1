"""sbnn.hls.streams (FINN AXI-Stream packing, shared by the testbenches, the stitcher and the board driver)
against a beat-by-beat Python-integer reference."""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.streams import pack_beats, pack_stream, pad8, unpack_beats, unpack_stream


def _reference_words(values: np.ndarray, fold: int, bits: int, words: int) -> np.ndarray:
    out = []
    for beat in values.reshape(-1, fold).tolist():
        tdata = sum((v & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(beat))
        out.append([(tdata >> (32 * w)) & 0xFFFFFFFF for w in range(words)])
    return np.array(out, dtype=np.uint32)


@pytest.mark.parametrize("bits,signed", [(b, s) for b in (1, 2, 3, 5, 8, 9, 16, 17, 32) for s in (False, True)
                                         if b > 1 or not s])
@pytest.mark.parametrize("fold", [1, 3, 7])
def test_pack_unpack_match_the_reference(bits, signed, fold):
    rng = np.random.default_rng(bits * 100 + fold)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = rng.integers(lo, hi, size=(4, fold * 3), endpoint=True)
    width = pad8(fold * bits)
    words = pack_stream(x, fold, bits, width)
    assert words.dtype == np.dtype("<u4") and words.shape == (12, (width + 31) // 32)
    assert np.array_equal(words, _reference_words(x, fold, bits, (width + 31) // 32))
    assert np.array_equal(unpack_stream(words, fold, bits, signed).reshape(x.shape), x)
    raw = pack_beats(x, fold, bits, 2 * width)   # a wider beat: zero padding above the stream bits
    assert raw.shape == (12, width // 4) and not raw[:, width // 8:].any()
    assert np.array_equal(unpack_beats(raw, fold, bits, signed).reshape(x.shape), x)


def test_pad8_and_lsb_first():
    assert [pad8(b) for b in (1, 8, 9, 24, 25)] == [8, 8, 16, 24, 32]
    assert pack_stream(np.array([[1, 0, 3]]), 3, 2, 8)[0, 0] == 0b110001


def test_bad_values_and_widths_are_refused():
    with pytest.raises(ValueError, match="must be integers"):
        pack_stream(np.array([[0.5, 1.0]]), 2, 2, 8)
    with pytest.raises(ValueError, match="beat_bits=8 must be a multiple of 8 and >= fold\\*bits=12"):
        pack_beats(np.zeros((1, 4), np.int64), 4, 3, 8)
