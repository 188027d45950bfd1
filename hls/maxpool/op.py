"""FINN custom op ``BinaryMaxPool``: streaming max-pool over activation bits (NHWC).

Semantics: :mod:`sbnn.hls.maxpool.reference` (``execute_node`` calls it): the
producing layer outputs activation bits (BINARY, bit 1 = +1), so max over the
bipolar values is the OR of the bits. Estimates: :mod:`sbnn.hls.maxpool.estimates`.

Attributes: ``ImgDim`` [H, W], ``PoolDim`` [kh, kw], ``Stride`` [sh, sw] (must
equal PoolDim: the CNV case, no padding, floor), ``NumChannels`` C, ``PE``
(divides C), ``inputDataType`` ("BINARY"), ``numInputVectors`` (the leading
batch dimensions, [1] by default).

Shapes: input ``nv + (H, W, C)``, output ``nv + (H//kh, W//kw, C)``; folded
``(..., C/PE, PE)``; stream widths PE bits. Domain ``sbnn.hls.ops`` (qonnx
finds the class there), ``backend="fpgadataflow"`` so FINN treats the node as a
hardware layer.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType

from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from sbnn.hls.kernel import SBNN_DOMAIN
from sbnn.hls.maxpool.config import MaxPoolConfig
from sbnn.hls.maxpool.estimates import bram18, cycles_per_frame, lut_estimate
from sbnn.hls.maxpool.reference import binary_maxpool_reference

OP_TYPE = "BinaryMaxPool"


class BinaryMaxPool(HWCustomOp):
    """Max-pool over activation bits (see module docstring)."""

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs.update({
            "ImgDim": ("ints", True, []),
            "PoolDim": ("ints", True, []),
            "Stride": ("ints", True, []),
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 1),
            "inputDataType": ("s", False, "BINARY"),
            "numInputVectors": ("ints", False, [1]),
        })
        return attrs

    # ---- parameters -------------------------------------------------------
    def get_config(self) -> MaxPoolConfig:
        """The typed configuration shared with the RTL generator and the cost model (ValueError if invalid)."""
        (h, w), (kh, kw) = self.get_nodeattr("ImgDim"), self.get_nodeattr("PoolDim")
        name = self.onnx_node.name if self.onnx_node.name.isidentifier() else "binary_maxpool"
        return MaxPoolConfig(int(h), int(w), int(kh), int(kw), int(self.get_nodeattr("NumChannels")),
                             int(self.get_nodeattr("PE")), name)

    def _nv(self) -> tuple:
        return tuple(self.get_nodeattr("numInputVectors"))

    # ---- shapes, datatypes, streams ---------------------------------------
    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        return self.get_input_datatype()

    def get_normal_input_shape(self, ind=0):
        h, w = self.get_nodeattr("ImgDim")
        return self._nv() + (h, w, self.get_nodeattr("NumChannels"))

    def get_normal_output_shape(self, ind=0):
        (h, w), (kh, kw) = self.get_nodeattr("ImgDim"), self.get_nodeattr("PoolDim")
        return self._nv() + (h // kh, w // kw, self.get_nodeattr("NumChannels"))

    def _fold(self, shape):
        ch, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        return tuple(shape[:-1]) + (ch // pe, pe)

    def get_folded_input_shape(self, ind=0):
        return self._fold(self.get_normal_input_shape())

    def get_folded_output_shape(self, ind=0):
        return self._fold(self.get_normal_output_shape())

    def get_instream_width(self, ind=0):
        return self.get_input_datatype().bitwidth() * self.get_nodeattr("PE")

    def get_outstream_width(self, ind=0):
        return self.get_output_datatype().bitwidth() * self.get_nodeattr("PE")

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model):
        node = self.onnx_node
        idt = model.get_tensor_datatype(node.input[0])
        if idt != self.get_input_datatype():
            raise ValueError(f"{node.name}: input tensor has datatype {idt}, BinaryMaxPool expects "
                             f"{self.get_input_datatype()} (activation bits)")
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())

    def verify_node(self):
        name, msgs = self.onnx_node.name, []
        dims = {a: list(self.get_nodeattr(a)) for a in ("ImgDim", "PoolDim", "Stride")}
        for a, v in dims.items():
            if len(v) != 2:
                msgs.append(f"{name}: {a} needs two values [rows, columns], got {v}")
        if not msgs and dims["Stride"] != dims["PoolDim"]:
            msgs.append(f"{name}: Stride={dims['Stride']} differs from PoolDim={dims['PoolDim']}; BinaryMaxPool "
                        "supports only non-overlapping windows (stride = kernel)")
        if self.get_nodeattr("inputDataType") != "BINARY":
            msgs.append(f"{name}: inputDataType must be BINARY (activation bits), got "
                        f"{self.get_nodeattr('inputDataType')}")
        if not msgs:
            try:
                self.get_config()
            except ValueError as exc:
                msgs.append(str(exc))
        return msgs

    # ---- execution --------------------------------------------------------
    def execute_node(self, context, graph):
        node = self.onnx_node
        mode = self.get_nodeattr("exec_mode")
        if mode not in ("", "python"):
            raise NotImplementedError(f"{node.name}: exec_mode '{mode}' is not supported by BinaryMaxPool; "
                                      "use python execution (sbnn's Verilator rtlsim runs the RTL)")
        a = np.asarray(context[node.input[0]])
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"{node.name}: input must be activation bits 0/1 (BINARY), got other values")
        # any number of frames (FINN's batched Python execution): (N, H, W, C) whatever the declared batch
        h, w = self.get_nodeattr("ImgDim")
        a = a.reshape((-1, h, w, self.get_nodeattr("NumChannels")))
        out = binary_maxpool_reference(a, tuple(self.get_nodeattr("PoolDim")))
        context[node.output[0]] = out.astype(np.float32)

    # ---- estimates ----------------------------------------------------------
    def get_exp_cycles(self):
        return int(cycles_per_frame(self.get_config()) * np.prod(self._nv()))

    def lut_estimation(self, fpgapart=None):
        return int(round(lut_estimate(self.get_config())))

    def bram_estimation(self, fpgapart=None):
        return int(bram18(self.get_config()))

    def get_op_and_param_counts(self):
        (kh, kw) = self.get_nodeattr("PoolDim")
        n = int(np.prod(self.get_normal_output_shape()))
        return {"op_or": n * max(0, kh * kw - 1)}


def make_binary_maxpool_node(name: str, inp: str, out: str, img_dim, pool_dim, channels: int, pe: int = 1,
                             stride=None, num_input_vectors=(1,)):
    """An ONNX node of type BinaryMaxPool (domain sbnn.hls.ops, backend fpgadataflow)."""
    return helper.make_node(OP_TYPE, [inp], [out], name=name, domain=SBNN_DOMAIN, backend="fpgadataflow",
                            ImgDim=[int(v) for v in img_dim], PoolDim=[int(v) for v in pool_dim],
                            Stride=[int(v) for v in (stride if stride is not None else pool_dim)],
                            NumChannels=int(channels), PE=int(pe), inputDataType="BINARY",
                            numInputVectors=[int(v) for v in num_input_vectors])
