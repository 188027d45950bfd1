"""Per-layer table of a compiled graph: MW, MH, PE, SIMD, sparsity, estimated cycles and LUTs."""

from __future__ import annotations

from qonnx.custom_op.registry import getCustomOp

from .compile import DEFAULT_FPGA_PART

SKIP = ("StreamingFIFO", "StreamingDataWidthConverter")


def layer_table(model, fpga_part: str = DEFAULT_FPGA_PART) -> list[dict]:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    rows = []
    for node in model.graph.node:
        if not is_fpgadataflow_node(node) or node.op_type.startswith(SKIP):
            continue
        inst = getCustomOp(node)
        row = {"name": node.name, "op": node.op_type}
        if node.op_type == "SparseXnorMVAU":
            mask = inst.get_mask()
            row.update(MW=inst.get_nodeattr("MW"), MH=inst.get_nodeattr("MH"), PE=inst.get_nodeattr("PE"),
                       SIMD=inst.get_nodeattr("SIMD"), sparsity=round(inst.sparsity(), 4),
                       nnz=int(mask.sum()), alpha_shift=inst.get_nodeattr("alpha_shift"),
                       noActivation=inst.get_nodeattr("noActivation"),
                       weight_mode=inst.get_nodeattr("weight_mode"))
        else:
            for a in ("MW", "MH", "PE", "SIMD"):
                try:
                    row[a] = inst.get_nodeattr(a)
                except AttributeError:
                    row[a] = None
            if row["MW"] is None:
                try:
                    row["MW"] = row["MH"] = int(inst.get_nodeattr("NumChannels"))
                except AttributeError:
                    try:
                        row["MW"], row["MH"] = int(inst.get_nodeattr("Labels")), int(inst.get_nodeattr("K"))
                    except AttributeError:
                        pass
            row["sparsity"] = None
        row["cycles"] = int(inst.get_exp_cycles())
        try:
            row["lut"] = int(inst.lut_estimation(fpga_part))
        except Exception:  # noqa: BLE001 - some FINN RTL ops have no LUT model
            row["lut"] = None
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("layer", "op", "MW", "MH", "PE", "SIMD", "sparsity", "est. cycles", "est. LUT")
    body = []
    for r in rows:
        sp = "" if r.get("sparsity") is None else f"{r['sparsity']:.3f}"
        body.append((r["name"], r["op"], *("" if r.get(k) is None else str(r[k]) for k in ("MW", "MH", "PE", "SIMD")),
                     sp, str(r["cycles"]), "" if r.get("lut") is None else str(r["lut"])))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    total = sum(r["lut"] or 0 for r in rows)
    out.append(f"max cycles/frame {max((r['cycles'] for r in rows), default=0)}, total est. LUT {total}")
    return "\n".join(out)
