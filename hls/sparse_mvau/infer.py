"""The graph rewrite that creates ``SparseXnorMVAU`` nodes, and the exact integer lowering it uses.

Applied by the compile through the kernel registry (``Kernel.infer_transforms``),
after FINN's streamlining. The arithmetic is in ``docs/DESIGN.md`` ("The arithmetic").
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from sbnn.errors import UserError
from sbnn.hls.sparse_mvau.op import OP_TYPE, make_sparse_xnor_mvau_node
from sbnn.hls.sparse_mvau.reference import acc_range


def int_datatype_for(lo: int, hi: int) -> DataType:
    if lo >= -1 and hi <= 1 and lo != 0 and hi != 0 and lo == -hi:
        return DataType["BIPOLAR"]
    if lo >= 0:
        return DataType[f"UINT{max(1, int(hi).bit_length())}"] if hi > 1 else DataType["BINARY"]
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return DataType[f"INT{max(bits, 2)}"]


def column_levels(w: np.ndarray, node_name: str, positive: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column j of a (MW, MH) weight matrix: majority value u_j, mask (minority positions), d_j = v_j - u_j.

    With ``positive`` the mask marks the larger value instead (d_j > 0), so that a
    classifier's output scale d_j / 2**k is positive and FINN can absorb it into TopK.

    A column with a single value gets an all-zero mask and d_j = u_j (or 1 if u_j = 0).
    Raises UserError naming the node when a column has more than two values.
    """
    mw, mh = w.shape
    u = np.empty(mh)
    d = np.empty(mh)
    mask = np.zeros((mw, mh), dtype=np.int64)
    for j in range(mh):
        vals, counts = np.unique(w[:, j], return_counts=True)
        if len(vals) > 2:
            raise UserError(f"node '{node_name}' (MatMul) has {len(vals)} distinct weights in column {j}; a sparse "
                            "XNOR-popcount MVAU needs binary {alpha, beta} weights (pruned +-1 layers are ternary)")
        if len(vals) == 1:
            u[j] = vals[0]
            d[j] = abs(vals[0]) if vals[0] != 0 else 1.0
            continue
        maj = 0 if positive or counts[0] == counts[1] else int(np.argmax(counts))
        u[j], v = vals[maj], vals[1 - maj]
        d[j] = v - u[j]
        mask[:, j] = (w[:, j] == v).astype(np.int64)
    return u, mask, d


def exact_alpha_nums(u: np.ndarray, d: np.ndarray, node_name: str, max_shift: int = 16) -> tuple[np.ndarray, int]:
    """R_j and k with R_j / 2**k == u_j / d_j exactly (rational arithmetic on the float values)."""
    rhos = [Fraction(float(a)) / Fraction(float(b)) for a, b in zip(u, d)]
    k = 0
    for j, rho in enumerate(rhos):
        den = rho.denominator
        if den & (den - 1):
            raise UserError(f"node '{node_name}': alpha/(beta-alpha) = {float(rho):.6g} of neuron {j} is not a "
                            "fixed-point value R/2**k; export the checkpoint with `sbnn export` (it fixes the ratio)")
        k = max(k, den.bit_length() - 1)
    if k > max_shift:
        raise UserError(f"node '{node_name}': alpha/(beta-alpha) needs {k} fraction bits, more than {max_shift}; "
                        "re-export with a smaller --frac-bits")
    r = np.array([int(rho * (1 << k)) for rho in rhos], dtype=np.int64)
    return r, k


