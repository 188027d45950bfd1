"""sbnn: sparse binary neural networks from training to FPGA.

Stages are subpackages, one per top-level folder of the repository:
``sbnn.training`` (training/), ``sbnn.export`` (export/), ``sbnn.hls`` (hls/),
``sbnn.bitstreams`` (bitstreams/).
"""

__version__ = "0.1.0"
