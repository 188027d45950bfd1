"""Bit-exactness chain: PyTorch (frozen, eval) vs QONNX (qonnx execute_onnx) vs the FINN HW graph.

* PyTorch: the frozen model (freeze.py), eval mode, logits -> argmax.
* QONNX: the exported model, executed by qonnx in batches (``ChangeBatchSize``).
* HW graph: the compiled parent graph with its dataflow partition, executed by
  FINN's ``execute_onnx`` in Python mode. FINN's specialized layers
  only execute in cppsim / rtlsim, so each node's kernel rewrites it into a
  Python-executable op (``Kernel.python_view``: FINN's generic layer); our ops
  run their bit-true reference (``execute_node``).

Predictions are compared image by image. Integer-valued layers are compared
too: each kernel node that has a counterpart in the streamlined float graph
(``Kernel.streamlined_counterpart``) against that tensor, e.g. the sparse
MVAU's bits against the bipolar MultiThreshold output, or its integer output
times its exact scale against the float MatMul output.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from finn.core.onnx_exec import execute_onnx as finn_execute_onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx as qonnx_execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes

from sbnn.export.freeze import DEFAULT_FRAC_BITS
from sbnn.export.qonnx_export import load_frozen
from sbnn.hls import ops
from sbnn.hls.exec_views.sliding_window import as_batch_im2col
from sbnn.hls.kernel import SBNN_DOMAIN
from sbnn.training.datasets import load_dataset

# Nodes of FINN's specialized domains without a kernel still run as their generic layer.
FINN_SPECIALIZED_DOMAINS = ("finn.custom_op.fpgadataflow.rtl", "finn.custom_op.fpgadataflow.hls")
INFER_STEP = "infer_kernels"   # the compile step after which our ops exist (step_XX_infer_kernels.onnx)


def python_exec_view(model):
    """A copy of a HW graph in which every node runs in Python (each kernel's ``python_view``)."""
    view = ModelWrapper(model.model.__deepcopy__())
    for node in view.graph.node:
        kernel = ops.kernel_for(node)
        if kernel is not None:
            kernel.python_view(node)
        elif node.domain in FINN_SPECIALIZED_DOMAINS:
            for suffix in ("_rtl", "_hls"):
                if node.op_type.endswith(suffix):
                    node.op_type = node.op_type[: -len(suffix)]
            node.domain = "finn.custom_op.fpgadataflow"
    return view


def set_batch(model, n: int):
    """Declare batch size n on every activation tensor (initializers keep their shapes), and run sliding
    windows as :class:`sbnn.hls.exec_views.sliding_window.BatchIm2Col` (qonnx's Im2Col and FINN's
    ConvolutionInputGenerator only execute one frame at a time correctly)."""
    for node in model.graph.node:
        as_batch_im2col(node, SBNN_DOMAIN)
    inits = {t.name for t in model.graph.initializer}
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].dim_value = n
    for node in model.graph.node:
        # a Reshape to a constant (1, ...) shape (PyTorch's x.view(1, -1) at export) reshapes the batch too
        shape = model.get_initializer(node.input[1]) if node.op_type == "Reshape" else None
        if shape is not None and shape.size and shape[0] == 1:
            model.set_initializer(node.input[1], np.concatenate([[n], shape[1:]]).astype(shape.dtype))
    return model


