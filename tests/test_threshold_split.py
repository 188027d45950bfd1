"""The narrow threshold decomposition used by the RTL lanes equals the plain compare."""

from __future__ import annotations

import numpy as np

from sbnn.hls.sparse_mvau.threshold_split import clamp_width, narrow_compare, split, split_compare


def test_split_is_floor_division():
    for v in range(-40, 40):
        for k in range(4):
            hi, lo = split(v, k)
            assert v == (hi << k) + lo and 0 <= lo < (1 << k)


def test_decomposition_matches_plain_compare_random():
    rng = np.random.default_rng(0)
    for _ in range(20000):
        k = int(rng.integers(0, 5))
        c = int(rng.integers(0, 70))
        r = int(rng.integers(-20, 21))
        mw = c + int(rng.integers(0, 200))
        s = int(rng.integers(0, c + 1))
        p = int(rng.integers(s, mw - c + s + 1))
        acc = (s << k) + r * p
        t = acc + int(rng.integers(-(8 << k), (8 << k) + 1))
        if rng.random() < 0.05:                         # far thresholds: clamping at both ends
            t = int(rng.integers(-(1 << 14), 1 << 14))
        want = acc >= t
        assert split_compare(s, r * p, t, k) == want, (s, r, p, t, k)
        assert narrow_compare(s, r * p, t, k, clamp_width(c)) == want, (s, r, p, t, k, c)


def test_exhaustive_small():
    for k in range(3):
        for q in range(-20, 21):
            for t in range(-30, 31):
                for s in range(0, 5):
                    want = (s << k) + q >= t
                    assert split_compare(s, q, t, k) == want
                    assert narrow_compare(s, q, t, k, clamp_width(4)) == want
