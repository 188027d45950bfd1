"""``BatchIm2Col``: a sliding window (im2col) that executes correctly on a batch of frames.

qonnx's ``Im2Col`` and FINN's ``ConvolutionInputGenerator`` Python execution
give wrong windows for every frame but the first when a tensor holds more than
one frame, so sbnn's batched Python execution (:func:`sbnn.export.verify.set_batch`)
runs conv windows through this op instead. Output order as theirs: for each
output pixel (row-major) the window's elements in (ky, kx, channel) order.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.util.basic import get_by_name

from sbnn.hls.exec_views.base import ExecOnlyOp

OP_TYPE = "BatchIm2Col"


def im2col_nhwc(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, KH*KW*C), no padding."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    cols = [x[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for ky in range(kh) for kx in range(kw)]
    return np.stack(cols, axis=3).reshape(n, oh, ow, kh * kw * c)


class BatchIm2Col(ExecOnlyOp):
    def get_nodeattr_types(self):
        return {"kernel_size": ("ints", True, []), "stride": ("ints", True, []), "dilations": ("ints", False, [1, 1])}

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        context[node.output[0]] = im2col_nhwc(x, tuple(self.get_nodeattr("kernel_size")),
                                              tuple(self.get_nodeattr("stride")),
                                              tuple(self.get_nodeattr("dilations"))).astype(np.float32)


def _ints(node, name: str, default=None):
    a = get_by_name(node.attribute, name)
    return list(a.ints) if a is not None else default


def as_batch_im2col(node, domain: str) -> bool:
    """Rewrite an unpadded ``Im2Col`` or a generic ``ConvolutionInputGenerator`` node in place into
    ``BatchIm2Col`` (``domain``: the module that lists the op class); False when it is neither."""
    if node.op_type == "Im2Col":
        if any(_ints(node, "pad_amount", [0]) or [0]):
            return False
        attrs = dict(kernel_size=_ints(node, "kernel_size"), stride=_ints(node, "stride"),
                     dilations=_ints(node, "dilations", [1, 1]))
    elif node.op_type == "ConvolutionInputGenerator":
        depthwise = get_by_name(node.attribute, "depthwise")
        if depthwise is not None and depthwise.i:
            return False
        attrs = dict(kernel_size=_ints(node, "ConvKernelDim"), stride=_ints(node, "Stride"),
                     dilations=_ints(node, "Dilation", [1, 1]))
    else:
        return False
    node.op_type, node.domain = OP_TYPE, domain
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    return True