class HWGraphRunner:
    """Executes a compiled build (parent.onnx + hw_graph.onnx) in FINN's Python mode, in batches."""

    def __init__(self, build_dir: str | Path, batch: int = 500):
        self.build_dir = Path(build_dir)
        self.tmp = tempfile.TemporaryDirectory(prefix="sbnn_verify_")
        parent = ModelWrapper(str(self.build_dir / "parent.onnx"))
        sdp = parent.get_nodes_by_op_type("StreamingDataflowPartition")[0]
        child = ModelWrapper(getCustomOp(sdp).get_nodeattr("model"))
        self.child = python_exec_view(child)
        self.batch = batch
        self.parent = parent
        self.sdp_name = sdp.name
        self._shapes: dict[int, tuple] = {}

    def _models_for(self, n: int):
        if n in self._shapes:
            return self._shapes[n]
        child = ModelWrapper(self.child.model.__deepcopy__())
        parent = ModelWrapper(self.parent.model.__deepcopy__())
        for m in (child, parent):
            set_batch(m, n)
        path = Path(self.tmp.name) / f"child_{n}.onnx"
        child.save(str(path))
        sdp = [x for x in parent.graph.node if x.name == self.sdp_name][0]
        getCustomOp(sdp).set_nodeattr("model", str(path))
        self._shapes[n] = (parent, child)
        return parent, child

    def partition_io(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(partition inputs, partition outputs), each (N, elements), for graph inputs ``x``: what the
        dataflow partition (the hardware) receives and must return."""
        ins, outs = [], []
        for i in range(0, x.shape[0], self.batch):
            xb = x[i:i + self.batch]
            parent, _ = self._models_for(xb.shape[0])
            sdp = [n for n in parent.graph.node if n.name == self.sdp_name][0]
            ctx = finn_execute_onnx(parent, {parent.graph.input[0].name: xb}, return_full_exec_context=True)
            ins.append(np.asarray(ctx[sdp.input[0]]).reshape(xb.shape[0], -1))
            outs.append(np.asarray(ctx[sdp.output[0]]).reshape(xb.shape[0], -1))
        return np.concatenate(ins), np.concatenate(outs)

    def run(self, x: np.ndarray, full_context: bool = False):
        """Graph outputs for inputs ``x`` (N, ...); with full_context also the child graph's tensors."""
        outs, ctxs = [], []
        for i in range(0, x.shape[0], self.batch):
            xb = x[i:i + self.batch]
            parent, child = self._models_for(xb.shape[0])
            if full_context:
                # run the parent up to the partition input, then the child with its full context
                pctx = finn_execute_onnx(parent, {parent.graph.input[0].name: xb}, return_full_exec_context=True)
                sdp = [n for n in parent.graph.node if n.name == self.sdp_name][0]
                cctx = finn_execute_onnx(child, {child.graph.input[0].name: pctx[sdp.input[0]]},
                                    return_full_exec_context=True)
                ctxs.append(cctx)
                outs.append(pctx[parent.graph.output[0].name])
            else:
                out = finn_execute_onnx(parent, {parent.graph.input[0].name: xb})
                outs.append(out[parent.graph.output[0].name])
        y = np.concatenate(outs, axis=0)
        if full_context:
            keys = ctxs[0].keys()
            # tensors absent from the context (None) or scalars carry no per-frame data
            merged = {k: np.concatenate([c[k] for c in ctxs], axis=0) for k in keys
                      if all(isinstance(c[k], np.ndarray) and c[k].ndim for c in ctxs)}
            return y, merged
        return y


def qonnx_logits(qonnx_path: str | Path, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    base = ModelWrapper(str(qonnx_path))
    cache = {}
    outs = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        n = xb.shape[0]
        if n not in cache:
            cache[n] = base.transform(ChangeBatchSize(n)).transform(InferShapes())
        m = cache[n]
        outs.append(qonnx_execute_onnx(m, {m.graph.input[0].name: xb})[m.graph.output[0].name])
    return np.concatenate(outs, axis=0)


@torch.no_grad()
def torch_logits(model, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, x.shape[0], batch)])


