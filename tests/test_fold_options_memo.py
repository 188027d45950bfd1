"""fold_options remembers a node's options by content (the folder's searches ask again at every step): the
same node at another folding gets the same options, a changed mask or threshold new ones, and callers get
their own list."""

from __future__ import annotations

import dataclasses

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.folding import _evaluate_options, fold_options
from sbnn.hls.sparse_mvau.sample_layers import hidden_layer

MODES = ("baked", "memory")


def test_options_follow_the_nodes_content_not_its_folding():
    cfg = hidden_layer(64, 64, 1, 16, "memory")
    first = fold_options(cfg, MODES, 190.0)
    assert first == _evaluate_options(cfg, MODES, 190.0, 1)
    assert fold_options(cfg.refolded(64, 64, "baked"), MODES, 190.0) == first
    first.clear()
    assert fold_options(cfg, MODES, 190.0), "a caller's list is its own"

    mask = cfg.mask.copy()
    mask[:, :8] = 0                                   # eight neurons lose every weight
    pruned = dataclasses.replace(cfg, mask=mask)
    assert fold_options(pruned, MODES, 190.0) == _evaluate_options(pruned, MODES, 190.0, 1)
    assert fold_options(pruned, MODES, 190.0) != fold_options(cfg, MODES, 190.0)
    thr = dataclasses.replace(cfg, thresholds=cfg.thresholds + 1)
    assert fold_options(thr, MODES, 190.0) == _evaluate_options(thr, MODES, 190.0, 1)


def test_options_follow_the_lut_coefficients(monkeypatch):
    """A refit in the same process (bench/cost_model_refit.py) gets options under its new coefficients."""
    cfg = hidden_layer(64, 64, 1, 16, "memory")
    before = fold_options(cfg, MODES, 190.0)
    memory = dict(estimates.LUT_COEF["memory"], one=estimates.LUT_COEF["memory"]["one"] + 1000.0)
    monkeypatch.setitem(estimates.LUT_COEF, "memory", memory)
    after = fold_options(cfg, MODES, 190.0)
    assert after == _evaluate_options(cfg, MODES, 190.0, 1)
    lut_before = {(o.pe, o.simd): o.lut for o in before if o.mode == "memory"}
    lut_after = {(o.pe, o.simd): o.lut for o in after if o.mode == "memory"}
    assert lut_after.keys() == lut_before.keys() and lut_after
    assert all(abs(lut_after[k] - lut_before[k] - 1000.0) < 1e-6 for k in lut_after)
