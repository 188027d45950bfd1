"""``StreamPassThrough``: how FIFOs and width converters execute in FINN's Python mode.

Both only move a stream; its values pass unchanged. The output takes the shape
declared for the output tensor (qonnx's execution context holds it before the
node runs), so a FIFO between a conv part's (N, 1, 1, C) output and an FC
layer's (N, C) input hands the FC layer the shape it declares.
"""

from __future__ import annotations

import numpy as np

from sbnn.hls.exec_views.base import ExecOnlyOp

OP_TYPE = "StreamPassThrough"


class StreamPassThrough(ExecOnlyOp):
    def get_nodeattr_types(self):
        return {}

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        declared = context.get(node.output[0])
        if isinstance(declared, np.ndarray) and declared.size == x.size:
            x = x.reshape(declared.shape)
        context[node.output[0]] = x
