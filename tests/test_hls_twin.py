"""HLS C++ twin (hls_twin/sparse_xnor_mvau.hpp), C-simulated with g++ and the
hls4ml ap_types, vs reference.sparse_mvau_reference, bit for bit.

Random folding, sparsity (0 .. 0.99, plus whole pruned PE x SIMD blocks and
all-zero neurons), R/k ({0, beta}, +-1, shared and per-neuron R), thresholds
with inversions and noActivation layers. Output beats are decoded from their
raw bits, so the FINN stream packing is checked as well; the testbench fails on
a wrong beat count and csim fails on hls::stream misuse warnings.

All configurations of a test share one g++ build (one kernel instance each).
"""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.sparse_mvau import hls_csim
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.random_nodes import divisors, random_arith, random_mask
from sbnn.hls.sparse_mvau.reference import acc_range

N_DEFAULT = 10
N_SLOW = 120
BATCH = 30


def _tools_available() -> bool:
    try:
        hls_csim.find_cxx()
        hls_csim.find_ap_types()
    except hls_csim.HlsCsimToolError:
        return False
    return True


needs_tools = pytest.mark.skipif(not _tools_available(), reason="g++ or hls4ml ap_types headers missing")


def random_case(seed: int) -> tuple[SparseMVAUConfig, np.ndarray]:
    """One configuration + ~50 input vectors; seeds 0..7 pin the corner cases."""
    rng = np.random.default_rng(4000 + seed)
    mw = int(rng.choice([4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 200]))
    mh = int(rng.choice([1, 2, 4, 6, 8, 12, 16, 32]))
    pe, simd = int(rng.choice(divisors(mh))), int(rng.choice(divisors(mw)))
    if seed == 1:
        pe, simd = mh, mw                          # fully parallel: one step per vector
    if seed == 2:
        pe, simd = 1, 1                            # fully folded
    sparsity = [0.0, 0.99, 0.0, 0.9, 0.5, 0.99, 0.3, 0.8][seed] if seed < 8 else \
        float(rng.choice([0, 0.3, 0.5, 0.8, 0.9, 0.99, rng.random()]))
    zero_neuron = seed % 3 == 0 or rng.random() < 0.3
    blocks = seed in (4, 6) or rng.random() < 0.3
    if seed == 2:
        zero_neuron = blocks = False               # and fully dense: every weight at beta
    mask = random_mask(rng, mw, mh, pe, simd, sparsity, zero_neuron=zero_neuron, blocks=blocks)
    k, r = random_arith(rng, mh, seed % 4 if seed < 8 else int(rng.integers(4)))
    no_act = seed in (2, 5, 7) or (seed >= 8 and rng.random() < 0.35)
    lo, hi = acc_range(mask, r, k)
    thr = rng.integers(lo - 2, hi + 3) if not no_act else None
    inv = rng.integers(0, 2, mh) if not no_act else None
    cfg = SparseMVAUConfig(mw, mh, pe, simd, k, mask, r, thr, inv, weight_mode="memory", no_activation=no_act)
    p1 = rng.random()                              # input density differs per config
    inputs = (rng.random((50, mw)) < p1).astype(np.int64)
    inputs[0], inputs[1] = 0, 1                    # extremes of P
    return cfg, inputs


def check(cases: list[tuple[SparseMVAUConfig, np.ndarray]]) -> None:
    outs = hls_csim.csim_many(cases)
    bad = []
    for seed, ((c, x), o) in enumerate(zip(cases, outs)):
        ref = c.reference(x)
        assert o.shape == ref.shape
        mism = int((o != ref).sum())
        if mism:
            bad.append(f"case {seed}: MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} k={c.alpha_shift} "
                       f"R={sorted(set(c.alpha_num.tolist()))} noact={c.no_activation}: {mism} mismatches")
    assert not bad, "\n".join(bad)