def layer_outputs_check(build_dir: Path, x_hw: np.ndarray, batch: int = 500) -> list[dict]:
    """Compare each kernel node's output with its counterpart in the streamlined float graph, image by image."""
    build_dir = Path(build_dir)
    streamlined = ModelWrapper(str(next(build_dir.glob("step_*_streamline.onnx"))))
    converted = ModelWrapper(str(next(build_dir.glob(f"step_*_{INFER_STEP}.onnx"))))
    pairs = []   # (node, our output tensor, streamlined tensor, factor or None, kind)
    for node in converted.graph.node:
        kernel = ops.kernel_for(node)
        match = kernel.streamlined_counterpart(converted, node) if kernel is not None else None
        if match is not None:
            y, fac, kind = match
            pairs.append((node.name, node.output[0], y, fac, kind))


    def batched(m, names):
        res = {k: [] for k in names}
        for i in range(0, x_hw.shape[0], batch):
            xb = x_hw[i:i + batch]
            mm = set_batch(ModelWrapper(m.model.__deepcopy__()), xb.shape[0])
            ctx = finn_execute_onnx(mm, {mm.graph.input[0].name: xb}, return_full_exec_context=True)
            for k in names:
                res[k].append(np.asarray(ctx[k]).reshape(xb.shape[0], -1))
        return {k: np.concatenate(v, axis=0) for k, v in res.items()}

    ref = batched(streamlined, [p[2] for p in pairs])
    ours = batched(converted, [p[1] for p in pairs])
    rows = []
    for name, out, y, fac, kind in pairs:
        o = ours[out].reshape(x_hw.shape[0], -1)
        r = ref[y].reshape(x_hw.shape[0], -1)
        if fac is not None:   # integer output times its exact scale vs the float tensor
            bad = (o * fac.reshape(1, -1)) != r
        else:                 # output bits vs a bipolar tensor
            bad = o != (r > 0).astype(np.float64)
        mism_vals, mism_imgs = int(bad.sum()), int(bad.any(axis=1).sum())
        rows.append({"node": name, "compared": kind, "mismatching_values": mism_vals,
                     "mismatching_images": mism_imgs, "values": int(o.size)})
    return rows


def pixels_for_hw(x: np.ndarray, max_value: int | None) -> np.ndarray:
    """The HW graph takes integer pixels when the compile added the pixel pre-processing."""
    if not max_value:
        return x.astype(np.float32)
    return np.round(x.astype(np.float64) * max_value).astype(np.float32)


def bitexact_chain(checkpoint: str | Path, qonnx_path: str | Path, build_dir: str | Path, n: int | None = None,
                   frac_bits: int | None = None, data_dir: str | None = None, layers: bool = True,
                   batch: int = 500) -> dict:
    """Run the three-way comparison on the first ``n`` test images (all when None)."""
    build_dir = Path(build_dir)
    report = json.loads((build_dir / "compile_report.json").read_text())
    if frac_bits is None:
        exp_json = Path(qonnx_path).with_suffix(".json")
        frac_bits = json.loads(exp_json.read_text())["frac_bits"] if exp_json.is_file() else DEFAULT_FRAC_BITS
    model, _, _, ckpt, _ = load_frozen(checkpoint, frac_bits)
    _, test_set, _ = load_dataset(ckpt["data"]["dataset"], data_dir)
    x, y = test_set.tensors
    x = x.numpy()[:n] if n else x.numpy()
    labels = y.numpy()[: x.shape[0]]
    times = {}
    t = time.perf_counter()
    lt = torch_logits(model, x)
    times["torch_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lq = qonnx_logits(qonnx_path, x)
    times["qonnx_s"] = time.perf_counter() - t
    t = time.perf_counter()
    x_hw = pixels_for_hw(x, report.get("input_max_value"))
    runner = HWGraphRunner(build_dir, batch=batch)
    hw = runner.run(x_hw).reshape(x.shape[0], -1)[:, 0].astype(np.int64)
    times["hw_graph_s"] = time.perf_counter() - t
    pt, pq = lt.argmax(1), lq.argmax(1)
    res = {
        "images": int(x.shape[0]),
        "torch_vs_qonnx_mismatches": int((pt != pq).sum()),
        "torch_vs_hw_mismatches": int((pt != hw).sum()),
        "qonnx_vs_hw_mismatches": int((pq != hw).sum()),
        "torch_qonnx_logits_identical": bool(np.array_equal(lt, lq)),
        "accuracy_torch": float((pt == labels).mean()),
        "accuracy_hw": float((hw == labels).mean()),
        "times_s": {k: round(v, 2) for k, v in times.items()},
    }
    if layers:
        t = time.perf_counter()
        res["layers"] = layer_outputs_check(build_dir, x_hw, batch=batch)
        res["times_s"]["layers_s"] = round(time.perf_counter() - t, 2)
    return res
