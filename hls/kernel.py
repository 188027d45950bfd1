"""The kernel contract: what every hardware op gives the rest of sbnn.

A *kernel* is one streaming hardware op, e.g. the sparse XNOR-popcount MVAU,
the top-1 argmax, or one of FINN's RTL layers. The compile, folding, the
per-layer report, FINN's Python execution view, the stitcher, the resource
estimate and the rtlsim all loop over registered kernels (:mod:`sbnn.hls.ops`)
and never name an op type. Adding a kernel means writing one folder under
``hls/`` and one line in ``hls/ops.py``; ``docs/DESIGN.md`` walks through it.

A kernel of ours (``impl == "sbnn"``) has, in its own folder:

* its FINN custom-op class (``op_class``, a ``HWCustomOp``) with the Python
  reference execution (``execute_node``) — the executable spec;
* its RTL generator (:meth:`Kernel.generate_hdl`, returning the file list);
* its cycle and resource model (:meth:`Kernel.cost_model`, pure functions of
  the node's attributes and mask);
* its folding constraints (:meth:`Kernel.apply_folding`, :meth:`Kernel.fold_for`);
* the graph rewrites that create it (:meth:`Kernel.infer_transforms`).

FINN's own RTL layers go through the same contract as thin adapters
(``impl == "finn"``: FINN's ``generate_hdl``, FINN's estimates, FINN's folding).

Stream interface of every generated module (the stitcher relies on it)::

    ap_clk, ap_rst_n, <in>_tdata/_tvalid/_tready, <out>_tdata/_tvalid/_tready

with the prefixes of :attr:`HdlFiles.port_style`: ``"axis"`` is
``s_axis_``/``m_axis_`` (ours), ``"finn"`` is ``in0_V_T``/``out0_V_T`` in
upper case (FINN's ``*_rtl`` wrappers). TDATA widths are the node's stream
widths padded to a multiple of 8 (:func:`sbnn.hls.streams.pad8`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sbnn.errors import UserError
from sbnn.hls.yosys import YosysNotFoundError, synth_stats

# The qonnx domain of sbnn's own ops: the module that lists their classes (qonnx imports it to find them).
SBNN_DOMAIN = "sbnn.hls.ops"
WEIGHT_MODES = ("baked", "memory")   # weights in logic (LUTs) or in a ROM read per fold step
AUTO_WEIGHT_MODE = "auto"            # let the folder pick the cheaper of WEIGHT_MODES per layer
RESOURCE_KEYS = ("LUT", "FF", "BRAM18", "DSP", "CARRY4")


@dataclass
class HdlFiles:
    """What :meth:`Kernel.generate_hdl` wrote for one node into the design's ``rtl/`` folder."""

    module: str                          # the module the stitched top instantiates
    files: list[str]                     # sources owned by this node (compile order), file names under rtl/
    data_files: list[str] = field(default_factory=list)       # e.g. $readmemh files, read at simulation time
    lib_files: dict[str, str] = field(default_factory=dict)   # shared library sources: file name -> text
    port_style: str = "axis"             # "axis" or "finn" (see module docstring)
    extra_ports: str = ""                # extra port connections (tie-offs) for the instance, Verilog-2001


@dataclass(frozen=True)
class FoldingPolicy:
    """What a self-folding kernel may choose and how it weighs costs (from the compile's options and part).

    ``modes``: the weight modes a layer may take (both under ``--weight-mode auto``); ``lut_per_bram18``:
    how many LUTs one RAMB18 is worth when comparing options (the part's LUT count over its RAMB18 count);
    ``avoid``: (node name, weight mode, PE, SIMD) folds not to take, e.g. measured over the clock's logic-depth
    budget (sbnn.export.timing_refold)."""

    modes: tuple[str, ...] = ("baked",)
    lut_per_bram18: float = 53_200 / 280     # xc7z020
    avoid: frozenset = frozenset()


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def node_attr(inst, name: str, default=None):
    """A node attribute, or ``default`` when the op has no such attribute."""
    try:
        return inst.get_nodeattr(name)
    except AttributeError:
        return default


