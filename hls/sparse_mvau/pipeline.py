"""Pipeline plan of the binary sparse MVAU RTL: how many register stages its popcounts take.

Why: a fully parallel layer sums hundreds of bits per neuron in one step; in one clock cycle that is
13-15 LUT levels on xc7 (measured with sbnn.hls.timing), beyond the ~9.7-level budget of 100 MHz. The
generator (rtlgen.py) therefore cuts every sum into a tree of small sums with a register between the
levels of the tree, and the plan below, a pure function of the configuration, says where. rtlgen.py
builds the RTL from it and estimates.latency() adds its depth, so the two cannot disagree.

Stages, counted from the step's issue (stage 0, where the step's operands are read from the compute
buffer, and in memory mode from the weight ROM, which has a slow clock-to-out):

* lanes, baked weights: each lane's wired bits of the step are split evenly into groups of at most
  ``POP_GROUP`` and popcounted at stage 0 (5 LUT levels for 16 bits);
* lanes, memory weights: stage 0 masks the selected block (ROM out + SF:1 mux), stage 1 popcounts it
  in groups of ``POP_GROUP``;
* then, while a lane has more than ``FINAL_VALUES`` partial sums, a stage adds them ``REDUCE_RADIX``
  at a time;
* the last stage (``depth``) adds the remaining partial sums and the running sum of the neuron fold,
  compares with the threshold (or forms the output) and pushes into the output FIFO;
* the shared input popcount P (when some R != 0) is accumulated by the receiver in groups of
  ``POP_GROUP`` input bits; the groups are added ``REDUCE_RADIX`` at a time from stage 0 on, and the
  thresholds' shared terms (R*P, bounds) take one stage of their own before the last.

The integer-input RTL (rtlgen_multibit.py) follows the same plan with sums of ``INT_GROUP`` elements
(and X, the sum of the input elements, in place of P).

Every stage holds one step and all stages move together (a stall-all pipeline), so one step still
completes per cycle: cycles per frame are unchanged, the latency grows by ``depth``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POP_GROUP = 16       # bits per first-level popcount: 5 LUT levels on xc7 (16 + 1 bits: 4-5 with the mux)
REDUCE_RADIX = 4     # partial sums added per intermediate stage: 3-4 LUT levels
FINAL_VALUES = 2     # partial sums left for the last stage, with the fold's running sum and the compare
INT_GROUP = 4        # integer-input mode: elements per first-level sum (two levels of carry-chain adders)
INT_FINAL_VALUES = 1  # integer-input mode: its last stage also adds R*X before the full-width compare
MAX_MUXED_STEPS = 4  # baked lanes with several popcount groups: most schedule steps one stage can select


def group_sizes(n: int, group: int | None = None) -> list[int]:
    """Sizes of the even split of ``n`` terms into groups of at most ``group`` (none for n = 0)."""
    g = group or POP_GROUP
    k = -(-n // g)
    return [len(c) for c in np.array_split(np.arange(n), k)] if n else []


def group_maxima(arm_sizes: list[int], group: int | None = None) -> list[int]:
    """Per first-level group index, the largest group over the steps (arms) of one lane whose steps count
    ``arm_sizes`` terms each: the size a group's sum is built for (at least one group, of size 0)."""
    splits = [group_sizes(n, group) for n in arm_sizes]
    return [max([s[g] for s in splits if g < len(s)] or [0]) for g in range(max([1, *map(len, splits)]))]


def reductions(count: int, target: int) -> int:
    """Stages of REDUCE_RADIX-input adders that bring ``count`` partial sums down to ``target`` or fewer."""
    k = 0
    while count > target:
        count = -(-count // REDUCE_RADIX)
        k += 1
    return k


@dataclass(frozen=True)
class Plan:
    depth: int            # register stages between the step's issue and the last stage
    lane_first: int       # stage at which a lane's first-level group sums are registered (1 baked, 2 memory)
    lane_groups: int      # most first-level group sums of any lane (the plan's worst lane)
    p_groups: list        # sizes of the receiver's P groups (input bits per beat); empty when no R != 0
    p_ready: int          # stage at which P is one registered value (0: the receiver's one group)


def lane_terms(cfg) -> np.ndarray:
    """(steps, PE) number of wired inputs per lane per schedule step (baked), SIMD for memory."""
    if cfg.weight_mode == "memory":
        return np.full((len(cfg.schedule()), cfg.PE), cfg.SIMD)
    return np.array([cfg.block(nf, sf).sum(axis=0) for nf, sf in cfg.schedule()]).reshape(-1, cfg.PE)


def plan(cfg) -> Plan:
    """The pipeline of the RTL of ``cfg`` (see module docstring); in the integer-input mode the groups hold
    ``INT_GROUP`` elements and P is X, the sum of the input elements."""
    size, final = (INT_GROUP, INT_FINAL_VALUES) if cfg.integer_input else (POP_GROUP, FINAL_VALUES)
    first = 2 if cfg.weight_mode == "memory" else 1
    terms = lane_terms(cfg)   # the most groups of any lane and step: the even split of its largest count
    groups = max(1, -(-int(terms.max()) // size) if terms.size else 1)
    depth = first + reductions(groups, final)
    p_groups = group_sizes(cfg.SIMD, size) if np.any(cfg.alpha_num != 0) else []
    p_ready = reductions(len(p_groups), 1)
    if p_groups:
        depth = max(depth, p_ready + 1)
    return Plan(depth, first, groups, p_groups, p_ready)


def baked_step_mux_deep(cfg) -> bool:
    """True when a baked fold's stage 0 is likely over the 100 MHz depth budget: its lanes popcount more
    than POP_GROUP wired bits in some step (several groups) *and* select among more than MAX_MUXED_STEPS
    steps, so a 16-bit popcount and a wide step multiplexer share one cycle. Measured (Yosys, TFC's first
    layer): 64 steps x 2 groups 11.7 weighted levels, 56 x 2 10.7, against 97 x 1 9.7, 2 x 5 8.4 and a
    hidden layer's 64 x 1 9.0 (budget 9.72). The folder skips such folds when memory mode is allowed (its
    stage 0 registers the masked block before the popcount)."""
    if cfg.weight_mode != "baked" or cfg.integer_input:
        return False
    return len(cfg.schedule()) > MAX_MUXED_STEPS and plan(cfg).lane_groups > 1
