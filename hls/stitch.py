"""Stitch a compiled dataflow partition (``hw_graph.onnx``) into ONE Verilog top.

The partition is FINN's linear chain of streaming layers as ``sbnn compile``
leaves it (InsertDWC / InsertFIFO / SpecializeLayers already ran): our
``SparseXnorMVAU`` nodes plus FINN's ``Thresholding_rtl``,
``StreamingFIFO_rtl`` and ``StreamingDataWidthConverter_rtl`` where FINN's
passes put them, and the ``LabelSelect_hls`` of the final TopK.

* SparseXnorMVAU: :func:`sbnn.hls.sparse_mvau.rtlgen.generate_verilog`.
* FINN's RTL layers: FINN's own node-level ``generate_hdl`` (the template fill
  that FINN's PrepareIP runs; no Vivado needed) plus the finn-rtllib sources
  they reference, copied next to the generated files so the design folder is
  self-contained. Thresholds are ``$readmemh`` files (FINN's
  ``THRESHOLDS_PATH = "./<node>_"``): simulate with the rtl folder as working
  directory (``stitched_rtlsim`` does).
* LabelSelect_hls (HLS-only in FINN, no Vivado here): replaced by our RTL
  top-1 argmax, :mod:`sbnn.hls.labelselect_rtl`, so the stitched design ends
  with the class index exactly like FINN's graph.

* finn-rtllib's ``fifo.sv`` is copied with one textual patch (``_patch_fifo``):
  Verilator 5.048 cannot constant-evaluate its struct-valued ``INIT_ABITS()``
  function; the copy computes the same two numbers with two int-valued
  functions. Everything else of FINN's RTL is used verbatim.

Why the argmax stays in hardware (rather than ending the partition before it
and doing it on the host): the stitched design then has the same output as
FINN's HW graph (one class index per frame, a 1-byte stream), the PYNQ driver
reads indices, and bit-exactness is checked on the full partition.

Top level (FINN's stitched-IP naming)::

    module <top> (input ap_clk, input ap_rst_n,
                  input [IW-1:0] s_axis_0_tdata, input s_axis_0_tvalid, output s_axis_0_tready,
                  output [OW-1:0] m_axis_0_tdata, output m_axis_0_tvalid, input m_axis_0_tready);

with FINN's stream packing: a beat carries ``fold`` elements of the folded
shape's innermost dimension, element 0 at the LSBs, TDATA padded to a multiple
of 8 bits. Thresholding's AXI-Lite and set-select ports are tied off.

Output: ``<out_dir>/rtl/*.v|*.sv|*.dat`` and ``<out_dir>/stitch.json`` (the
:class:`StitchedDesign`, reloadable with :func:`load_design`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sbnn.errors import UserError

MVAU = "SparseXnorMVAU"
FINN_RTL = ("Thresholding_rtl", "StreamingFIFO_rtl", "StreamingDataWidthConverter_rtl")
LABELSELECT = ("LabelSelect_hls", "LabelSelect_rtl", "LabelSelect")
DEFAULT_TOP = "sbnn_dataflow_top"
DESIGN_JSON = "stitch.json"


@dataclass
class StitchedNode:
    name: str
    op_type: str
    impl: str                 # "sbnn-mvau", "sbnn-labelselect" or "finn-rtl"
    module: str               # Verilog module instantiated in the top
    in_width: int             # padded TDATA widths
    out_width: int
    exp_cycles: int           # the op's cycle estimate per frame
    files: list[str] = field(default_factory=list)   # file names under rtl/ owned by this node


@dataclass
class StitchedDesign:
    top: str
    out_dir: str
    hw_graph: str
    files: list[str]          # every source under rtl/, in compile order
    nodes: list[StitchedNode]
    in_dtype: str             # FINN DataType names
    out_dtype: str
    in_shape: list[int]       # normal shapes of the partition input / output (batch 1)
    out_shape: list[int]
    in_fold: int              # elements per input beat
    in_beats: int             # input beats per frame
    out_fold: int
    out_beats: int
    in_width: int             # padded TDATA widths of the top
    out_width: int
    est_cycles_per_frame: int  # bottleneck of the op estimates
    bottleneck: str
    rtl_hash: str

    @property
    def rtl_dir(self) -> Path:
        return Path(self.out_dir) / "rtl"

    def source_paths(self) -> list[Path]:
        return [self.rtl_dir / f for f in self.files]

    def save(self) -> Path:
        p = Path(self.out_dir) / DESIGN_JSON
        p.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return p


def load_design(out_dir: str | Path) -> StitchedDesign:
    d = json.loads((Path(out_dir) / DESIGN_JSON).read_text())
    d["nodes"] = [StitchedNode(**n) for n in d["nodes"]]
    return StitchedDesign(**d)


def _load(hw_graph):
    import sbnn.export.sparse_xnor_mvau  # noqa: F401  (registers the op)
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(hw_graph, ModelWrapper):
        return hw_graph, "<in memory>"
    p = Path(hw_graph)
    if p.is_dir():
        p = p / "hw_graph.onnx"
    if not p.is_file():
        raise UserError(f"{p} not found: pass a build directory of `sbnn compile` or its hw_graph.onnx")
    return ModelWrapper(str(p)), str(p)


def chain(model) -> list:
    """The partition's nodes from input to output; one clear error if it is not a linear chain."""
    from finn.util.fpgadataflow import is_fpgadataflow_node

    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise UserError("the dataflow partition must have exactly one input and one output stream to be stitched")
    nodes, t = [], model.graph.input[0].name
    out = model.graph.output[0].name
    while t != out:
        cons = model.find_consumers(t)
        if not cons or len(cons) != 1:
            raise UserError(f"tensor {t} feeds {len(cons or [])} nodes; only linear dataflow chains can be stitched")
        n = cons[0]
        if not is_fpgadataflow_node(n):
            raise UserError(f"node '{n.name}' ({n.op_type}) is not a hardware layer; stitch the dataflow partition "
                            "(hw_graph.onnx of `sbnn compile`), not the parent graph")
        nodes.append(n)
        t = n.output[0]
    if len(nodes) != len(model.graph.node):
        raise UserError("the dataflow partition has nodes outside its input-to-output chain; cannot stitch it")
    return nodes


