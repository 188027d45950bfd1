"""FINN custom op ``SparseXnorMVAU``: one sparse XNOR-popcount matrix-vector-activation unit.

Semantics: :mod:`sbnn.hls.sparse_mvau.reference` (``execute_node`` calls it).
Estimates: :mod:`sbnn.hls.sparse_mvau.estimates` (cycles and LUTs are functions
of PE, SIMD and the mask's non-zero PE x SIMD blocks).

The node follows FINN's HWCustomOp contract (MVAU-like attributes, folded
shapes, stream widths, ``backend="fpgadataflow"`` so FINN's partitioning,
InsertDWC and InsertFIFO treat it as a hardware layer). Its ONNX domain is
``sbnn.hls.ops``, the module that lists sbnn's op classes: qonnx finds the class
by importing the domain module, the way qonnx documents for packages. FINN's
own cycle/resource analyses only look at FINN's ``...fpgadataflow.hls/rtl``
domains; sbnn asks the kernel registry instead (``sbnn.hls.ops``).

One data input (``numInputVectors + [MW]``): activation bits (``inputDataType``
BINARY) or, in the integer-input mode (the first layer, which sees pixels),
integers of any qonnx integer ``inputDataType`` of 2..16 bits such as UINT8 or
INT8 (``input_format``); one output. The layer's parameters are node attributes, so that cycle and resource
estimates (which FINN queries without access to the model's initializers) see
the sparsity pattern:

* ``mask`` (tensor, uint8, (MW, MH), FINN's weight layout): b = 1 positions;
* ``alpha_num`` (ints, MH): R_j; ``alpha_shift`` (int): k;
* ``thresholds`` (ints, MH) and ``invert`` (ints, MH) unless ``noActivation``;
* ``signs`` (tensor, uint8, (MW, MH), optional): a ternary (pruned +-1) layer's sign per weight (1: +c),
  S_j = popc(b_j & XNOR(a, s_j)) with R = 0 (reference.py); absent for {alpha, beta} layers.

Thresholded: out_j = (acc_j >= T_j) xor inv_j (BINARY). noActivation:
out_j = 2 acc_j - (2**k c_j + R_j MW) (signed integer) for bit inputs, out_j = acc_j
for integer inputs (acc_j = 2**k S_j + R_j X, reference.py).
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper
from qonnx.core.datatype import DataType

from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from sbnn.hls.kernel import SBNN_DOMAIN, WEIGHT_MODES
from sbnn.hls.sparse_mvau.config import MAX_IN_BITS, SparseMVAUConfig
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, cycles_per_frame_of, lut_estimate
from sbnn.hls.sparse_mvau.reference import sparse_mvau_reference

OP_TYPE = "SparseXnorMVAU"


def input_format(dtype_name: str) -> tuple[int, bool]:
    """(in_bits, in_signed) of an ``inputDataType``: BINARY is (1, False); integer types of 2..16 bits."""
    try:
        dt = DataType[dtype_name]
    except KeyError:
        raise ValueError(f"SparseXnorMVAU: unknown inputDataType {dtype_name!r}") from None
    if dt == DataType["BINARY"]:
        return 1, False
    if not dt.is_integer() or dt == DataType["BIPOLAR"] or not 2 <= dt.bitwidth() <= MAX_IN_BITS:
        raise ValueError(f"SparseXnorMVAU: inputDataType {dtype_name} is not supported; use BINARY (activation "
                         f"bits) or an integer type of 2..{MAX_IN_BITS} bits such as UINT8 or INT8")
    return dt.bitwidth(), dt.signed()


class SparseXnorMVAU(HWCustomOp):
    """Sparse XNOR-popcount MVAU (see module docstring)."""

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs.update({
            "MW": ("i", True, 0),
            "MH": ("i", True, 0),
            "PE": ("i", True, 1),
            "SIMD": ("i", True, 1),
            "alpha_shift": ("i", True, 0),
            "noActivation": ("i", False, 0, {0, 1}),
            "weight_mode": ("s", False, "baked", set(WEIGHT_MODES)),
            "inputDataType": ("s", False, "BINARY"),
            "outputDataType": ("s", True, ""),
            "numInputVectors": ("ints", False, [1]),
            "mask": ("t", True, np.zeros((0, 0), dtype=np.uint8)),
            "alpha_num": ("ints", True, []),
            "thresholds": ("ints", False, []),
            "invert": ("ints", False, []),
            "signs": ("t", False, np.zeros((0, 0), dtype=np.uint8)),
        })
        return attrs

    # ---- parameters ----------------------------------------------------
    def get_mask(self) -> np.ndarray:
        return np.asarray(self.get_nodeattr("mask"), dtype=np.int64)

    def get_signs(self) -> np.ndarray | None:
        """The ternary layer's sign bits (MW, MH), or None for an {alpha, beta} layer."""
        s = np.asarray(self.get_nodeattr("signs"), dtype=np.int64)
        return s if s.size else None

    def get_config(self) -> SparseMVAUConfig:
        """The typed configuration shared with the RTL generator and the estimators."""
        no_act = bool(self.get_nodeattr("noActivation"))
        in_bits, in_signed = input_format(self.get_nodeattr("inputDataType"))
        return SparseMVAUConfig(
            MW=self.get_nodeattr("MW"), MH=self.get_nodeattr("MH"), PE=self.get_nodeattr("PE"),
            SIMD=self.get_nodeattr("SIMD"), alpha_shift=self.get_nodeattr("alpha_shift"),
            mask=self.get_mask(), alpha_num=np.asarray(self.get_nodeattr("alpha_num"), dtype=np.int64),
            thresholds=None if no_act else np.asarray(self.get_nodeattr("thresholds"), dtype=np.int64),
            invert=None if no_act else np.asarray(self.get_nodeattr("invert"), dtype=np.int64),
            weight_mode=self.get_nodeattr("weight_mode"), no_activation=no_act,
            name=self.onnx_node.name if self.onnx_node.name.isidentifier() else "sparse_mvau",
            in_bits=in_bits, in_signed=in_signed, signs=self.get_signs())

    # ---- shapes, datatypes, streams ---------------------------------------
    def get_input_datatype(self, ind=0):
        name = self.get_nodeattr("inputDataType")
        input_format(name)
        return DataType[name]

    def integer_input(self) -> bool:
        """Integer-input mode (inputDataType is not BINARY)."""
        return input_format(self.get_nodeattr("inputDataType"))[0] > 1

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def get_normal_input_shape(self, ind=0):
        return tuple(self.get_nodeattr("numInputVectors")) + (self.get_nodeattr("MW"),)

    def get_normal_output_shape(self, ind=0):
        return tuple(self.get_nodeattr("numInputVectors")) + (self.get_nodeattr("MH"),)

    def get_folded_input_shape(self, ind=0):
        mw, simd = self.get_nodeattr("MW"), self.get_nodeattr("SIMD")
        return tuple(self.get_nodeattr("numInputVectors")) + (mw // simd, simd)

    def get_folded_output_shape(self, ind=0):
        mh, pe = self.get_nodeattr("MH"), self.get_nodeattr("PE")
        return tuple(self.get_nodeattr("numInputVectors")) + (mh // pe, pe)

    def get_instream_width(self, ind=0):
        return self.get_input_datatype().bitwidth() * self.get_nodeattr("SIMD")

    def get_outstream_width(self, ind=0):
        return self.get_output_datatype().bitwidth() * self.get_nodeattr("PE")

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model):
        node = self.onnx_node
        idt = model.get_tensor_datatype(node.input[0])
        ours = self.get_input_datatype()
        fits = (idt.is_integer() and idt != DataType["BIPOLAR"] and ours.min() <= idt.min()
                and idt.max() <= ours.max()) if self.integer_input() else idt == ours
        if not fits:
            what = "integers within its range" if self.integer_input() else "activation bits"
            raise ValueError(f"{node.name}: input tensor has datatype {idt.name}, SparseXnorMVAU expects "
                             f"{ours.name} ({what})")
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())

    def verify_node(self):
        msgs = []
        mw, mh, pe, simd = (self.get_nodeattr(a) for a in ("MW", "MH", "PE", "SIMD"))
        if mh % pe or mw % simd:
            msgs.append(f"{self.onnx_node.name}: PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
        if self.get_mask().shape != (mw, mh):
            msgs.append(f"{self.onnx_node.name}: mask shape {self.get_mask().shape} != (MW, MH) = ({mw}, {mh})")
        if len(self.get_nodeattr("alpha_num")) != mh:
            msgs.append(f"{self.onnx_node.name}: alpha_num needs MH={mh} values")
        if not self.get_nodeattr("noActivation") and (len(self.get_nodeattr("thresholds")) != mh
                                                      or len(self.get_nodeattr("invert")) != mh):
            msgs.append(f"{self.onnx_node.name}: thresholds and invert need MH={mh} values each")
        return msgs

    # ---- execution --------------------------------------------------------
    def execute_node(self, context, graph):
        node = self.onnx_node
        mode = self.get_nodeattr("exec_mode")
        if mode not in ("", "python"):
            raise NotImplementedError(f"{node.name}: exec_mode '{mode}' is not supported by SparseXnorMVAU; "
                                      "use python execution (sbnn's Verilator rtlsim runs the RTL)")
        a = np.asarray(context[node.input[0]])
        integer = self.integer_input()
        if not integer and not np.isin(a, (0, 1)).all():
            raise ValueError(f"{node.name}: input must be activation bits 0/1 (BINARY), got other values")
        if integer:
            dt = self.get_input_datatype()
            whole = np.array_equal(np.round(a), a)
            if a.size and (not whole or a.min() < dt.min() or a.max() > dt.max()):
                raise ValueError(f"{node.name}: input must be {dt.name} integers in [{dt.min()}, {dt.max()}], "
                                 f"got {'non-integer values' if not whole else 'values'} in [{a.min()}, {a.max()}]")
        no_act = bool(self.get_nodeattr("noActivation"))
        out = sparse_mvau_reference(
            a.astype(np.int64), self.get_mask(), np.asarray(self.get_nodeattr("alpha_num"), dtype=np.int64),
            self.get_nodeattr("alpha_shift"),
            None if no_act else np.asarray(self.get_nodeattr("thresholds"), dtype=np.int64),
            None if no_act else np.asarray(self.get_nodeattr("invert"), dtype=np.int64), integer_input=integer,
            signs=self.get_signs())
        context[node.output[0]] = out.astype(np.float32).reshape(
            a.shape[:-1] + (self.get_nodeattr("MH"),))

    # ---- estimates ------------------------------------------------------
    def get_exp_cycles(self):
        cyc = cycles_per_frame_of(self.get_mask(), self.get_nodeattr("PE"), self.get_nodeattr("SIMD"))
        return int(cyc * np.prod(self.get_nodeattr("numInputVectors")))

    def lut_estimation(self, fpgapart=None):
        return int(round(lut_estimate(self.get_config())))

    def bram_estimation(self, fpgapart=None):
        return int(bram18_estimate(self.get_config()))

    def get_op_and_param_counts(self):
        mask = self.get_mask()
        n = int(np.prod(self.get_nodeattr("numInputVectors")))
        op = f"op_mac_{self.get_nodeattr('inputDataType')}_sparse" if self.integer_input() else "op_xnor_popcount"
        ret = {op: int(mask.sum()) * n, "param_mask_nnz": int(mask.sum()),
               "param_weight_bits": int(mask.size)}
        if self.get_signs() is not None:
            ret["param_sign_bits"] = int(mask.sum())
        if not self.get_nodeattr("noActivation"):
            ret["param_threshold"] = int(self.get_nodeattr("MH"))
        return ret

    def sparsity(self) -> float:
        """Share of mask positions at 0 (weights at the majority level, skipped by the hardware)."""
        mask = self.get_mask()
        return float(1.0 - mask.mean()) if mask.size else 0.0


def make_sparse_xnor_mvau_node(name: str, inp: str, out: str, mask: np.ndarray, alpha_num, alpha_shift: int,
                               thresholds=None, invert=None, out_dtype: str = "BINARY",
                               num_input_vectors=(1,), pe: int = 1, simd: int = 1,
                               weight_mode: str = "baked", input_dtype: str = "BINARY", signs=None):
    """An ONNX node of type SparseXnorMVAU (domain sbnn.hls.ops) with the given parameters.

    ``input_dtype``: BINARY (activation bits) or an integer type such as UINT8 / INT8 (integer-input mode).
    ``signs``: a ternary layer's sign bits (MW, MH), or None.
    """
    input_format(input_dtype)
    mask = np.asarray(mask).astype(np.uint8)
    mw, mh = mask.shape
    no_act = thresholds is None
    attrs = dict(MW=mw, MH=mh, PE=pe, SIMD=simd, alpha_shift=int(alpha_shift), noActivation=int(no_act),
                 weight_mode=weight_mode, inputDataType=input_dtype, outputDataType=out_dtype,
                 numInputVectors=[int(v) for v in num_input_vectors], backend="fpgadataflow",
                 mask=numpy_helper.from_array(mask, "mask"),
                 alpha_num=[int(v) for v in np.broadcast_to(alpha_num, (mh,))])
    if signs is not None:
        attrs["signs"] = numpy_helper.from_array(np.asarray(signs).astype(np.uint8), "signs")
    if not no_act:
        attrs["thresholds"] = [int(v) for v in thresholds]
        attrs["invert"] = [int(v) for v in invert]
    return helper.make_node(OP_TYPE, [inp], [out], name=name, domain=SBNN_DOMAIN, **attrs)