class Kernel:
    """Base class of the contract; a kernel overrides what differs from these defaults."""

    op_type: str = ""                    # the ONNX op type this kernel implements (exact match)
    op_class: type | None = None         # our custom-op class, registered in qonnx (None: FINN's op)
    impl: str = "sbnn"                   # "sbnn": our RTL, synthesized by Yosys; "finn": FINN's RTL and estimates
    short_name: str = ""                 # label in plots and tables (default: op_type)
    in_layer_table: bool = True          # False for plumbing (FIFOs, width converters)

    # ---- compile ---------------------------------------------------------------
    def infer_transforms(self, weight_mode: str) -> list:
        """qonnx Transformations that turn streamlined nodes into this op (applied in registry order)."""
        return []

    # ---- folding ---------------------------------------------------------------
    folds_itself: bool = False           # True: fold_for() picks PE/SIMD; False: FINN's SetFolding does

    def apply_folding(self, inst, settings: dict, weight_mode_default: str) -> None:
        """Set folding attributes from a folding-file entry (FINN's generic attribute setting by default)."""
        name = inst.onnx_node.name
        for attr, val in settings.items():
            if attr == "weight_mode":
                continue
            if node_attr(inst, attr, _MISSING) is _MISSING:
                raise UserError(f"folding of node '{name}' ({inst.onnx_node.op_type}): it has no attribute '{attr}'")
            if attr == "PE":
                ch = self.channels(inst)
                if not isinstance(val, int) or val < 1:
                    raise UserError(f"folding of node '{name}': PE must be a positive integer, got {val!r}")
                if ch and ch % val:
                    raise UserError(f"folding of node '{name}': PE={val} does not divide its {ch} channels; "
                                    f"use one of {divisors(ch)}")
            inst.set_nodeattr(attr, val)

    def fold_for(self, inst, target_cycles: int, policy: FoldingPolicy = FoldingPolicy()) -> bool:
        """Fold the node for ``target_cycles`` per frame at the lowest cost ``policy`` allows; True when met
        (only for ``folds_itself``)."""
        raise NotImplementedError(f"{self.op_type} is folded by FINN's SetFolding")

    def fold_to_consumer(self, inst, consumer) -> None:
        """Refold this node to feed ``consumer`` (another node's custom-op instance) well, after every
        node got its own folding; e.g. a sliding-window generator matches its MVAU's SIMD. Default: nothing."""

    def channels(self, inst) -> int | None:
        for attr in ("NumChannels", "Labels"):
            v = node_attr(inst, attr)
            if v is not None:
                return int(v)
        return None

    # ---- Python execution (FINN's execute_onnx) --------------------------------
    def python_view(self, node) -> None:
        """Rewrite ``node`` in place into a Python-executable op (FINN's ``*_rtl`` layers run as their
        generic layer). Ours execute their reference directly: nothing to do."""

    # ---- RTL -------------------------------------------------------------------
    def generate_hdl(self, inst, model, rtl_dir: Path, fpga_part: str, clk_ns: float) -> HdlFiles:
        raise NotImplementedError(f"{self.op_type} has no RTL generator")

    # ---- cost model ------------------------------------------------------------
    def cycles(self, inst) -> int:
        return int(inst.get_exp_cycles())

    def cost_model(self, inst, fpga_part: str) -> dict:
        """Model estimates {"LUT", "BRAM18", "trusted"}: cheap, before any RTL exists. ``trusted`` says the
        LUT figure is close enough to synthesis for the early fit check."""
        try:
            lut = int(inst.lut_estimation(fpga_part))
        except Exception:  # noqa: BLE001 - some FINN ops have no LUT model
            lut = None
        try:
            bram18 = 2 * int(inst.bram_estimation(fpga_part))
        except Exception:  # noqa: BLE001
            bram18 = None
        return {"LUT": lut, "BRAM18": bram18, "trusted": lut is not None}

    def resources(self, inst, hdl_files: list[Path], module: str, family: str, part: str, cache_dir) -> dict:
        """Post-generation estimate {RESOURCE_KEYS..., "source", "depth"}: Yosys ``synth_xilinx`` on our RTL
        (``depth``: its logic depth, sbnn.hls.timing); FINN's estimates for FINN's layers (Yosys does not parse
        FINN's thresholding SystemVerilog; FINN has no FF model, so FF is None there, and no depth)."""
        if self.impl == "sbnn":
            text = "".join(Path(f).read_text() for f in hdl_files)
            try:
                st = synth_stats(text, module, family, cache_dir)
            except YosysNotFoundError as exc:
                raise UserError(str(exc)) from None
            return {"source": "yosys", **{k: st[k] for k in RESOURCE_KEYS}, "depth": st.get("depth")}
        cost = self.cost_model(inst, part)
        dsp = node_attr_call(inst, "dsp_estimation", part)
        return {"source": "finn-estimate", "LUT": cost["LUT"] or 0, "FF": None, "BRAM18": cost["BRAM18"] or 0,
                "DSP": int(dsp or 0), "CARRY4": None, "depth": None}

    # ---- report ----------------------------------------------------------------
    def layer_row(self, inst) -> dict:
        """Shape and folding columns of the per-layer table."""
        row = {a: node_attr(inst, a) for a in ("MW", "MH", "PE", "SIMD")}
        if row["MW"] is None:
            ch = self.channels(inst)
            row["MW"] = row["MH"] = ch
        row["sparsity"] = None
        return row

    # ---- verification against the streamlined graph -----------------------------
    def streamlined_counterpart(self, model, node):
        """(tensor name in the streamlined graph, per-output factor or None, kind) that this node's output
        must equal, for the layer-by-layer check of ``sbnn.export.verify``; None when not applicable."""
        return None

    @property
    def label(self) -> str:
        return self.short_name or self.op_type


_MISSING = object()


def node_attr_call(inst, method: str, *args):
    fn = getattr(inst, method, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - FINN estimates are optional per op
        return None