def test_corner_configs_are_covered():
    cases = [random_case(s) for s in range(N_DEFAULT)]
    cfgs = [c for c, _ in cases]
    sp = [1 - c.mask.mean() for c in cfgs]
    assert 0.0 in sp and max(sp) >= 0.97
    assert any((c.mask.sum(axis=0) == 0).any() for c in cfgs)
    assert any(c.no_activation for c in cfgs) and any(not c.no_activation for c in cfgs)
    assert any((c.alpha_num == -1).all() and c.alpha_shift == 1 for c in cfgs)
    assert any((c.alpha_num == 0).all() for c in cfgs)
    assert any(len(set(c.alpha_num.tolist())) > 1 for c in cfgs)
    assert any(c.PE < c.MH and c.SIMD < c.MW for c in cfgs)
    assert any(c.PE == c.MH and c.SIMD == c.MW for c in cfgs)
    # a configuration where whole SIMD folds are skipped (fewer steps than dense)
    assert any(len(c.schedule()) < c.NF * c.SF for c in cfgs)


def test_params_header_lists_nonzero_blocks_only():
    rng = np.random.default_rng(7)
    mask = np.zeros((16, 4), dtype=np.int64)
    mask[4:8, 0] = 1          # neuron fold 0: only SIMD fold 1
    mask[12, 3] = 1           # neuron fold 1: only SIMD fold 3
    cfg = SparseMVAUConfig(16, 4, 2, 4, 1, mask, -1, thresholds=rng.integers(-4, 4, 4))
    assert cfg.schedule() == [(0, 1), (1, 3)]
    h = hls_csim.params_header(cfg, "probe")
    assert "NSTEPS = 2" in h
    assert "{0xfull, 0x0ull}" in h and "{0x0ull, 0x1ull}" in h


@needs_tools
def test_hls_twin_matches_reference_default():
    check([random_case(s) for s in range(N_DEFAULT)])


@needs_tools
def test_csim_single_config_and_shapes(tmp_path):
    cfg, x = random_case(3)
    out = hls_csim.csim(cfg, x[:7].reshape(7, cfg.MW), build_dir=tmp_path)
    np.testing.assert_array_equal(out, cfg.reference(x[:7]))
    one = hls_csim.csim(cfg, x[0], build_dir=tmp_path)     # cached build, 1-D input
    assert one.shape == (cfg.MH,)
    np.testing.assert_array_equal(one, cfg.reference(x[0]))
    assert hls_csim.csim(cfg, x[:0], build_dir=tmp_path).shape == (0, cfg.MH)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


def test_missing_tools_raise_actionable_error(monkeypatch):
    monkeypatch.setenv("SBNN_CXX", "no-such-compiler-xyz")
    with pytest.raises(hls_csim.HlsCsimToolError, match="not found on PATH"):
        hls_csim.find_cxx()
    monkeypatch.setenv("SBNN_AP_TYPES_DIR", "/nonexistent/ap_types")
    with pytest.raises(hls_csim.HlsCsimToolError, match="SBNN_AP_TYPES_DIR"):
        hls_csim.find_ap_types()


@needs_tools
@pytest.mark.slow
@pytest.mark.parametrize("batch", range(N_SLOW // BATCH))
def test_hls_twin_matches_reference_full(batch):
    check([random_case(s) for s in range(batch * BATCH, (batch + 1) * BATCH)])


@needs_tools
@pytest.mark.slow
def test_hls_twin_wide_words(tmp_path):
    """Stream words wider than ap_int's default 1024-bit limit (AP_INT_MAX_W raised)."""
    rng = np.random.default_rng(11)
    mw, mh = 2048, 4
    mask = (rng.random((mw, mh)) < 0.1).astype(np.int64)
    mask[:1024, 1] = 0
    cfg = SparseMVAUConfig(mw, mh, 2, 2048, 2, mask, rng.integers(-6, 7, mh), no_activation=True)
    x = rng.integers(0, 2, (20, mw))
    np.testing.assert_array_equal(hls_csim.csim(cfg, x, build_dir=tmp_path), cfg.reference(x))
