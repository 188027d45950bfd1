"""Random sparse MVAU configurations shaped like trained layers: the cost model's default-tier test sample.

tests/test_cost_model.py synthesises SAMPLE with Yosys and checks the model against it; bench/cost_model.py
adds the same points (``--models ...,sample``) to the trained layers it fits the coefficients on, so the
sample checks the fitted model on points it was fitted to cover, next to the trained ones.
"""

from __future__ import annotations

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig


def hidden_layer(mw: int, mh: int, pe: int, simd: int, mode: str, seed: int = 0, ec: float = 0.1) -> SparseMVAUConfig:
    """A thresholded {alpha, beta} layer like the trained ones: one shared R, thresholds around the mean."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) < ec).astype(np.int64)
    c = mask.sum(axis=0)
    thr = rng.integers(-mw // 4, mw // 4 + 1, mh) + (c << 7) - 115 * mw // 2
    return SparseMVAUConfig(mw, mh, pe, simd, 7, mask, np.full(mh, -115), thr, rng.integers(0, 2, mh), mode,
                            name=f"m{mw}x{mh}_{pe}_{simd}_{mode}")


def classifier(mw: int, mh: int, pe: int, simd: int, mode: str, seed: int = 0) -> SparseMVAUConfig:
    """A dense +-1 classifier as the compiler writes it: R = -1 at shift 1, about half the mask set, no
    activation (the lanes' sums leave the layer)."""
    mask = (np.random.default_rng(seed).random((mw, mh)) < 0.5).astype(np.int64)
    return SparseMVAUConfig(mw, mh, pe, simd, 1, mask, np.full(mh, -1), weight_mode=mode, no_activation=True,
                            name=f"cls{mw}x{mh}_{pe}_{simd}_{mode}")


SAMPLE = [(hidden_layer, 64, 64, 64, 64, "baked"), (hidden_layer, 64, 64, 1, 16, "memory"),
          (classifier, 64, 10, 10, 4, "memory"), (hidden_layer, 128, 32, 4, 128, "baked"),
          (hidden_layer, 256, 64, 4, 32, "memory")]


def sample_configs() -> list[SparseMVAUConfig]:
    return [make(*shape) for make, *shape in SAMPLE]
