"""sbnn: sparse binary neural networks from training to FPGA.

Stages are subpackages, one per top-level folder of the repository:
``sbnn.training`` (training/), ``sbnn.export`` (export/), ``sbnn.hls`` (hls/),
``sbnn.bitstreams`` (bitstreams/). ``sbnn.build(...)`` is the Python API of
``sbnn build`` (:mod:`sbnn.flow.api`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `import sbnn` stays light (no torch, no FINN) until the build API is used
    if name == "build":
        from sbnn.flow.api import build
        return build
    raise AttributeError(f"module 'sbnn' has no attribute {name!r}")
