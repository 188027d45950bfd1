"""The graph rewrite that creates ``BinaryMaxPool`` nodes from FINN's ``MaxPoolNHWC``.

Applied by the compile through the kernel registry after the sparse MVAU
rewrite, which turns the bipolar activations feeding the pool into BINARY bits.
A ``MaxPoolNHWC`` whose input is BINARY, with no padding and ``ceil_mode`` 0,
becomes a ``BinaryMaxPool``; one on any other datatype, or with padding or
ceil mode, is left alone (the compile then reports it as unsupported, naming
the node). Overlapping windows (stride != kernel) on bits are refused with a
one-line error naming the node.
"""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from sbnn.errors import UserError
from sbnn.hls.maxpool.op import make_binary_maxpool_node

SOURCE_OP = "MaxPoolNHWC"


def _convertible(model, node) -> bool:
    """A MaxPoolNHWC on bits without padding or ceil mode."""
    if node.op_type != SOURCE_OP or model.get_tensor_datatype(node.input[0]) != DataType["BINARY"]:
        return False
    inst = getCustomOp(node)
    return not any(inst.get_nodeattr("pads")) and not inst.get_nodeattr("ceil_mode")


class InferBinaryMaxPool(Transformation):
    """BINARY-input ``MaxPoolNHWC`` (no padding, floor) -> ``BinaryMaxPool`` with PE = 1.

    One node per apply (FINN style; ``model.transform`` repeats until nothing changes), in graph order.
    """

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if not _convertible(model, node):
                continue
            inst = getCustomOp(node)
            kernel, strides = list(inst.get_nodeattr("kernel_shape")), list(inst.get_nodeattr("strides"))
            shape = model.get_tensor_shape(node.input[0])
            if len(kernel) != 2 or shape is None or len(shape) != 4:
                raise UserError(f"node '{node.name}' ({SOURCE_OP}) is not a 2-D pool over an NHWC tensor "
                                f"(kernel_shape={kernel}, input shape={shape})")
            if strides != kernel:
                raise UserError(f"node '{node.name}' ({SOURCE_OP}) has strides {strides} != kernel_shape {kernel}; "
                                "BinaryMaxPool supports only non-overlapping windows (stride = kernel)")
            n, h, w, c = (int(v) for v in shape)
            if h < kernel[0] or w < kernel[1]:
                raise UserError(f"node '{node.name}' ({SOURCE_OP}): image {h}x{w} is smaller than the "
                                f"{kernel[0]}x{kernel[1]} window")
            new = make_binary_maxpool_node(node.name + "_binary", node.input[0], node.output[0], (h, w), kernel, c,
                                           num_input_vectors=(n,))
            graph.node.insert(idx, new)
            graph.node.remove(node)
            model.set_tensor_datatype(node.output[0], DataType["BINARY"])
            return model, True
        return model, False
