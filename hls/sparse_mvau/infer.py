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
from sbnn.hls.sparse_mvau.config import signed_width
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
                            "XNOR-popcount MVAU needs binary {alpha, beta} weights or ternary {-c, 0, +c} ones")
        if len(vals) == 1:
            u[j] = vals[0]
            d[j] = abs(vals[0]) if vals[0] != 0 else 1.0
            continue
        maj = 0 if positive or counts[0] == counts[1] else int(np.argmax(counts))
        u[j], v = vals[maj], vals[1 - maj]
        d[j] = v - u[j]
        mask[:, j] = (w[:, j] == v).astype(np.int64)
    return u, mask, d


def is_ternary(w: np.ndarray) -> bool:
    """A pruned +-1 layer: some column holds three values, which must be {-c, 0, +c}."""
    return any(len(np.unique(w[:, j])) > 2 for j in range(w.shape[1]))


def ternary_levels(w: np.ndarray, node_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of a ternary (MW, MH) weight matrix: mask b = (w != 0), sign s = (w > 0), scale c_j > 0.

    Every column must be {-c_j, 0, +c_j} or a subset of it (a column that kept only one sign, or none, is
    the same arithmetic with fewer values); R = 0, k = 0 (reference.py, ternary layers). A column of zeros
    gets c_j = 1 and an empty mask. Raises UserError naming the node and column otherwise.
    """
    mw, mh = w.shape
    c = np.ones(mh)
    for j in range(mh):
        mags = np.unique(np.abs(w[:, j][w[:, j] != 0]))
        if len(mags) > 1:
            raise UserError(f"node '{node_name}' (MatMul) column {j} holds weights of {len(mags)} magnitudes "
                            f"({', '.join(f'{v:g}' for v in mags[:3])}); a sparse XNOR-popcount MVAU needs binary "
                            "{alpha, beta} or ternary {-c, 0, +c} weights per column (export the checkpoint with "
                            "`sbnn export`)")
        if len(mags):
            c[j] = mags[0]
    return (w != 0).astype(np.int64), (w > 0).astype(np.int64), c


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


def integer_thresholds(t: np.ndarray, d: np.ndarray, const: np.ndarray, k: int,
                       acc_mult: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``y_j >= T_j`` with ``y_j = (d_j / 2**k)(m acc_j - const_j)`` into ``(acc_j >= T'_j) xor inv_j``.

    ``m`` (``acc_mult``) is 2 for bipolar inputs and 1 (with const 0) for integer inputs.
    Exact rational arithmetic on the float values: d > 0: acc >= ceil((2**k T/d + const)/m);
    d < 0: not (acc >= floor((2**k T/d + const)/m) + 1).
    """
    mh = len(d)
    tt = np.empty(mh, dtype=np.int64)
    inv = np.zeros(mh, dtype=np.int64)
    for j in range(mh):
        x = (Fraction(float(t[j])) * (1 << k) / Fraction(float(d[j])) + int(const[j])) / acc_mult
        if d[j] > 0:
            tt[j] = -((-x.numerator) // x.denominator)  # ceil
        else:
            tt[j] = x.numerator // x.denominator + 1    # floor + 1
            inv[j] = 1
    return tt, inv


def integer_acc_range(mask: np.ndarray, r: np.ndarray, k: int, in_lo: int, in_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron (min, max) of ``acc_j = sum_i (2**k b_ij + R_j) x_i`` over integer inputs in [in_lo, in_hi]."""
    coef = (np.asarray(mask, dtype=np.int64) << k) + np.asarray(r, dtype=np.int64)[None, :]
    lo = np.minimum(coef * in_lo, coef * in_hi).sum(axis=0)
    hi = np.maximum(coef * in_lo, coef * in_hi).sum(axis=0)
    return lo, hi


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


# Ops that move activation bits around without computing on them (a conv's sliding window, a flatten or reshape, a max-pool:
# max of +-1 values is the OR of their bits). The rewrite looks through them for the layer that makes the bits.
BIT_PATH_OPS = ("Im2Col", "MaxPoolNHWC", "Flatten", "Reshape")


def _check_bit_path_node(model, node) -> None:
    if node.op_type == "Im2Col":
        pads = getCustomOp(node).get_nodeattr("pad_amount")
        if any(int(p) for p in pads):
            raise UserError(f"unsupported layer: node '{node.name}' (Im2Col) zero-pads its input (pads {list(pads)}); "
                            "sbnn's conv layers need padding=0 (bipolar activations have no zero)")


def activation_source(model, tensor: str) -> tuple[object, list[str]]:
    """(node that makes the values of ``tensor``, tensors on the way) through Im2Col / MaxPoolNHWC nodes."""
    path = [tensor]
    producer = model.find_producer(tensor)
    while producer is not None and producer.op_type in BIT_PATH_OPS:
        _check_bit_path_node(model, producer)
        path.append(producer.input[0])
        producer = model.find_producer(producer.input[0])
    return producer, path


def _bits_consumers_ok(model, tensor: str) -> None:
    for c in model.find_consumers(tensor):
        if c.op_type in BIT_PATH_OPS:
            _bits_consumers_ok(model, c.output[0])
        elif c.op_type != "MatMul" or model.get_initializer(c.input[1]) is None:
            raise UserError(f"activation '{tensor}' feeds node '{c.name}' ({c.op_type}) besides binary "
                            "layers; cannot turn it into activation bits")


class InferSparseXnorMVAU(Transformation):
    """Binary- or integer-input MatMul with two-valued weight columns (+ bipolar MultiThreshold) -> SparseXnorMVAU.

    One node per apply (FINN style; ``model.transform`` repeats until nothing changes), in
    graph order. Per column j the mask marks the minority value v_j, u_j is the other one,
    ``d_j = v_j - u_j`` and ``R_j / 2**k = u_j / d_j`` must be exact. With bipolar inputs
    (activation bits a, x = 2a - 1)

        y_j = (d_j / 2**k) (2 acc_j - (2**k c_j + R_j MW)),   acc_j = 2**k popc(a & b_j) + R_j popc(a)

    and with integer inputs x (the first layer of a conv net sees 8-bit pixels)

        y_j = (d_j / 2**k) acc_j,                             acc_j = 2**k sum_{b=1} x + R_j sum x

    A ternary layer (pruned +-1: some column {-c, 0, +c}, ``is_ternary``) gets mask b = (w != 0), signs
    s = (w > 0), R = 0, k = 0 and d_j = c_j: S_j = popc(b_j & XNOR(a, s_j)) and y_j = c_j (2 S_j - c_j)
    (reference.py), the {0, beta} lowering with S redefined. A layer whose columns all have two values
    stays on the binary path above, exactly ({-c, 0} / {0, +c} columns included).

    A following bipolar MultiThreshold ``y_j >= T_j`` becomes an integer threshold and an
    inversion bit (exact rational arithmetic); otherwise the node is ``noActivation`` and a
    Mul by ``d_j / 2**k`` restores y (FINN absorbs it into TopK where it can). The input may
    come through a conv's sliding window (Im2Col) and max-pools (``activation_source``); the
    MatMul then runs once per output pixel (``numInputVectors`` [1, H, W]).
    """

    def __init__(self, weight_mode: str = "baked"):
        super().__init__()
        self.weight_mode = weight_mode

    def _input_kind(self, model, node, x: str, idt) -> tuple[str, object, list[str]]:
        """("bits" | "int", bit-source node, path tensors); raises for inputs no sparse MVAU can take."""
        producer, path = activation_source(model, x)
        if idt in (DataType["BIPOLAR"], DataType["BINARY"]):
            if producer is not None and producer.op_type == OP_TYPE:
                return "bits", producer, path
            if _is_bipolar_mt(model, producer) or (idt == DataType["BINARY"] and producer is not None
                                                   and producer.op_type == "MultiThreshold"):
                return "bits", producer, path
            raise UserError(f"node '{node.name}' (MatMul) has {idt.name.lower()} inputs that no sign activation "
                            f"produces (producer: {producer.op_type if producer else 'graph input'}); cannot turn "
                            "them into activation bits")
        if idt.is_integer() and 2 <= idt.bitwidth() <= 16:
            return "int", producer, path
        return "none", producer, path

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "MatMul":
                continue
            x, wname, y = node.input[0], node.input[1], node.output[0]
            w = model.get_initializer(wname)
            idt = model.get_tensor_datatype(x)
            if w is None:
                continue
            kind, producer, path = self._input_kind(model, node, x, idt)
            if kind == "none":
                continue
            w = np.asarray(w, dtype=np.float64)
            if w.ndim != 2:
                raise UserError(f"node '{node.name}' (MatMul) has a {w.ndim}-D weight; expected (MW, MH)")
            mw, mh = w.shape
            consumers = model.find_consumers(y)
            mt = consumers[0] if len(consumers) == 1 and consumers[0].op_type == "MultiThreshold" else None
            signs = None
            if is_ternary(w):
                if kind != "bits":
                    raise UserError(f"node '{node.name}' (MatMul) is a ternary (pruned +-1) layer on integer "
                                    f"inputs ({idt.name}); sbnn supports ternary layers on activation bits only: "
                                    "train with a 1-bit input or leave the first layer unpruned")
                mask, signs, d = ternary_levels(w, node.name)
                r, k = np.zeros(mh, dtype=np.int64), 0
            else:
                u, mask, d = column_levels(w, node.name, positive=mt is None)
                r, k = exact_alpha_nums(u, d, node.name)
            if kind == "bits":
                const, acc_mult, in_dtype = (mask.sum(axis=0) << k) + r * mw, 2, "BINARY"
                lo, hi = acc_range(mask, r, k)
            else:
                const, acc_mult, in_dtype = np.zeros(mh, dtype=np.int64), 1, idt.name
                lo, hi = integer_acc_range(mask, r, k, int(idt.min()), int(idt.max()))
            in_shape = model.get_tensor_shape(x)
            nvec = list(in_shape[:-1])
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
                tt, inv = integer_thresholds(t, d, const, k, acc_mult)
                tt = np.clip(tt, lo, hi + 1)
                out = mt.output[0]
                new_nodes.append(make_sparse_xnor_mvau_node(
                    node.name + "_sparse", x, out, mask, r, k, tt, inv, "BINARY", nvec,
                    weight_mode=self.weight_mode, input_dtype=in_dtype, signs=signs))
                out_dt = DataType["BINARY"]
            else:
                olo = int((acc_mult * lo - const).min())
                ohi = int((acc_mult * hi - const).max())
                if kind == "int":   # the RTL emits acc as a signed number (config.out_width)
                    out_dt = DataType[f"INT{max(2, signed_width(olo, ohi))}"]
                else:
                    out_dt = int_datatype_for(olo, ohi)
                if out_dt in (DataType["BIPOLAR"], DataType["BINARY"]):
                    out_dt = DataType["INT2"]
                factor = d / 2.0**k
                scalar = bool(np.all(factor == factor[0]))
                acc_out = y if scalar and factor[0] == 1.0 else model.make_new_valueinfo_name()
                new_nodes.append(make_sparse_xnor_mvau_node(
                    node.name + "_sparse", x, acc_out, mask, r, k, None, None, out_dt.name, nvec,
                    weight_mode=self.weight_mode, input_dtype=in_dtype, signs=signs))
                if acc_out != y:
                    fac = np.asarray(factor[:1] if scalar else factor, dtype=np.float32)
                    if not scalar:
                        fac = fac.reshape((1,) * (len(in_shape) - 1) + (mh,))
                    fname = model.make_new_valueinfo_name()
                    model.set_initializer(fname, fac)
                    new_nodes.append(helper.make_node("Mul", [acc_out, fname], [y], name=node.name + "_scale"))
                    model.set_tensor_shape(acc_out, list(nvec) + [mh])
            if kind == "bits":
                # the input (and every tensor back to the layer that makes it) becomes activation bits
                if producer.op_type == "MultiThreshold":
                    _bits_consumers_ok(model, producer.output[0])
                    _make_mt_binary(model, producer)
                for tensor in path:
                    model.set_tensor_datatype(tensor, DataType["BINARY"])
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
