"""Folding of a compiled dataflow graph: a per-layer JSON file, or a target frame rate.

JSON format (FINN's folding-config style; node names as printed by ``sbnn compile``)::

    {"Defaults": {"weight_mode": "baked"},
     "SparseXnorMVAU_0": {"PE": 16, "SIMD": 49, "weight_mode": "memory"},
     "Thresholding_rtl_0": {"PE": 49}}

Each node's kernel (``sbnn.hls.ops``) validates and applies its entry.
:class:`SetSparseFolding` targets a number of cycles per frame: kernels that
fold themselves (``Kernel.folds_itself``, e.g. our sparse MVAU, whose cycles
depend on the mask) pick their own PE/SIMD; FINN's SetFolding folds FINN's
layers to the same target; if any layer cannot reach it, both run again with
the slowest layer's cycles as the target (FINN's two-pass relaxation).
"""

from __future__ import annotations

import logging
import math

from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles
from finn.transformation.fpgadataflow.set_folding import SetFolding
from finn.util.fpgadataflow import is_fpgadataflow_node
from finn.util.logging import log
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from sbnn.errors import UserError
from sbnn.hls import ops
from sbnn.hls.kernel import FoldingPolicy


def fps_to_cycles(target_fps: float, fclk_mhz: float) -> int:
    """Cycles per frame that give ``target_fps`` at ``fclk_mhz``."""
    return max(1, int(math.floor(fclk_mhz * 1e6 / target_fps)))


def apply_folding(model, cfg: dict, weight_mode_default: str = "baked"):
    """Apply a folding dict (see module docstring) with clear errors for bad factors and unknown nodes."""
    defaults = cfg.get("Defaults", {})
    if not isinstance(defaults, dict):
        raise UserError("folding file: \"Defaults\" must be an object of settings")
    names = {n.name: n for n in model.graph.node}
    for key, val in cfg.items():
        if key != "Defaults" and key not in names:
            raise UserError(f"folding file names node '{key}', which the compiled graph does not have; "
                            f"nodes: {', '.join(n for n, node in names.items() if _in_table(node))}")
        if not isinstance(val, dict):
            raise UserError(f"folding of node '{key}': expected an object like {{\"PE\": 4}}, got {val!r}")
    for node in model.graph.node:
        kernel = ops.kernel_for(node)
        if kernel is None:
            continue
        settings = {**defaults, **cfg.get(node.name, {})}
        # Defaults reach every kernel that folds itself, and FINN's layers that the file names
        if settings and (kernel.folds_itself or node.name in cfg):
            kernel.apply_folding(getCustomOp(node), settings, weight_mode_default)
    return model.transform(FoldToConsumers(keep=set(cfg) - {"Defaults"}))


class FoldToConsumers(Transformation):
    """Let every kernel refold for the node it feeds (``Kernel.fold_to_consumer``), except nodes in ``keep``
    (folded by name in a folding file: the user's choice stands)."""

    def __init__(self, keep: set[str] = frozenset()):
        super().__init__()
        self.keep = set(keep)

    def apply(self, model):
        for node in model.graph.node:
            kernel = ops.kernel_for(node)
            consumer = model.find_consumer(node.output[0])
            if kernel is None or consumer is None or node.name in self.keep or ops.kernel_for(consumer) is None:
                continue
            kernel.fold_to_consumer(getCustomOp(node), getCustomOp(consumer))
        return model, False


def _in_table(node) -> bool:
    k = ops.kernel_for(node)
    return k is None or k.in_layer_table


class _DropSelfFoldedWarning(logging.Filter):
    """FINN's SetFolding warns about every node it does not know; ours are folded before it runs."""

    def filter(self, record):
        return not any(k.op_type in record.getMessage() for k in ops.kernels() if k.folds_itself)


class SetSparseFolding(Transformation):
    """Fold the kernels that fold themselves (ours) and FINN's layers (FINN's SetFolding) to a target."""

    def __init__(self, target_cycles_per_frame: int, two_pass_relaxation: bool = True,
                 policy: FoldingPolicy = FoldingPolicy()):
        super().__init__()
        self.target = int(target_cycles_per_frame)
        self.two_pass_relaxation = two_pass_relaxation
        self.policy = policy
        self.missed: list[str] = []

    def apply(self, model):
        self.missed = []
        for node in model.graph.node:
            kernel = ops.kernel_for(node)
            if kernel is not None and kernel.folds_itself:
                if not kernel.fold_for(getCustomOp(node), self.target, self.policy):
                    self.missed.append(node.name)
        flt = _DropSelfFoldedWarning()
        log.addFilter(flt)
        try:
            model = model.transform(SetFolding(self.target, two_pass_relaxation=False))
        finally:
            log.removeFilter(flt)
        model = model.transform(FoldToConsumers())
        model = model.transform(AnnotateCycles())
        if self.two_pass_relaxation:
            worst = max_cycles(model)
            if worst > self.target:
                model = model.transform(SetSparseFolding(worst, two_pass_relaxation=False, policy=self.policy))
        return model, False


def max_cycles(model) -> int:
    cyc = 0
    for node in model.graph.node:
        if is_fpgadataflow_node(node):
            try:
                cyc = max(cyc, int(getCustomOp(node).get_exp_cycles()))
            except Exception:  # noqa: BLE001 - a FINN op without an estimate does not bound the pipeline
                continue
    return cyc
