"""Independent oracle for +-1 models: FINN's own MVAU in binaryXnorMode vs SparseXnorMVAU.

Starting from the same streamlined graph (``step_XX_streamline.onnx`` of a
build), FINN's own flow is applied: +-1 weights annotated BIPOLAR,
ConvertBipolarMatMulToXnorPopcount, streamlining, InferBinaryMatrixVectorActivation
(FINN's MVAU, binaryXnorMode=1, thresholds absorbed). Both graphs run in
Python mode on the same inputs; the i-th FINN MVAU is compared with the i-th
SparseXnorMVAU:

* thresholded layers: output bits must be equal;
* the classifier (no activation): FINN outputs the XNOR popcount m (number of
  matches), ours the signed sum 2 acc - const; for +-1 weights ours equals
  ``sign * (2 m - MW)`` where sign is +1 when our mask marks the +1 weights.
"""

from __future__ import annotations

from pathlib import Path

import finn.transformation.streamline.absorb as absorb
import numpy as np
from finn.core.onnx_exec import execute_onnx
from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
    InferBinaryMatrixVectorActivation,
)
from finn.transformation.streamline import Streamline
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
from qonnx.transformation.infer_datatypes import InferDataTypes

from sbnn.export.passes import AnnotateBipolarWeights
from sbnn.export.verify import INFER_STEP, set_batch
from sbnn.hls.sparse_mvau.op import OP_TYPE


def finn_xnor_graph(streamlined):
    """FINN's binaryXnorMode flow on a streamlined +-1 graph."""
    m = streamlined.transform(AnnotateBipolarWeights())
    m = m.transform(ConvertBipolarMatMulToXnorPopcount())
    m = m.transform(Streamline())
    m = m.transform(absorb.AbsorbScalarMulAddIntoTopK())
    m = m.transform(InferBinaryMatrixVectorActivation())
    return m.transform(InferDataTypes())


def oracle_compare(build_dir: str | Path, x_hw: np.ndarray, batch: int = 500) -> list[dict]:
    """Per layer: values and images where FINN's binaryXnorMode MVAU and SparseXnorMVAU disagree."""
    build_dir = Path(build_dir)
    streamlined = ModelWrapper(str(next(build_dir.glob("step_*_streamline.onnx"))))
    ours = ModelWrapper(str(next(build_dir.glob(f"step_*_{INFER_STEP}.onnx"))))
    finn = finn_xnor_graph(streamlined)
    f_nodes = [n for n in finn.graph.node if n.op_type == "MVAU"]
    o_nodes = [n for n in ours.graph.node if n.op_type == OP_TYPE]
    if len(f_nodes) != len(o_nodes):
        raise AssertionError(f"FINN made {len(f_nodes)} binaryXnorMode MVAUs, sbnn {len(o_nodes)} SparseXnorMVAUs")
    for n in f_nodes:
        assert getCustomOp(n).get_nodeattr("binaryXnorMode") == 1, n.name

    def run(m, names):
        res = {k: [] for k in names}
        for i in range(0, x_hw.shape[0], batch):
            xb = x_hw[i:i + batch]
            mm = set_batch(ModelWrapper(m.model.__deepcopy__()), xb.shape[0])
            for n in mm.graph.node:
                if n.op_type == "MVAU":  # FINN's Python MVAU reshapes to numInputVectors + [MW]
                    getCustomOp(n).set_nodeattr("numInputVectors", [int(xb.shape[0])])
            ctx = execute_onnx(mm, {mm.graph.input[0].name: xb}, return_full_exec_context=True)
            for k in names:
                res[k].append(np.asarray(ctx[k]).reshape(xb.shape[0], -1))
        return {k: np.concatenate(v) for k, v in res.items()}

    f_out = run(finn, [n.output[0] for n in f_nodes])
    o_out = run(ours, [n.output[0] for n in o_nodes])
    rows = []
    for fn, on in zip(f_nodes, o_nodes):
        f, o = f_out[fn.output[0]], o_out[on.output[0]]
        inst = getCustomOp(on)
        if inst.get_nodeattr("noActivation"):
            mw = inst.get_nodeattr("MW")
            w = finn.get_initializer(fn.input[1])
            # FINN weights are 0/1 (BINARY) for +1/-1; our mask marks the +1 weights (positive mode)
            sign = np.where((inst.get_mask() == (w > 0.5)).all(axis=0), 1, -1)
            expect = sign.reshape(1, -1) * (2 * f - mw)
            kind = "noActivation: ours == 2*popcount(xnor) - MW"
        else:
            expect = f
            kind = "thresholded bits"
        bad = o != expect
        rows.append({"finn_node": fn.name, "sbnn_node": on.name, "compared": kind,
                     "mismatching_values": int(bad.sum()), "mismatching_images": int(bad.any(axis=1).sum()),
                     "values": int(o.size)})
    return rows
