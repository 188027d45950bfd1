"""Hardware cost of a sweep point (``sbnn sweep --hardware``): export, compile at one fixed folding, cost model.

Every point is compiled at the same folding, so cycles and LUTs compare across schemes and EC: a folding
file the user gives (``--hw-folding``, the format of ``sbnn compile --folding``), or the default rule
:func:`fixed_folding` on each binary layer's shape (the same shapes in every point, so the same folding).
The figures are the cost model's (``hls/sparse_mvau/estimates.py``), pure functions of each compiled
node's mask (and a ternary layer's signs) and the folding; nothing is simulated or synthesized. Both
weight modes are costed at that folding, whatever mode the compile chose:

* ``lut_baked`` / ``lut_memory``: the sparse MVAUs' LUT estimates;
* ``bram18_memory``: memory mode's weight-ROM RAMB18s; ``weight_bits_memory``: the weight bits memory
  mode stores (a PE x SIMD mask word per non-zero block, and a sign word beside it in ternary layers;
  a dense +-1 layer stores all MW x MH bits);
* ``cycles_per_frame``: the slowest layer's cycles at the folding (both weight modes run the same
  schedule of non-zero blocks, so one figure).

Totals are over the sparse MVAUs (the weight layers, classifier included); FINN's input thresholding and
label select are the same in every point and left out. A point's ``hw/hw.json`` is written last
(atomically) and keyed by the checkpoint's and the folding's digests: a rerun reuses it and compiles
nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.artifacts import write_text_atomic
from sbnn.errors import UserError
from sbnn.export.compile import HW_GRAPH, check_build_dir, compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.hls.sparse_mvau.estimates import cycles_per_frame, lut_estimate, memory_bram18, weight_memory_bits
from sbnn.hls.sparse_mvau.op import OP_TYPE

from .trainer import CHECKPOINT, METRICS

HW_DIR = "hw"
HW_JSON = "hw.json"
MAX_PE, MAX_SIMD = 16, 32   # default folding: the largest divisors of MH and MW up to these
HW_COLUMNS = ("lut_baked", "lut_memory", "bram18_memory", "weight_bits_memory", "cycles_per_frame")


def largest_divisor(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def fixed_folding(shapes: list[list[int]]) -> dict:
    """Folding file (``sbnn compile --folding`` format) for binary layers of weight shapes (out, in, ...) in
    graph order: PE = largest divisor of MH <= MAX_PE, SIMD = largest divisor of MW <= MAX_SIMD, baked."""
    fold: dict = {"Defaults": {"weight_mode": "baked"}}
    for i, shape in enumerate(shapes):
        mh, mw = int(shape[0]), int(math.prod(shape[1:]))
        fold[f"{OP_TYPE}_{i}"] = {"PE": largest_divisor(mh, MAX_PE), "SIMD": largest_divisor(mw, MAX_SIMD)}
    return fold


def check_hw_out(out: Path) -> None:
    """Before any training: the compiles go into every point's folder, where ``sbnn compile`` must be
    allowed to build (not inside the source tree outside build/ and runs/)."""
    try:
        check_build_dir(Path(out) / "point" / HW_DIR / "build")
    except UserError:
        raise UserError(f"--hardware compiles every point under --out {out}, which is inside the source tree; "
                        "sweep into runs/ or build/ (or outside the repository) and copy the results") from None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _write_json(path: Path, obj: dict) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1) + "\n")


def layer_costs(node) -> dict:
    """Cost-model figures of one compiled sparse MVAU at its folding, both weight modes."""
    inst = getCustomOp(node)
    cfg = inst.get_config()
    baked, memory = cfg.refolded(cfg.PE, cfg.SIMD, "baked"), cfg.refolded(cfg.PE, cfg.SIMD, "memory")
    vectors = int(np.prod(inst.get_nodeattr("numInputVectors")))
    return {"node": node.name, "MW": cfg.MW, "MH": cfg.MH, "PE": cfg.PE, "SIMD": cfg.SIMD,
            "ternary": cfg.signs is not None, "nnz": int(cfg.mask.sum()),
            "lut_baked": lut_estimate(baked), "lut_memory": lut_estimate(memory),
            "bram18_memory": memory_bram18(memory),
            "weight_bits_memory": weight_memory_bits(cfg.mask, cfg.PE, cfg.SIMD, cfg.signs),
            "cycles_per_frame": cycles_per_frame(cfg) * vectors}


def hw_figures(hw_graph: Path) -> dict:
    """Totals (module docstring) and the per-layer figures of a compiled graph."""
    model = ModelWrapper(str(hw_graph))
    layers = [layer_costs(n) for n in model.graph.node if n.op_type == OP_TYPE]
    totals = {k: sum(layer[k] for layer in layers) for k in HW_COLUMNS if k != "cycles_per_frame"}
    totals["lut_baked"], totals["lut_memory"] = round(totals["lut_baked"]), round(totals["lut_memory"])
    totals["cycles_per_frame"] = max(layer["cycles_per_frame"] for layer in layers)
    return {**totals, "layers": layers}


def hardware_point(run_dir: Path, folding_file: Path | None) -> dict:
    """Export and compile one trained point at the fixed folding and cost it; reused when ``hw/hw.json``
    holds the same checkpoint and folding. ``folding_file`` None: :func:`fixed_folding` of the point's layers."""
    run_dir = Path(run_dir)
    hw = run_dir / HW_DIR
    hw.mkdir(exist_ok=True)
    if folding_file is None:
        shapes = [layer["shape"] for layer in json.loads((run_dir / METRICS).read_text())["layers"]]
        folding_file = hw / "folding.json"
        fold = fixed_folding(shapes)
        if not folding_file.exists() or json.loads(folding_file.read_text()) != fold:
            _write_json(folding_file, fold)
    key = {"checkpoint": _digest(run_dir / CHECKPOINT), "folding": _digest(Path(folding_file))}
    summary = hw / HW_JSON
    if summary.exists():
        done = json.loads(summary.read_text())
        if done.get("key") == key:
            return done
    t0 = time.perf_counter()
    onnx_path = export_checkpoint(run_dir / CHECKPOINT, hw / "model.qonnx.onnx", evaluate=False)["model"]
    t1 = time.perf_counter()
    compile_model(onnx_path, hw / "build", folding=str(folding_file), weight_mode="baked")
    t2 = time.perf_counter()
    result = {"key": key, **hw_figures(hw / "build" / HW_GRAPH), "folding_file": str(folding_file),
              "export_s": round(t1 - t0, 2), "compile_s": round(t2 - t1, 2)}
    _write_json(summary, result)
    return result
