"""Throughput-first folding: the fastest design that fits the part, and what bounds its throughput.

With no folding option, ``sbnn compile`` / ``sbnn build`` fold for the highest frame rate whose modelled
resources fit the part (:class:`FoldFastestFitting`); ``--target-fps`` folds for a rate instead
(:class:`sbnn.export.folding.SetSparseFolding`). Either way :func:`throughput_bound` says which layer bounds
the frame rate, and why.

The search walks a geometric ladder of cycle targets (steps of 2**(1/4)) between two bounds:

* the floor: the input stream. A frame's input bits cross the board's DMA port (``Board.stream_bits``: the
  64-bit HP port of a Zynq-7000, 128 bits on an UltraScale+), so no design takes a frame in fewer than
  ``ceil(input bits / stream bits)`` cycles; a wider input stream would only stall on memory;
* the ceiling: every layer at its cheapest folding.

At each target every layer takes its cheapest folding (and weight mode, under ``--weight-mode auto``) that
meets it; the design's modelled LUT and BRAM (the kernels' cost models, summed) must stay within
``LUT_SHARE`` / ``BRAM_SHARE`` of the part: headroom for the FIFOs and width converters inserted after
folding, the DMA and interconnect of the Vivado project, routing, and the cost model's error (within 25 %
of Yosys). The cost falls as the target rises, so the ladder is bisected.

In ``sbnn build`` the chosen folds are then checked against the clock's logic-depth budget by Yosys
(sbnn.export.timing_refold): a layer over it is refolded, at the same target when that still fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from sbnn.bitstreams.boards import Board
from sbnn.hls import ops
from sbnn.hls.kernel import FoldingPolicy

from .folding import SetSparseFolding, max_cycles
from .timing_refold import MAX_REFOLDS, DepthOf, over_budget

LUT_SHARE = 0.7       # of the part's LUTs, by the cost model
BRAM_SHARE = 0.9      # of the part's RAMB18s (the BRAM model counts blocks exactly for our ROMs)
LADDER_STEP = 2 ** 0.25
UNBOUNDED = 1 << 40   # a cycle target every folding meets: every layer takes its cheapest folding


@dataclass
class DesignCost:
    lut: int
    bram18: int

    def within(self, board: Board) -> bool:
        return self.lut <= LUT_SHARE * board.lut and self.bram18 <= BRAM_SHARE * 2 * board.bram36

    def describe(self, board: Board) -> str:
        return (f"{self.lut:,} LUT ({self.lut / board.lut:.0%} of {board.lut:,}) and {self.bram18} BRAM18 "
                f"({self.bram18 / (2 * board.bram36):.0%} of {2 * board.bram36})")


def design_cost(model, fpga_part: str) -> DesignCost:
    """Sum of the kernels' LUT and BRAM18 models over the graph's hardware layers."""
    lut = bram18 = 0
    for node in model.graph.node:
        kernel = ops.kernel_for(node)
        if kernel is None:
            continue
        c = kernel.cost_model(getCustomOp(node), fpga_part)
        lut += c["LUT"] or 0
        bram18 += c["BRAM18"] or 0
    return DesignCost(int(lut), int(bram18))


def input_bits_per_frame(model) -> int:
    inp = model.graph.input[0].name
    shape = model.get_tensor_shape(inp)
    dt = model.get_tensor_datatype(inp) or DataType["FLOAT32"]
    return int(math.prod(shape[1:])) * dt.bitwidth()


def input_floor(model, board: Board) -> int:
    """Fewest cycles per frame the board's DMA port allows for the input stream."""
    return max(1, -(-input_bits_per_frame(model) // board.stream_bits))


def ladder(lo: int, hi: int) -> list[int]:
    out, t = [], float(lo)
    while int(t) < hi:
        if not out or int(t) > out[-1]:
            out.append(int(t))
        t *= LADDER_STEP
    return [*out, hi]


class FoldFastestFitting(Transformation):
    """Fold every layer for the fastest ladder target whose modelled design fits ``board`` (see module doc).

    With ``depth_of`` (:func:`sbnn.export.timing_refold.yosys_depth`) and ``depth_levels`` (the clock's budget),
    a sparse MVAU whose measured depth exceeds the budget is refolded (sbnn.export.timing_refold): its fold
    joins ``FoldingPolicy.avoid`` and the layers are folded again (at the same target when that still fits, else
    by a new search), at most MAX_REFOLDS times.

    After ``apply``: ``self.decision`` holds the chosen target, the floor, the modelled cost and, when the
    next faster target did not fit, its cost (the reason throughput stops there); ``refolded``: the folds
    left for their depth (layer, mode, PE, SIMD, weighted levels)."""

    def __init__(self, board: Board, fpga_part: str, policy: FoldingPolicy, depth_of: DepthOf | None = None,
                 depth_levels: float | None = None):
        super().__init__()
        self.board, self.part, self.policy = board, fpga_part, policy
        self.depth_of, self.depth_levels = depth_of, depth_levels
        self.decision: dict = {}

    def _fold(self, model, target: int, policy: FoldingPolicy):
        folded = model.transform(SetSparseFolding(target, policy=policy))
        return folded, design_cost(folded, self.part)

    def apply(self, model):
        policy, refolded = self.policy, []
        best = self._search(model, policy)
        for _ in range(MAX_REFOLDS if self.depth_of is not None else 0):
            over = over_budget(best, self.depth_of, self.depth_levels)
            if not over:
                break
            refolded += [{"layer": o.layer, "weight_mode": o.mode, "PE": o.pe, "SIMD": o.simd,
                          "weighted": o.weighted, "budget": self.depth_levels} for o in over]
            policy = replace(policy, avoid=policy.avoid | {o.fold for o in over})
            best = self._refold(model, policy)
        self.decision["refolded"] = refolded
        return best, False

    def _refold(self, model, policy: FoldingPolicy):
        """The design under a policy that avoids more folds: at the chosen target when it still fits (avoiding
        folds only raises each layer's cheapest cost, so no faster target fits now), else a new search."""
        target = self.decision["target_cycles"]
        if target is not None:
            folded, cost = self._fold(model, target, policy)
            if cost.within(self.board):
                self.decision["cost"] = cost
                return folded
        return self._search(model, policy)

    def _search(self, model, policy: FoldingPolicy):
        floor = input_floor(model, self.board)
        slow, slow_cost = self._fold(model, UNBOUNDED, policy)
        steps = ladder(floor, max(floor, max_cycles(slow)))
        found = {}

        def fits(i: int) -> bool:
            if i not in found:
                found[i] = self._fold(model, steps[i], policy)
            return found[i][1].within(self.board)

        lo, hi = 0, len(steps) - 1     # invariant: steps[hi] fits (or nothing does)
        if not fits(hi):
            best, cost = slow, slow_cost
            chosen, blocked = None, None
        elif fits(lo):
            hi = lo
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if fits(mid):
                    hi = mid
                else:
                    lo = mid
        if fits(hi):
            best, cost = found[hi]
            chosen = steps[hi]
            blocked = found[hi - 1][1] if hi > 0 and (hi - 1) in found else None
        self.decision = {"target_cycles": chosen, "floor_cycles": floor, "stream_bits": self.board.stream_bits,
                         "input_bits": input_bits_per_frame(model), "cost": cost, "blocked_cost": blocked,
                         "blocked_target": steps[hi - 1] if blocked is not None else None}
        return best


def throughput_bound(rows: list[dict], how: str, decision: dict | None, target_cycles: int | None,
                     fclk_mhz: float) -> dict:
    """Which layer bounds the frame rate and why: ``how`` is "folding file", "target" or "fastest"."""
    slowest = max(rows, key=lambda r: r["cycles"])
    name, cyc = slowest["name"], int(slowest["cycles"])
    fold = f"PE={slowest.get('PE')}" + (f", SIMD={slowest['SIMD']}" if slowest.get("SIMD") else "")
    if how == "folding file":
        reason, why = "folding file", f"{name} at {fold}, as the folding file sets it, takes {cyc} cycles/frame"
    elif target_cycles is not None and cyc > target_cycles:
        reason = "layer"
        why = f"{name} cannot fold below {cyc} cycles/frame (asked: {target_cycles}); it runs at {fold}"
    elif how == "target":
        reason, why = "target", f"--target-fps asks for <= {target_cycles} cycles/frame; {name} ({fold}) takes {cyc}"
    elif decision and decision.get("blocked_cost") is not None:
        reason = "resources"
        why = (f"the next faster step ({decision['blocked_target']} cycles/frame) needs "
               f"{decision['blocked_cost'].lut:,} LUT and {decision['blocked_cost'].bram18} BRAM18 by the cost "
               f"model, over the budget ({LUT_SHARE:.0%} of the LUTs, {BRAM_SHARE:.0%} of the BRAM); {name} ({fold}) "
               f"takes {cyc}")
    elif decision and decision.get("target_cycles") == decision.get("floor_cycles"):
        reason = "input stream"
        why = (f"the input stream: {decision['input_bits']:,} bits per frame over the {decision['stream_bits']}-bit "
               f"DMA port need >= {decision['floor_cycles']} cycles/frame; {name} ({fold}) takes {cyc}")
    else:
        reason, why = "layer", f"{name} at {fold} is the slowest layer ({cyc} cycles/frame)"
    return {"layer": name, "cycles": cyc, "fps": fclk_mhz * 1e6 / cyc if cyc else None, "reason": reason,
            "why": why}


def input_stream(model, board: Board) -> dict:
    """The input stream's floor on the cycles per frame (see the module doc), for :func:`target_reach`."""
    return {"part": board.part, "floor_cycles": input_floor(model, board), "input_bits": input_bits_per_frame(model),
            "stream_bits": board.stream_bits}


def target_reach(target_fps: float, fclk_mhz: float, bound: dict, stream: dict) -> dict:
    """Whether the folded design reaches ``--target-fps``; when not, the best rate and what bounds it.

    The best rate is that of the slowest layer (``bound``, :func:`throughput_bound`: folding cannot take it
    lower) or of the board's input stream (``stream``, :func:`input_stream`), whichever is lower: a design
    folded faster than its input can be fed still waits for it."""
    by_stream = stream["floor_cycles"] > bound["cycles"]
    cycles = stream["floor_cycles"] if by_stream else bound["cycles"]
    best = fclk_mhz * 1e6 / cycles
    if by_stream:
        what = (f"the input stream ({stream['input_bits']:,} bits per frame over the {stream['stream_bits']}-bit "
                f"DMA port of {stream['part']}: >= {cycles:,} cycles/frame)")
    else:
        what = f"layer {bound['layer']}, which cannot fold below {cycles:,} cycles/frame"
    return {"target_fps": target_fps, "reached": best >= target_fps, "best_fps": best, "cycles": cycles,
            "bound": "input stream" if by_stream else bound["layer"], "why": what}


def target_warning(reach: dict, fclk_mhz: float) -> str:
    """One line for stderr when ``--target-fps`` is out of reach (see :func:`target_reach`)."""
    then = ("the layers are folded as fast as that layer allows" if reach["bound"] != "input stream" else
            f"layers folded faster than that only cost resources: ask for {reach['best_fps']:,.0f} FPS or less")
    return (f"--target-fps {reach['target_fps']:,.0f} is out of reach: at most {reach['best_fps']:,.0f} FPS at "
            f"{fclk_mhz:g} MHz, bounded by {reach['why']}; {then}")
