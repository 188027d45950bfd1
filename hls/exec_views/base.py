"""Base of sbnn's execution-only ops (Python views of hardware nodes): output shape and datatype pass through."""

from __future__ import annotations

from qonnx.custom_op.base import CustomOp


class ExecOnlyOp(CustomOp):
    """Shape as the output tensor is declared, datatype of the input; nothing to verify."""

    def make_shape_compatible_op(self, model):
        return self.make_const_shape_op(model.get_tensor_shape(self.onnx_node.output[0]))

    def infer_node_datatype(self, model):
        node = self.onnx_node
        model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(node.input[0]))

    def verify_node(self):
        return []