def integer_thresholds(t: np.ndarray, d: np.ndarray, const: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``y_j >= T_j`` with ``y_j = (d_j / 2**k)(2 acc_j - const_j)`` into ``(acc_j >= T'_j) xor inv_j``.

    Exact rational arithmetic on the float values: d > 0: acc >= ceil((2**k T/d + const)/2);
    d < 0: not (acc >= floor((2**k T/d + const)/2) + 1).
    """
    mh = len(d)
    tt = np.empty(mh, dtype=np.int64)
    inv = np.zeros(mh, dtype=np.int64)
    for j in range(mh):
        x = (Fraction(float(t[j])) * (1 << k) / Fraction(float(d[j])) + int(const[j])) / 2
        if d[j] > 0:
            tt[j] = -((-x.numerator) // x.denominator)  # ceil
        else:
            tt[j] = x.numerator // x.denominator + 1    # floor + 1
            inv[j] = 1
    return tt, inv


def _is_bipolar_mt(model, node) -> bool:
    if node is None or node.op_type != "MultiThreshold":
        return False
    inst = getCustomOp(node)
    return inst.get_nodeattr("out_dtype") == "BIPOLAR"


def _make_mt_binary(model, node) -> None:
    """A bipolar MultiThreshold ({-1,+1}) -> binary ({0,1}): the bits the sparse MVAU consumes."""
    inst = getCustomOp(node)
    inst.set_nodeattr("out_scale", 1.0)
    inst.set_nodeattr("out_bias", 0.0)
    inst.set_nodeattr("out_dtype", "BINARY")
    model.set_tensor_datatype(node.output[0], DataType["BINARY"])


class InferSparseXnorMVAU(Transformation):
    """Binary-input MatMul with two-valued weight columns (+ bipolar MultiThreshold) -> SparseXnorMVAU.

    One node per apply (FINN style; ``model.transform`` repeats until nothing changes), in
    graph order. Per column j the mask marks the minority value v_j, u_j is the other one,
    ``d_j = v_j - u_j`` and ``R_j / 2**k = u_j / d_j`` must be exact. Then

        y_j = (d_j / 2**k) (2 acc_j - (2**k c_j + R_j MW))

    A following bipolar MultiThreshold ``y_j >= T_j`` becomes an integer threshold and an
    inversion bit (exact rational arithmetic); otherwise the node is ``noActivation`` and a
    Mul by ``d_j / 2**k`` restores y (FINN absorbs it into TopK where it can).
    """

    def __init__(self, weight_mode: str = "baked"):
        super().__init__()
        self.weight_mode = weight_mode

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "MatMul":
                continue
            x, wname, y = node.input[0], node.input[1], node.output[0]
            w = model.get_initializer(wname)
            idt = model.get_tensor_datatype(x)
            if w is None or idt not in (DataType["BIPOLAR"], DataType["BINARY"]):
                continue
            producer = model.find_producer(x)
            if idt == DataType["BINARY"] and (producer is None or producer.op_type != OP_TYPE):
                if not (producer is not None and producer.op_type == "MultiThreshold"):
                    raise UserError(f"node '{node.name}' (MatMul) takes 0/1 inputs that are not activation bits of a "
                                    "binary layer; a sparse XNOR-popcount MVAU needs bipolar (+-1) activations")
            if idt == DataType["BIPOLAR"]:
                if not _is_bipolar_mt(model, producer):
                    raise UserError(f"node '{node.name}' (MatMul) has bipolar inputs that no MultiThreshold produces "
                                    f"(producer: {producer.op_type if producer else 'graph input'}); cannot turn "
                                    "them into activation bits")
            w = np.asarray(w, dtype=np.float64)
            if w.ndim != 2:
                raise UserError(f"node '{node.name}' (MatMul) has a {w.ndim}-D weight; expected (MW, MH)")
            mw, mh = w.shape
            consumers = model.find_consumers(y)
            mt = consumers[0] if len(consumers) == 1 and consumers[0].op_type == "MultiThreshold" else None
            u, mask, d = column_levels(w, node.name, positive=mt is None)
            r, k = exact_alpha_nums(u, d, node.name)
            const = (mask.sum(axis=0) << k) + r * mw
            in_shape = model.get_tensor_shape(x)
            nvec = list(in_shape[:-1])
            lo, hi = acc_range(mask, r, k)
            new_nodes = []
            if mt is not None:
                if not _is_bipolar_mt(model, mt):
                    raise UserError(f"node '{mt.name}' (MultiThreshold) after binary layer '{node.name}' is not a "
                                    "sign (bipolar) activation; sparse MVAUs support +-1 activations only")
                t = np.asarray(model.get_initializer(mt.input[1]), dtype=np.float64)
                if t.shape[-1] != 1:
                    raise UserError(f"node '{mt.name}' (MultiThreshold) has {t.shape[-1]} thresholds per channel; "
                                    "a sign activation has one")
                t = np.broadcast_to(t.reshape(-1), (mh,))
                tt, inv = integer_thresholds(t, d, const, k)
                tt = np.clip(tt, lo, hi + 1)
                out = mt.output[0]
                new_nodes.append(make_sparse_xnor_mvau_node(
                    node.name + "_sparse", x, out, mask, r, k, tt, inv, "BINARY", nvec,
                    weight_mode=self.weight_mode))
                out_dt = DataType["BINARY"]
            else:
                olo = int((2 * lo - const).min())
                ohi = int((2 * hi - const).max())
                out_dt = int_datatype_for(olo, ohi)
                if out_dt in (DataType["BIPOLAR"], DataType["BINARY"]):
                    out_dt = DataType["INT2"]
                factor = d / 2.0**k
                scalar = bool(np.all(factor == factor[0]))
                acc_out = y if scalar and factor[0] == 1.0 else model.make_new_valueinfo_name()
                new_nodes.append(make_sparse_xnor_mvau_node(
                    node.name + "_sparse", x, acc_out, mask, r, k, None, None, out_dt.name, nvec,
                    weight_mode=self.weight_mode))
                if acc_out != y:
                    fac = np.asarray(factor[:1] if scalar else factor, dtype=np.float32)
                    if not scalar:
                        fac = fac.reshape((1,) * (len(in_shape) - 1) + (mh,))
                    fname = model.make_new_valueinfo_name()
                    model.set_initializer(fname, fac)
                    new_nodes.append(helper.make_node("Mul", [acc_out, fname], [y], name=node.name + "_scale"))
                    model.set_tensor_shape(acc_out, list(nvec) + [mh])
            # the input becomes activation bits
            if idt == DataType["BIPOLAR"]:
                for c in model.find_consumers(x):
                    if c.op_type != "MatMul" or model.get_initializer(c.input[1]) is None:
                        raise UserError(f"activation '{x}' feeds node '{c.name}' ({c.op_type}) besides binary "
                                        "layers; cannot turn it into activation bits")
                _make_mt_binary(model, producer)
            model.set_tensor_datatype(x, DataType["BINARY"])
            for i, nn_ in enumerate(new_nodes):
                graph.node.insert(idx + i, nn_)
            graph.node.remove(node)
            if mt is not None:
                graph.node.remove(mt)
                model.set_tensor_datatype(mt.output[0], out_dt)
            else:
                model.set_tensor_datatype(acc_out, out_dt)
            return model, True
        return model, False
