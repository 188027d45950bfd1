"""rtlsim-measured steady-state cycles/frame and latency vs estimates.py.

The cycle model must describe what the RTL does (no backpressure, no gaps):
cycles/frame = max(SF, NS) with NS the non-zero PE x SIMD blocks (>= 1 per
neuron fold), so block sparsity must show up as fewer cycles in both modes.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many

CASES = [  # MW, MH, PE, SIMD, sparsity, block-pruned share
    (64, 16, 16, 64, 0.0, 0.0),    # fully unrolled: 1 cycle/frame
    (64, 16, 4, 16, 0.5, 0.0),     # dense blocks: NF*SF
    (64, 16, 4, 16, 0.3, 0.7),     # 70 % of blocks pruned
    (128, 32, 2, 8, 0.99, 0.0),    # mostly-empty folds, >= 1 step each
    (96, 8, 8, 4, 0.9, 0.0),       # input-bound: SF > NS
    (32, 32, 1, 32, 0.0, 0.5),     # one lane, half of the neurons empty
]


def make_cfg(mw, mh, pe, simd, sparsity, pruned, mode, seed):
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) >= sparsity).astype(np.int64)
    keep = rng.random((mw // simd, mh // pe)) >= pruned
    mask *= np.kron(keep, np.ones((simd, pe), dtype=np.int64))
    return SparseMVAUConfig(mw, mh, pe, simd, 1, mask, -1, thresholds=np.zeros(mh, np.int64), weight_mode=mode)


@pytest.mark.parametrize("mode", ["baked", "memory"])
def test_measured_cycles_match_model(mode):
    cfgs = [make_cfg(*case, mode, i) for i, case in enumerate(CASES)]
    rng = np.random.default_rng(7)
    jobs = [StreamJob(c, rng.integers(0, 2, (64, c.MW))) for c in cfgs]
    for job, res in zip(jobs, simulate_many(jobs)):
        est = estimates.cycles_per_frame(job.cfg)
        assert abs(res.cycles_per_frame - est) <= 0.05 * est, (job.cfg.MW, job.cfg.PE, res.cycles_per_frame, est)
        assert res.latency == estimates.latency(job.cfg)
        assert np.array_equal(res.outputs, job.cfg.reference(job.inputs))
    # block sparsity is visible as fewer cycles than the dense NF*SF schedule
    pruned = cfgs[2]
    assert estimates.cycles_per_frame(pruned) < pruned.NF * pruned.SF


def test_cycle_model_formula_is_explicit():
    mask = np.zeros((8, 4), dtype=np.int64)
    mask[0, 0] = mask[5, 3] = mask[6, 3] = 1       # PE=2, SIMD=4: blocks (sf0,nf0), (sf1,nf1)
    assert list(estimates.block_steps(mask, 2, 4)) == [1, 1]
    assert estimates.cycles_per_frame_of(mask, 2, 4) == 2
    assert estimates.cycles_per_frame_of(mask, 1, 1) == 8   # input-bound: SF = 8 > NS = 1 + 1 + 1 + 2 (empty folds take 1)
    assert estimates.compute_steps(np.ones((8, 4)), 1, 1) == 32
