"""Our graph passes, in FINN's transformation style (one rewrite per class, ``apply(model) -> (model, modified)``).

* :class:`ConvertBinaryDomainQuant` (before FINN's ConvertQONNXtoFINN): a 1-bit
  weight ``Quant`` node with a dyadic zero point ``-R/2**k`` (our {alpha, beta}
  export) becomes the equivalent integer ``Quant`` node FINN can fold:
  weights ``q * (R + 2**k b)``, scale ``q = s / 2**k``, zero point 0.
* :class:`AnnotateBipolarWeights`: integer weight initializers whose values are
  all +-1 get datatype BIPOLAR (what FINN's own XNOR flow expects).

The rewrites that create hardware ops live with their kernels (``hls/<kernel>/infer.py``)
and are applied through the registry, :func:`sbnn.hls.ops.infer_transforms`.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from sbnn.errors import UserError


def _dyadic_shift(values: np.ndarray, max_shift: int = 24) -> int | None:
    """Smallest k with values * 2**k all integers (None if there is none up to max_shift)."""
    for k in range(max_shift + 1):
        scaled = values * 2.0**k
        if np.array_equal(scaled, np.round(scaled)):
            return k
    return None


class ConvertBinaryDomainQuant(Transformation):
    """1-bit unsigned weight Quant with zero point -R/2**k -> integer Quant (zero point 0) of the same values."""

    def apply(self, model):
        modified = False
        for node in model.graph.node:
            if node.op_type != "Quant":
                continue
            inits = [model.get_initializer(i) for i in node.input]
            if any(v is None for v in inits):
                continue
            w, scale, zp, bw = (np.asarray(v, dtype=np.float64) for v in inits)
            if float(bw) != 1.0 or not np.any(zp != 0):
                continue
            k = _dyadic_shift(np.unique(zp))
            if k is None:
                raise UserError(f"weight Quant node '{node.name}' has zero point {np.unique(zp)[:3]}, not a "
                                "fixed-point value R/2**k; re-export the checkpoint with `sbnn export`")
            codes = np.round(w / scale + zp)
            if not np.isin(codes, (0.0, 1.0)).all():
                raise UserError(f"weight Quant node '{node.name}' holds weights that are not 1-bit codes of its scale "
                                "and zero point; re-export the checkpoint with `sbnn export`")
            coef = (codes - zp) * 2.0**k  # integers R + 2**k b
            q = scale / 2.0**k
            new_w = (coef * q).astype(np.float32)
            lo, hi = int(coef.min()), int(coef.max())
            bits = max(2, max(abs(lo), abs(hi) + 1).bit_length() + 1)
            model.set_initializer(node.input[0], new_w)
            model.set_initializer(node.input[1], q.astype(np.float32))
            model.set_initializer(node.input[2], np.array(0.0, dtype=np.float32))  # FINN wants a scalar 0
            bw_name = model.make_new_valueinfo_name()
            model.set_initializer(bw_name, np.array(float(bits), dtype=np.float32))
            node.input[3] = bw_name
            for attr, val in (("signed", 1), ("narrow", 0)):
                a = get_by_name(node.attribute, attr)
                if a is not None:
                    a.i = val
                else:
                    node.attribute.append(helper.make_attribute(attr, val))
            modified = True
        return model, modified


class AnnotateBipolarWeights(Transformation):
    """Integer initializers feeding a MatMul whose values are all -1/+1 -> datatype BIPOLAR."""

    def apply(self, model):
        modified = False
        for node in model.graph.node:
            if node.op_type != "MatMul":
                continue
            w = model.get_initializer(node.input[1])
            if w is None or model.get_tensor_datatype(node.input[1]) == DataType["BIPOLAR"]:
                continue
            if np.isin(w, (-1.0, 1.0)).all():
                model.set_tensor_datatype(node.input[1], DataType["BIPOLAR"])
                modified = True
        return model, modified
