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


class MoveTransposeBeforeMultiThreshold(Transformation):
    """MultiThreshold (NCHW) -> Transpose NCHW->NHWC  becomes  Transpose -> MultiThreshold (NHWC).

    The mirror image of FINN's AbsorbTransposeIntoMultiThreshold, for the input quantizer of a
    conv net: thresholds act per element (per channel at most), so the layout change can happen
    first. At the graph input this leaves the Transpose on the host and gives the hardware NHWC
    pixels, FINN's layout for sliding-window generators.
    """

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "Transpose" or list(get_by_name(node.attribute, "perm").ints) != [0, 2, 3, 1]:
                continue
            mt = model.find_producer(node.input[0])
            if mt is None or mt.op_type != "MultiThreshold" or model.is_fork_node(mt):
                continue
            layout = get_by_name(mt.attribute, "data_layout")
            if layout is not None and layout.s.decode() != "NCHW":
                continue
            src, mid, out = mt.input[0], mt.output[0], node.output[0]
            odt = model.get_tensor_datatype(mid)
            nhwc_in = model.make_new_valueinfo_name()
            model.set_tensor_shape(nhwc_in, model.get_tensor_shape(out))
            model.set_tensor_datatype(nhwc_in, model.get_tensor_datatype(src))
            node.input[0], node.output[0] = src, nhwc_in
            mt.input[0], mt.output[0] = nhwc_in, out
            if layout is None:
                mt.attribute.append(helper.make_attribute("data_layout", "NHWC"))
            else:
                layout.s = b"NHWC"
            model.set_tensor_datatype(out, odt)
            # keep topological order: the Transpose now runs first
            graph = model.graph
            graph.node.remove(node)
            graph.node.insert(list(graph.node).index(mt), node)
            return model, True
        return model, False


def _is_flatten(model, node) -> bool:
    """A Flatten, or a Reshape to 2-D that keeps the batch dimension."""
    if node.op_type == "Flatten":
        return True
    if node.op_type != "Reshape":
        return False
    ishape, oshape = model.get_tensor_shape(node.input[0]), model.get_tensor_shape(node.output[0])
    return oshape is not None and ishape is not None and len(oshape) == 2 and oshape[0] == ishape[0]


class AbsorbTransposeFlattenIntoMatMul(Transformation):
    """Transpose NHWC->NCHW -> Flatten -> MatMul(W)  becomes  Flatten (NHWC order) -> MatMul(W').

    W' holds W's rows reordered from (c, h, w) to (h, w, c) order, so the FC layer reads the conv
    part's NHWC stream as it comes (FINN's RemoveCNVtoFCFlatten does this for its own MVAU only).
    A Reshape to (N, -1) (PyTorch's ``x.view(N, -1)``) counts as a Flatten.
    """

    def apply(self, model):
        for tr in model.graph.node:
            if tr.op_type != "Transpose" or list(get_by_name(tr.attribute, "perm").ints) != [0, 3, 1, 2]:
                continue
            fl = model.find_consumer(tr.output[0])
            if fl is None or model.is_fork_node(tr) or not _is_flatten(model, fl):
                continue
            mm = model.find_consumer(fl.output[0])
            if mm is None or mm.op_type != "MatMul" or model.get_initializer(mm.input[1]) is None:
                continue
            _, h, w, c = model.get_tensor_shape(tr.input[0])
            weight = model.get_initializer(mm.input[1])
            # row index in NCHW flattening: c*h*w; in NHWC flattening: (y*w + x)*c + ch
            order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            wdt = model.get_tensor_datatype(mm.input[1])
            model.set_initializer(mm.input[1], weight[order])
            model.set_tensor_datatype(mm.input[1], wdt)
            fl.input[0] = tr.input[0]
            model.graph.node.remove(tr)
            return model, True
        return model, False


def has_sliding_window(model) -> bool:
    """Whether the graph holds a sliding window (a conv net): its bursts need FIFOs between the layers."""
    return any(n.op_type.startswith("ConvolutionInputGenerator") for n in model.graph.node)


class DeepenFifosInWindowedPipelines(Transformation):
    """In a graph with a sliding window (a conv net), every StreamingFIFO gets at least ``depth`` entries.

    Why: a sliding window buffers rows and emits its windows in bursts, with a pause at every frame boundary;
    with FINN's shallow (depth 2) FIFOs the layers around it stall each other, and a CNV whose layers the
    folder balanced near one cycle target ran 5,453 cycles/frame in rtlsim against a model of 4,704 (depth 32:
    5,173; depth 128 and 512: 4,704, equal to the model). MLPs stream evenly and keep depth 2. FINN sizes
    FIFOs by simulating the design (InsertAndSetFIFODepths), which needs its own rtlsim of every node."""

    def __init__(self, depth: int = 128):
        super().__init__()
        self.depth = depth

    def apply(self, model):
        if not has_sliding_window(model):
            return model, False
        for node in model.graph.node:
            if node.op_type.startswith("StreamingFIFO"):
                attr = get_by_name(node.attribute, "depth")
                if attr is not None and attr.i < self.depth:
                    attr.i = self.depth
        return model, False
