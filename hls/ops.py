"""The registration of sbnn's hardware kernels, and the qonnx domain module of sbnn's own ops.

One line per kernel below registers it. Everything that handles hardware
nodes (compile, folding, the per-layer report, the Python execution view,
the stitcher, resources, rtlsim) looks kernels up here and names no op type.

qonnx finds a custom-op class by importing the module named by the node's
domain and reading its ``__all__`` (qonnx's documented way for packages):
our ops' domain is this module, ``sbnn.hls.ops``, and ``__all__`` lists the
registered op classes. :func:`register` adds one at run time (a plugin or a
test), with the same effect.
"""

from __future__ import annotations

from sbnn.hls.finn_rtl.kernel import FIFO, THRESHOLDING, WIDTH_CONVERTER
from sbnn.hls.exec_views.sliding_window import BatchIm2Col
from sbnn.hls.finn_rtl.passthrough import StreamPassThrough
from sbnn.hls.kernel import SBNN_DOMAIN, Kernel
from sbnn.hls.labelselect.kernel import LabelSelectKernel
from sbnn.hls.maxpool.kernel import MAXPOOL
from sbnn.hls.sparse_mvau.kernel import SPARSE_MVAU
from sbnn.hls.swg.kernel import SWG

assert SBNN_DOMAIN == __name__, "SBNN_DOMAIN must name this module (qonnx imports it to find our op classes)"

# op class names, for qonnx's discovery: the kernels' ops (added by register) and the Python-only helper ops
__all__: list[str] = ["StreamPassThrough", "BatchIm2Col"]
_KERNELS: dict[str, Kernel] = {}


def register(kernel: Kernel) -> Kernel:
    """Register ``kernel`` under its op type (and its op class in this domain, when it has one)."""
    if not kernel.op_type:
        raise ValueError(f"{type(kernel).__name__} has no op_type")
    _KERNELS[kernel.op_type] = kernel
    cls = kernel.op_class
    if cls is not None:
        if cls.__name__ != kernel.op_type:
            raise ValueError(f"op class {cls.__name__} must be named like its op type {kernel.op_type} (qonnx)")
        globals()[cls.__name__] = cls
        if cls.__name__ not in __all__:
            __all__.append(cls.__name__)
    return kernel


def kernel_for(node_or_op_type) -> Kernel | None:
    """The kernel of an ONNX node (or op type), None when no kernel implements it."""
    op_type = node_or_op_type if isinstance(node_or_op_type, str) else node_or_op_type.op_type
    return _KERNELS.get(op_type)


def kernels() -> list[Kernel]:
    return list(_KERNELS.values())


def is_sbnn_kernel_node(node) -> bool:
    """True for nodes of sbnn's own op classes (FINN's layers, even with our RTL, are not)."""
    k = kernel_for(node) if node is not None else None
    return k is not None and k.op_class is not None


def infer_transforms(weight_mode: str) -> list:
    """The compile's rewrites that create our ops, in registration order."""
    return [t for k in _KERNELS.values() for t in k.infer_transforms(weight_mode)]


def supported_op_types() -> list[str]:
    return sorted(_KERNELS)


# ---- the registrations ------------------------------------------------------------
register(SPARSE_MVAU)
register(MAXPOOL)          # after the MVAU rewrite: it turns the pooled activations into BINARY bits
register(LabelSelectKernel("LabelSelect_hls"))
register(THRESHOLDING)
register(FIFO)
register(WIDTH_CONVERTER)
register(SWG)
