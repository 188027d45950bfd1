"""Folding of SparseXnorMVAU graphs: a per-layer JSON file, or a target frame rate.

JSON format (FINN's folding-config style; node names as printed by ``sbnn compile``)::

    {"Defaults": {"weight_mode": "baked"},
     "SparseXnorMVAU_0": {"PE": 16, "SIMD": 49, "weight_mode": "memory"},
     "Thresholding_rtl_0": {"PE": 49}}

:class:`SetSparseFolding` targets a number of cycles per frame: for each
SparseXnorMVAU it picks, among all (PE, SIMD) divisor pairs of (MH, MW), the one
with the lowest estimated LUT count whose estimated cycles (a function of the
mask's non-zero PE x SIMD blocks) meet the target; FINN's own SetFolding folds
FINN's layers to the same target; if any layer cannot reach it, both run again
with the slowest layer's cycles as the target (FINN's two-pass relaxation).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from sbnn.errors import UserError

OP = "SparseXnorMVAU"
FOLDING_ATTRS = {"PE", "SIMD", "weight_mode"}


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def fps_to_cycles(target_fps: float, fclk_mhz: float) -> int:
    """Cycles per frame that give ``target_fps`` at ``fclk_mhz``."""
    return max(1, int(math.floor(fclk_mhz * 1e6 / target_fps)))


def validate_folding(name: str, mw: int, mh: int, pe: int, simd: int) -> None:
    if not isinstance(pe, int) or not isinstance(simd, int) or pe < 1 or simd < 1:
        raise UserError(f"folding of node '{name}': PE and SIMD must be positive integers, got PE={pe}, SIMD={simd}")
    if mh % pe:
        raise UserError(f"folding of node '{name}': PE={pe} does not divide MH={mh}; use one of {divisors(mh)}")
    if mw % simd:
        raise UserError(f"folding of node '{name}': SIMD={simd} does not divide MW={mw}; use one of {divisors(mw)}")


def apply_folding(model, cfg: dict, weight_mode_default: str = "baked"):
    """Apply a folding dict (see module docstring) with clear errors for bad factors and unknown nodes."""
    defaults = cfg.get("Defaults", {})
    names = {n.name: n for n in model.graph.node}
    for key in cfg:
        if key != "Defaults" and key not in names:
            raise UserError(f"folding file names node '{key}', which the compiled graph does not have; "
                            f"nodes: {', '.join(n for n in names if not n.startswith('StreamingFIFO'))}")
    for node in model.graph.node:
        settings = {**defaults, **cfg.get(node.name, {})}
        if not settings:
            continue
        inst = getCustomOp(node)
        if node.op_type == OP:
            unknown = set(settings) - FOLDING_ATTRS
            if unknown and node.name in cfg:
                raise UserError(f"folding of node '{node.name}': unknown setting(s) {sorted(unknown)}; "
                                f"use {sorted(FOLDING_ATTRS)}")
            mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
            pe, simd = settings.get("PE", inst.get_nodeattr("PE")), settings.get("SIMD", inst.get_nodeattr("SIMD"))
            validate_folding(node.name, mw, mh, pe, simd)
            inst.set_nodeattr("PE", pe)
            inst.set_nodeattr("SIMD", simd)
            wm = settings.get("weight_mode", inst.get_nodeattr("weight_mode") or weight_mode_default)
            if wm not in ("baked", "memory"):
                raise UserError(f"folding of node '{node.name}': weight_mode must be baked or memory, got '{wm}'")
            inst.set_nodeattr("weight_mode", wm)
        elif node.name in cfg:
            for attr, val in settings.items():
                if attr == "weight_mode":
                    continue
                try:
                    inst.get_nodeattr(attr)
                except AttributeError:
                    raise UserError(f"folding of node '{node.name}' ({node.op_type}): it has no attribute '{attr}'") from None
                if attr == "PE":
                    ch = _channels(inst)
                    if ch and ch % val:
                        raise UserError(f"folding of node '{node.name}': PE={val} does not divide its {ch} channels; "
                                        f"use one of {divisors(ch)}")
                inst.set_nodeattr(attr, val)
    return model


def _channels(inst) -> int | None:
    for attr in ("NumChannels", "Labels"):
        try:
            return int(inst.get_nodeattr(attr))
        except AttributeError:
            continue
    return None


def best_folding(inst, target_cycles: int) -> tuple[int, int, bool]:
    """(PE, SIMD, met) with the lowest LUT estimate among pairs meeting the target (else the fastest)."""
    from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
    from sbnn.hls.sparse_mvau.estimates import cycles_per_frame_of, lut_estimate

    mask = inst.get_mask()
    mw, mh = mask.shape
    nvec = int(np.prod(inst.get_nodeattr("numInputVectors")))
    base = inst.get_config()
    best, fastest = None, None
    for pe in divisors(mh):
        for simd in divisors(mw):
            cyc = cycles_per_frame_of(mask, pe, simd) * nvec
            key_fast = (cyc, pe * simd)
            if fastest is None or key_fast < fastest[0]:
                fastest = (key_fast, pe, simd)
            if cyc > target_cycles:
                continue
            cfg = SparseMVAUConfig(mw, mh, pe, simd, base.alpha_shift, mask, base.alpha_num, base.thresholds,
                                   base.invert, base.weight_mode, base.no_activation)
            key = (lut_estimate(cfg), pe * simd, cyc)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    if best is not None:
        return best[1], best[2], True
    return fastest[1], fastest[2], False


class _DropSparseWarning(logging.Filter):
    def filter(self, record):
        return OP not in record.getMessage()


class SetSparseFolding(Transformation):
    """Fold SparseXnorMVAU nodes (ours) and FINN's layers (FINN's SetFolding) to a target cycles per frame."""

    def __init__(self, target_cycles_per_frame: int, two_pass_relaxation: bool = True):
        super().__init__()
        self.target = int(target_cycles_per_frame)
        self.two_pass_relaxation = two_pass_relaxation
        self.missed: list[str] = []

    def apply(self, model):
        from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles
        from finn.transformation.fpgadataflow.set_folding import SetFolding
        from finn.util.logging import log

        self.missed = []
        for node in model.graph.node:
            if node.op_type == OP:
                inst = getCustomOp(node)
                pe, simd, met = best_folding(inst, self.target)
                inst.set_nodeattr("PE", pe)
                inst.set_nodeattr("SIMD", simd)
                if not met:
                    self.missed.append(node.name)
        flt = _DropSparseWarning()
        log.addFilter(flt)
        try:
            model = model.transform(SetFolding(self.target, two_pass_relaxation=False))
        finally:
            log.removeFilter(flt)
        model = model.transform(AnnotateCycles())
        if self.two_pass_relaxation:
            worst = max_cycles(model)
            if worst > self.target:
                model = model.transform(SetSparseFolding(worst, two_pass_relaxation=False))
        return model, False


def max_cycles(model) -> int:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    cyc = 0
    for node in model.graph.node:
        if is_fpgadataflow_node(node):
            try:
                cyc = max(cyc, int(getCustomOp(node).get_exp_cycles()))
            except Exception:  # noqa: BLE001 - a FINN op without an estimate does not bound the pipeline
                continue
    return cyc
