"""Per-layer table of a compiled graph: shape, folding, sparsity, estimated cycles and resources.

The columns come from each node's kernel (``sbnn.hls.ops``): ``Kernel.layer_row``
for shape and folding, ``Kernel.cycles`` and ``Kernel.cost_model`` for the
estimates. ``lut_trusted`` says whether the LUT model is close enough to
synthesis for the early fit check.
"""

from __future__ import annotations

from finn.util.fpgadataflow import is_fpgadataflow_node
from qonnx.custom_op.registry import getCustomOp

from sbnn.hls import ops


def layer_table(model, fpga_part: str) -> list[dict]:
    rows = []
    for node in model.graph.node:
        if not is_fpgadataflow_node(node):
            continue
        kernel = ops.kernel_for(node)
        if kernel is not None and not kernel.in_layer_table:
            continue
        inst = getCustomOp(node)
        row = {"name": node.name, "op": node.op_type}
        if kernel is None:   # a FINN layer without a kernel: the stitcher will name it; the table still shows it
            row.update(MW=None, MH=None, PE=None, SIMD=None, sparsity=None)
            row["cycles"] = int(inst.get_exp_cycles())
            row["lut"], row["lut_trusted"] = None, False
        else:
            row.update(kernel.layer_row(inst))
            row["cycles"] = kernel.cycles(inst)
            cost = kernel.cost_model(inst, fpga_part)
            row["lut"], row["lut_trusted"] = cost["LUT"], bool(cost["trusted"])
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("layer", "op", "MW", "MH", "PE", "SIMD", "weights", "sparsity", "est. cycles", "est. LUT")
    body = []
    for r in rows:
        sp = "" if r.get("sparsity") is None else f"{r['sparsity']:.3f}"
        body.append((r["name"], r["op"], *("" if r.get(k) is None else str(r[k]) for k in ("MW", "MH", "PE", "SIMD")),
                     r.get("weight_mode") or "", sp, str(r["cycles"]), "" if r.get("lut") is None else str(r["lut"])))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 or i == 6 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    total = sum(r["lut"] or 0 for r in rows)
    out.append(f"max cycles/frame {max((r['cycles'] for r in rows), default=0)}, total est. LUT {total}")
    return "\n".join(out)
