"""Generated RTL vs reference.sparse_mvau_reference, bit for bit, under random
folding, sparsity, weight modes, R/k, thresholds/inversions, backpressure and
input gaps. Every output beat is checked: count (no lost or duplicated frames,
rtlsim raises otherwise), order and value.

Many configurations share one Verilator build (one instance each), so the
full set costs a few builds, not hundreds.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.random_nodes import divisors, random_arith, random_mask
from sbnn.hls.sparse_mvau.reference import acc_range
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many

N_DEFAULT = 12
N_SLOW = 240
BATCH = 40


def random_job(seed: int) -> StreamJob:
    """One configuration + stimulus; seeds 0..5 pin the corner cases."""
    rng = np.random.default_rng(1000 + seed)
    mw = int(rng.choice([4, 8, 12, 16, 24, 32, 48, 64, 96, 128]))
    mh = int(rng.choice([1, 2, 4, 6, 8, 12, 16, 32]))
    pe, simd = int(rng.choice(divisors(mh))), int(rng.choice(divisors(mw)))
    mode = ["baked", "memory"][seed % 2]
    sparsity = [0.0, 0.99, 0.0, 0.99, 0.5, 0.9][seed] if seed < 6 else float(rng.choice([0, 0.3, 0.5, 0.8, 0.9, 0.99, rng.random()]))
    zero_neuron = seed % 3 == 0 or rng.random() < 0.3
    mask = random_mask(rng, mw, mh, pe, simd, sparsity, zero_neuron=zero_neuron, blocks=rng.random() < 0.3)
    k, r = random_arith(rng, mh, seed % 4 if seed < 8 else int(rng.integers(4)))
    no_act = bool(seed % 5 == 4 or rng.random() < 0.25)
    lo, hi = acc_range(mask, r, k)
    thr = rng.integers(lo - 2, hi + 3) if not no_act else None
    inv = rng.integers(0, 2, mh) if not no_act else None
    cfg = SparseMVAUConfig(mw, mh, pe, simd, k, mask, r, thr, inv, weight_mode=mode, no_activation=no_act)
    n = int(rng.integers(8, 40))
    bp, gap = (0.0, 0.0) if seed % 7 == 0 else (float(rng.choice([0, 0.2, 0.5, 0.8])), float(rng.choice([0, 0.2, 0.5, 0.8])))
    p1 = rng.random()                              # input density differs per config
    inputs = (rng.random((n, mw)) < p1).astype(np.int64)
    return StreamJob(cfg, inputs, backpressure=bp, gaps=gap, seed=seed)


def ternary_job(seed: int) -> StreamJob:
    """``random_job(seed)`` made a ternary layer (pruned +-1): R = 0, k = 0 and a random sign per weight."""
    j, rng = random_job(seed), np.random.default_rng(2000 + seed)
    c = j.cfg
    thr = None if c.no_activation else rng.integers(-2, c.mask.sum(axis=0) + 3)
    cfg = SparseMVAUConfig(c.MW, c.MH, c.PE, c.SIMD, 0, c.mask, np.zeros(c.MH), thr, c.invert,
                           weight_mode=c.weight_mode, no_activation=c.no_activation,
                           signs=rng.integers(0, 2, c.mask.shape))
    return StreamJob(cfg, j.inputs, backpressure=j.backpressure, gaps=j.gaps, seed=j.seed)


TERNARY_DEFAULT = (0, 6, 19, 23)   # small: baked and memory, thresholded and noActivation, 12-81 % sparse


def check_batch(jobs: list[StreamJob]) -> None:
    results = simulate_many(jobs)
    bad = []
    for j, r in zip(jobs, results):
        ref = j.cfg.reference(j.inputs)
        assert r.outputs.shape == ref.shape
        mism = int((r.outputs != ref).sum())
        if mism:
            c = j.cfg
            bad.append(f"seed={j.seed} MW={c.MW} MH={c.MH} PE={c.PE} SIMD={c.SIMD} {c.weight_mode} k={c.alpha_shift} "
                       f"noact={c.no_activation}: {mism} mismatches")
    assert not bad, "\n".join(bad)


def test_corner_configs_are_covered():
    jobs = [random_job(s) for s in range(N_SLOW)]
    sp = [1 - j.cfg.mask.mean() for j in jobs]
    assert 0.0 in sp and max(sp) >= 0.97
    assert any((j.cfg.mask.sum(axis=0) == 0).any() for j in jobs)
    assert {j.cfg.weight_mode for j in jobs} == {"baked", "memory"}
    assert any(j.cfg.no_activation for j in jobs) and any(not j.cfg.no_activation for j in jobs)
    assert any((j.cfg.alpha_num == -1).all() and j.cfg.alpha_shift == 1 for j in jobs)
    assert any((j.cfg.alpha_num == 0).all() for j in jobs)
    assert any(j.backpressure > 0 and j.gaps > 0 for j in jobs)
    assert any(j.cfg.PE < j.cfg.MH and j.cfg.SIMD < j.cfg.MW for j in jobs)
    assert any(j.cfg.PE == j.cfg.MH and j.cfg.SIMD == j.cfg.MW for j in jobs)


def test_rtl_matches_reference_default_subset():
    """In the same build: a few ternary layers (test_ternary.py has their own tests)."""
    check_batch([random_job(s) for s in range(N_DEFAULT)] + [ternary_job(s) for s in TERNARY_DEFAULT])


@pytest.mark.slow
@pytest.mark.parametrize("batch", range(N_SLOW // BATCH))
def test_rtl_matches_reference_full(batch):
    seeds = range(batch * BATCH, (batch + 1) * BATCH)
    check_batch([random_job(s) for s in seeds] + [ternary_job(s) for s in seeds if s % 4 == 3])
