"""Kernel registration of the binary max-pool: compile rewrite, folding, RTL, estimates, report row.

Everything the rest of sbnn needs to know about ``BinaryMaxPool`` is here or in
this folder: the op (``op.py``) and its reference (``reference.py``), the RTL
generator (``rtlgen.py``), the cycle/LUT model (``estimates.py``), and the
rewrite from FINN's ``MaxPoolNHWC`` (``infer.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbnn.errors import UserError
from sbnn.hls.kernel import RESOURCE_KEYS, FoldingPolicy, HdlFiles, Kernel, divisors
from sbnn.hls.maxpool.estimates import bram18, lut_estimate, lutram_luts
from sbnn.hls.maxpool.infer import InferBinaryMaxPool
from sbnn.hls.maxpool.op import OP_TYPE, BinaryMaxPool
from sbnn.hls.maxpool.rtlgen import generate_maxpool
from sbnn.hls.yosys import YosysNotFoundError, synth_stats

FOLDING_ATTRS = {"PE"}


def validate_pe(name: str, channels: int, pe) -> None:
    if not isinstance(pe, int) or isinstance(pe, bool) or pe < 1:
        raise UserError(f"folding of node '{name}': PE must be a positive integer, got {pe!r}")
    if channels % pe:
        raise UserError(f"folding of node '{name}': PE={pe} does not divide its {channels} channels; "
                        f"use one of {divisors(channels)}")


def smallest_pe(channels: int, pixels: int, target_cycles: int) -> tuple[int, bool]:
    """(PE, met): the smallest PE dividing ``channels`` with ``pixels * channels / PE <= target_cycles``,
    else the fastest (PE = channels)."""
    for pe in divisors(channels):
        if pixels * (channels // pe) <= target_cycles:
            return pe, True
    return channels, False


class BinaryMaxPoolKernel(Kernel):
    op_type = OP_TYPE
    op_class = BinaryMaxPool
    impl = "sbnn"
    short_name = "MaxPool"
    folds_itself = True

    def infer_transforms(self, weight_mode: str) -> list:
        return [InferBinaryMaxPool()]

    def apply_folding(self, inst, settings: dict, weight_mode_default: str) -> None:
        name = inst.onnx_node.name
        unknown = set(settings) - FOLDING_ATTRS - {"weight_mode"}
        if unknown:
            raise UserError(f"folding of node '{name}': unknown setting(s) {sorted(unknown)}; "
                            f"use {sorted(FOLDING_ATTRS)}")
        pe = settings.get("PE", inst.get_nodeattr("PE"))
        validate_pe(name, int(inst.get_nodeattr("NumChannels")), pe)
        inst.set_nodeattr("PE", pe)

    def fold_for(self, inst, target_cycles: int, policy: FoldingPolicy = FoldingPolicy()) -> bool:
        (h, w), nv = inst.get_nodeattr("ImgDim"), int(np.prod(inst.get_nodeattr("numInputVectors")))
        pe, met = smallest_pe(int(inst.get_nodeattr("NumChannels")), h * w * nv, target_cycles)
        inst.set_nodeattr("PE", pe)
        return met

    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        name = inst.onnx_node.name
        problems = inst.verify_node()
        if problems:
            raise UserError(problems[0])
        (rtl_dir / f"{name}.v").write_text(generate_maxpool(inst.get_config(), name=name))
        return HdlFiles(module=name, files=[f"{name}.v"])

    def cost_model(self, inst, fpga_part: str) -> dict:
        cfg = inst.get_config()
        # within ~30 % of Yosys (LUT-RAM included) on the configurations of tests/test_maxpool_kernel.py
        return {"LUT": int(round(lut_estimate(cfg))), "BRAM18": bram18(cfg), "trusted": True}

    def resources(self, inst, hdl_files: list[Path], module: str, family: str, part: str, cache_dir) -> dict:
        """Yosys counts; the row buffer's LUT-RAM cells are added to LUT (they occupy LUTs)."""
        text = "".join(Path(f).read_text() for f in hdl_files)
        try:
            st = synth_stats(text, module, family, cache_dir)
        except YosysNotFoundError as exc:
            raise UserError(str(exc)) from None
        out = {"source": "yosys", **{k: st[k] for k in RESOURCE_KEYS}, "depth": st.get("depth")}
        out["LUT"] += lutram_luts(st.get("cells", {}))
        return out

    def layer_row(self, inst) -> dict:
        (h, w), (kh, kw) = inst.get_nodeattr("ImgDim"), inst.get_nodeattr("PoolDim")
        c = int(inst.get_nodeattr("NumChannels"))
        return {"MW": c, "MH": c, "PE": int(inst.get_nodeattr("PE")), "SIMD": None, "sparsity": None,
                "ImgDim": f"{h}x{w}", "PoolDim": f"{kh}x{kw}"}


MAXPOOL = BinaryMaxPoolKernel()