def _pad8(bits: int) -> int:
    return max(8, (bits + 7) // 8 * 8)


def _finn_rtllib() -> Path:
    import finn

    return Path(finn.__file__).parent / "finn-rtllib"


# finn-rtllib sources per FINN op (the fifo_gauge of FINN_SIMULATION builds is not used)
FINN_LIB = {
    "Thresholding_rtl": ["axi/hdl/axilite.sv", "thresholding/hdl/thresholding.sv",
                         "thresholding/hdl/thresholding_axi.sv"],
    "StreamingFIFO_rtl": ["fifo/hdl/fifo.sv"],
    "StreamingDataWidthConverter_rtl": ["dwc/hdl/vpc.sv", "dwc/hdl/dwc_axi.sv"],
}


_FIFO_ABITS_OLD = """\ttypedef struct {
\t\tint unsigned  lo;
\t\tint unsigned  hi;
\t} abits_t;
\tfunction abits_t INIT_ABITS();
\t\tautomatic abits_t  abits = '{ lo: $clog2(DEPTH_REQ), hi: 0 };
\t\tif(abits.lo > MIN_ABITS) begin
\t\t\t// Consider Decomposition into lo + hi
\t\t\tautomatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(abits.lo-1));
\t\t\tif(hi_abits < abits.lo - 1) begin
\t\t\t\tabits.lo--;
\t\t\t\tabits.hi = hi_abits < 1? 1 : hi_abits;
\t\t\tend
\t\tend
\t\treturn  abits;
\tendfunction : INIT_ABITS
\tlocalparam abits_t       ABITS      = INIT_ABITS();
"""
_FIFO_ABITS_NEW = """\t// sbnn patch: Verilator 5.048 cannot constant-evaluate a struct-valued
\t// function; the same decomposition as two int-valued functions.
\tfunction int unsigned INIT_ABITS_LO();
\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);
\t\tif(lo > MIN_ABITS && $clog2(DEPTH_REQ - 2**(lo-1)) < lo - 1)  lo--;
\t\treturn  lo;
\tendfunction : INIT_ABITS_LO
\tfunction int unsigned INIT_ABITS_HI();
\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);
\t\tautomatic int unsigned  hi = 0;
\t\tif(lo > MIN_ABITS) begin
\t\t\tautomatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(lo-1));
\t\t\tif(hi_abits < lo - 1)  hi = hi_abits < 1? 1 : hi_abits;
\t\tend
\t\treturn  hi;
\tendfunction : INIT_ABITS_HI
\tlocalparam int unsigned  ABITS_LO = INIT_ABITS_LO();
\tlocalparam int unsigned  ABITS_HI = INIT_ABITS_HI();
"""


def _patch_fifo(text: str) -> str:
    """fifo.sv for Verilator 5.048: the struct-valued INIT_ABITS() becomes two int functions (same values)."""
    if _FIFO_ABITS_OLD not in text:
        if "INIT_ABITS_LO" in text or "abits_t" not in text:
            return text
        raise UserError("finn-rtllib fifo.sv changed: sbnn's Verilator patch no longer applies; update sbnn.hls.stitch")
    return text.replace(_FIFO_ABITS_OLD, _FIFO_ABITS_NEW).replace("ABITS.lo", "ABITS_LO").replace("ABITS.hi", "ABITS_HI")


PATCHES = {"fifo.sv": _patch_fifo}


def stitch(hw_graph, out_dir: str | Path, top: str = DEFAULT_TOP, fpga_part: str = "xc7z020clg400-1",
           clk_ns: float = 10.0) -> StitchedDesign:
    """Generate every layer's RTL and the top for ``hw_graph`` (path, build dir or ModelWrapper)."""
    from qonnx.custom_op.registry import getCustomOp

    from sbnn.export.compile import ensure_finn_env
    from sbnn.hls.labelselect_rtl import generate_labelselect
    from sbnn.hls.sparse_mvau.rtlgen import generate_verilog

    model, src = _load(hw_graph)
    out_dir = Path(out_dir)
    rtl = out_dir / "rtl"
    if rtl.exists():
        shutil.rmtree(rtl)
    rtl.mkdir(parents=True)
    ensure_finn_env(out_dir)
    if not top.isidentifier():
        raise UserError(f"top module name {top!r} is not a Verilog identifier")
    nodes = chain(model)
    lib_files: list[str] = []
    snodes: list[StitchedNode] = []
    for n in nodes:
        inst = getCustomOp(n)
        if not n.name.isidentifier():
            raise UserError(f"node name {n.name!r} is not a Verilog identifier; run GiveUniqueNodeNames")
        iw, ow = _pad8(inst.get_instream_width()), _pad8(inst.get_outstream_width())
        cyc = int(inst.get_exp_cycles())
        if n.op_type == MVAU:
            cfg = inst.get_config()
            odt = inst.get_output_datatype()
            if cfg.out_width != odt.bitwidth():
                raise UserError(f"{n.name}: RTL output width {cfg.out_width} differs from the node's output datatype "
                                f"{odt.name}; recompile the model")
            fname = f"{n.name}.v"
            (rtl / fname).write_text(generate_verilog(cfg, name=n.name))
            snodes.append(StitchedNode(n.name, n.op_type, "sbnn-mvau", n.name, iw, ow, cyc, [fname]))
        elif n.op_type in FINN_RTL:
            gen = out_dir / "finn_gen" / n.name
            gen.mkdir(parents=True, exist_ok=True)
            inst.set_nodeattr("code_gen_dir_ipgen", str(gen))
            inst.generate_hdl(model, fpga_part, clk_ns)
            owned = []
            for f in sorted(gen.iterdir()):
                if f.suffix in (".v", ".sv", ".dat"):
                    shutil.copy(f, rtl / f.name)
                    owned.append(f.name)
            for rel in FINN_LIB[n.op_type]:
                name = Path(rel).name
                if name not in lib_files:
                    text = (_finn_rtllib() / rel).read_text()
                    (rtl / name).write_text(PATCHES[name](text) if name in PATCHES else text)
                    lib_files.append(name)
            snodes.append(StitchedNode(n.name, n.op_type, "finn-rtl", inst.get_nodeattr("gen_top_module"), iw, ow,
                                       cyc, [f for f in owned if not f.endswith(".dat")]))
        elif n.op_type in LABELSELECT:
            idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
            try:
                text = generate_labelselect(n.name, inst.get_nodeattr("Labels"), inst.get_nodeattr("PE"),
                                            idt.bitwidth(), idt.signed(), odt.bitwidth(), inst.get_nodeattr("K"))
            except ValueError as exc:
                raise UserError(str(exc)) from None
            fname = f"{n.name}.v"
            (rtl / fname).write_text(text)
            snodes.append(StitchedNode(n.name, n.op_type, "sbnn-labelselect", n.name, iw, ow, cyc, [fname]))
        else:
            raise UserError(f"node '{n.name}': op type {n.op_type} has no RTL implementation for stitching "
                            f"(supported: {MVAU}, {', '.join(FINN_RTL)}, LabelSelect top-1)")
    for a, b in zip(snodes, snodes[1:]):
        if a.out_width != b.in_width:
            raise UserError(f"stream width mismatch: {a.name} outputs {a.out_width} bits, {b.name} takes {b.in_width}; "
                            "the compile's InsertDWC should have inserted a width converter")
    top_text = top_verilog(top, snodes)
    (rtl / f"{top}.v").write_text(top_text)
    files = lib_files + [f for s in snodes for f in s.files] + [f"{top}.v"]
    h = hashlib.sha256()
    for f in sorted(p.name for p in rtl.iterdir()):
        h.update(f.encode() + b"\0" + (rtl / f).read_bytes() + b"\0")
    first, last = getCustomOp(nodes[0]), getCustomOp(nodes[-1])
    fin, fout = first.get_folded_input_shape(), last.get_folded_output_shape()
    bott = max(snodes, key=lambda s: s.exp_cycles)
    design = StitchedDesign(
        top=top, out_dir=str(out_dir.resolve()), hw_graph=src, files=files, nodes=snodes,
        in_dtype=first.get_input_datatype().name, out_dtype=last.get_output_datatype().name,
        in_shape=[int(v) for v in model.get_tensor_shape(model.graph.input[0].name)],
        out_shape=[int(v) for v in model.get_tensor_shape(model.graph.output[0].name)],
        in_fold=int(fin[-1]), in_beats=int(np.prod(fin[:-1])), out_fold=int(fout[-1]),
        out_beats=int(np.prod(fout[:-1])), in_width=snodes[0].in_width, out_width=snodes[-1].out_width,
        est_cycles_per_frame=bott.exp_cycles, bottleneck=bott.name, rtl_hash=h.hexdigest()[:20])
    design.save()
    return design


def _ports(s: StitchedNode, i: int, o: str) -> str:
    if s.impl.startswith("sbnn"):
        return (f".ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .s_axis_tdata({i}_tdata), .s_axis_tvalid({i}_tvalid), "
                f".s_axis_tready({i}_tready), .m_axis_tdata({o}_tdata), .m_axis_tvalid({o}_tvalid), "
                f".m_axis_tready({o}_tready)")
    p = (f".ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in0_V_TDATA({i}_tdata), .in0_V_TVALID({i}_tvalid), "
         f".in0_V_TREADY({i}_tready), .out0_V_TDATA({o}_tdata), .out0_V_TVALID({o}_tvalid), "
         f".out0_V_TREADY({o}_tready)")
    if s.op_type == "StreamingFIFO_rtl":
        p += ", .count(), .maxcount()"
    elif s.op_type == "Thresholding_rtl":
        p += (", .s_axilite_AWVALID(1'b0), .s_axilite_AWREADY(), .s_axilite_AWADDR('0), .s_axilite_WVALID(1'b0), "
              ".s_axilite_WREADY(), .s_axilite_WDATA(32'd0), .s_axilite_WSTRB(4'd0), .s_axilite_BVALID(), "
              ".s_axilite_BREADY(1'b1), .s_axilite_BRESP(), .s_axilite_ARVALID(1'b0), .s_axilite_ARREADY(), "
              ".s_axilite_ARADDR('0), .s_axilite_RVALID(), .s_axilite_RREADY(1'b1), .s_axilite_RDATA(), "
              ".s_axilite_RRESP(), .in1_V_TREADY(), .in1_V_TVALID(1'b0), .in1_V_TDATA('0)")
    return p


def top_verilog(top: str, snodes: list[StitchedNode]) -> str:
    n = len(snodes)
    L = [f"// {top}: stitched sbnn dataflow partition ({n} layers), generated by sbnn.hls.stitch",
         "// " + " -> ".join(s.name for s in snodes),
         f"module {top} (",
         "  input  wire ap_clk,",
         "  input  wire ap_rst_n,",
         f"  input  wire [{snodes[0].in_width - 1}:0] s_axis_0_tdata,",
         "  input  wire s_axis_0_tvalid,",
         "  output wire s_axis_0_tready,",
         f"  output wire [{snodes[-1].out_width - 1}:0] m_axis_0_tdata,",
         "  output wire m_axis_0_tvalid,",
         "  input  wire m_axis_0_tready",
         ");"]
    for k in range(n + 1):
        w = snodes[0].in_width if k == 0 else snodes[k - 1].out_width
        L += [f"  wire [{w - 1}:0] st{k}_tdata;", f"  wire st{k}_tvalid;", f"  wire st{k}_tready;"]
    L += ["  assign st0_tdata = s_axis_0_tdata;", "  assign st0_tvalid = s_axis_0_tvalid;",
          "  assign s_axis_0_tready = st0_tready;",
          f"  assign m_axis_0_tdata = st{n}_tdata;", f"  assign m_axis_0_tvalid = st{n}_tvalid;",
          f"  assign st{n}_tready = m_axis_0_tready;"]
    for k, s in enumerate(snodes):
        L.append(f"  {s.module} u_{s.name} ({_ports(s, f'st{k}', f'st{k + 1}')});")
    L.append("endmodule")
    return "\n".join(L) + "\n"


# ---- FINN stream packing ------------------------------------------------------
def pack_stream(values: np.ndarray, fold: int, bits: int, tdata_width: int) -> np.ndarray:
    """(N, elems) integers -> (N*elems/fold, words) uint32 TDATA words: element 0 of a beat at the LSBs."""
    v = np.asarray(values).astype(np.int64).reshape(-1, fold)
    if not np.array_equal(v, np.asarray(values).reshape(-1, fold)):
        raise ValueError("stream values must be integers")
    words = (tdata_width + 31) // 32
    bits_arr = ((v[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8).reshape(v.shape[0], -1)
    padded = np.zeros((v.shape[0], words * 32), dtype=np.uint8)
    padded[:, :fold * bits] = bits_arr
    return np.packbits(padded, axis=1, bitorder="little").view("<u4")


def unpack_stream(words: np.ndarray, fold: int, bits: int, signed: bool) -> np.ndarray:
    """(beats, words) uint32 -> (beats*fold,) integers (two's complement when signed)."""
    b = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), axis=1, bitorder="little")
    el = b[:, :fold * bits].reshape(-1, fold, bits).astype(np.int64)
    vals = (el << np.arange(bits, dtype=np.int64)).sum(axis=2)
    if signed:
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals.reshape(-1)


def rtl_sources_exist(design: StitchedDesign) -> bool:
    return all(p.is_file() for p in design.source_paths()) and os.path.isdir(design.rtl_dir)
