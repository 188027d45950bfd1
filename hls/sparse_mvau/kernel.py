"""Kernel registration of the sparse XNOR-popcount MVAU: compile rewrite, folding, RTL, estimates, report row.

Everything the rest of sbnn needs to know about ``SparseXnorMVAU`` is here or
in this folder: the op (``op.py``) and its reference (``reference.py``), the
RTL generator (``rtlgen.py``), the cycle/LUT/BRAM model (``estimates.py``),
and the rewrite that creates it (``infer.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbnn.errors import UserError
from sbnn.hls.kernel import AUTO_WEIGHT_MODE, WEIGHT_MODES, FoldingPolicy, HdlFiles, Kernel, divisors
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, lut_estimate
from sbnn.hls.sparse_mvau.folding import FoldOption, fold_options, pick_fold
from sbnn.hls.sparse_mvau.infer import InferSparseXnorMVAU
from sbnn.hls.sparse_mvau.op import OP_TYPE, SparseXnorMVAU
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog

FOLDING_ATTRS = {"PE", "SIMD", "weight_mode"}


def equivalent_lut(cfg, lut_per_bram18: float = FoldingPolicy().lut_per_bram18) -> float:
    return float(lut_estimate(cfg)) + lut_per_bram18 * bram18_estimate(cfg)


def validate_folding(name: str, mw: int, mh: int, pe, simd) -> None:
    if not isinstance(pe, int) or not isinstance(simd, int) or pe < 1 or simd < 1:
        raise UserError(f"folding of node '{name}': PE and SIMD must be positive integers, got PE={pe!r}, "
                        f"SIMD={simd!r}")
    if mh % pe:
        raise UserError(f"folding of node '{name}': PE={pe} does not divide MH={mh}; use one of {divisors(mh)}")
    if mw % simd:
        raise UserError(f"folding of node '{name}': SIMD={simd} does not divide MW={mw}; use one of {divisors(mw)}")


def vectors_per_frame(inst) -> int:
    return int(np.prod(inst.get_nodeattr("numInputVectors")))


def options_of(inst, policy: FoldingPolicy) -> list[FoldOption]:
    return fold_options(inst.get_config(), policy.modes, policy.lut_per_bram18, vectors_per_frame(inst),
                        policy.avoid)


class SparseMVAUKernel(Kernel):
    op_type = OP_TYPE
    op_class = SparseXnorMVAU
    impl = "sbnn"
    short_name = "MVAU"
    folds_itself = True

    def infer_transforms(self, weight_mode: str) -> list:
        return [InferSparseXnorMVAU(weight_mode)]

    def apply_folding(self, inst, settings: dict, weight_mode_default: str) -> None:
        name = inst.onnx_node.name
        unknown = set(settings) - FOLDING_ATTRS
        if unknown:
            raise UserError(f"folding of node '{name}': unknown setting(s) {sorted(unknown)}; "
                            f"use {sorted(FOLDING_ATTRS)}")
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        pe, simd = settings.get("PE", inst.get_nodeattr("PE")), settings.get("SIMD", inst.get_nodeattr("SIMD"))
        validate_folding(name, mw, mh, pe, simd)
        inst.set_nodeattr("PE", pe)
        inst.set_nodeattr("SIMD", simd)
        wm = settings.get("weight_mode", weight_mode_default)
        if wm == AUTO_WEIGHT_MODE:   # the cheaper mode at this folding
            cfg = inst.get_config()
            wm = min(WEIGHT_MODES, key=lambda m: equivalent_lut(cfg.refolded(pe, simd, m)))
        if wm not in WEIGHT_MODES:
            raise UserError(f"folding of node '{name}': weight_mode must be one of {', '.join(WEIGHT_MODES)}, "
                            f"got {wm!r}")
        inst.set_nodeattr("weight_mode", wm)

    def fold_for(self, inst, target_cycles: int, policy: FoldingPolicy = FoldingPolicy()) -> bool:
        opt = pick_fold(options_of(inst, policy), target_cycles)
        inst.set_nodeattr("PE", opt.pe)
        inst.set_nodeattr("SIMD", opt.simd)
        inst.set_nodeattr("weight_mode", opt.mode)
        return opt.cycles <= target_cycles

    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        name = inst.onnx_node.name
        cfg = inst.get_config()
        odt = inst.get_output_datatype()
        if cfg.out_width != odt.bitwidth():
            raise UserError(f"{name}: RTL output width {cfg.out_width} differs from the node's output datatype "
                            f"{odt.name}; recompile the model")
        (rtl_dir / f"{name}.v").write_text(generate_verilog(cfg, name=name))
        return HdlFiles(module=name, files=[f"{name}.v"])

    def cost_model(self, inst, fpga_part: str) -> dict:
        cfg = inst.get_config()
        # The binary-input model is fitted to Yosys at the folder's picks (within +-25 %, bench/cost_model.py,
        # tests/test_cost_model.py); the integer-input one is a first-order sum, left to Yosys.
        return {"LUT": int(round(lut_estimate(cfg))), "BRAM18": int(bram18_estimate(cfg)),
                "trusted": not cfg.integer_input}

    def layer_row(self, inst) -> dict:
        mask = inst.get_mask()
        return dict(MW=inst.get_nodeattr("MW"), MH=inst.get_nodeattr("MH"), PE=inst.get_nodeattr("PE"),
                    SIMD=inst.get_nodeattr("SIMD"), sparsity=round(inst.sparsity(), 4), nnz=int(mask.sum()),
                    alpha_shift=inst.get_nodeattr("alpha_shift"), noActivation=inst.get_nodeattr("noActivation"),
                    weight_mode=inst.get_nodeattr("weight_mode"), input_dtype=inst.get_nodeattr("inputDataType"))

    def streamlined_counterpart(self, model, node):
        """Thresholded: the output bits equal the bipolar MultiThreshold's output (same tensor name) as bits.
        noActivation: the integer output times d/2**k equals the float MatMul output; the rewrite added a
        Mul named <MatMul>_scale when d/2**k is not 1."""
        out = node.output[0]
        if not SparseXnorMVAU(node).get_nodeattr("noActivation"):
            return out, None, "output bits vs bipolar MultiThreshold"
        cons = model.find_consumers(out)
        ours_mul = bool(cons) and cons[0].op_type == "Mul" and cons[0].name.endswith("_scale")
        y = cons[0].output[0] if ours_mul else out
        fac = model.get_initializer(cons[0].input[1]) if ours_mul else np.float32(1.0)
        return y, np.asarray(fac, dtype=np.float64), "integer output x (d/2^k) vs float MatMul output"


SPARSE_MVAU = SparseMVAUKernel()
