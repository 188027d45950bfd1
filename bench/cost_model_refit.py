"""Refit the sparse MVAU's LUT/FF coefficients to a fixed point: fit, let the folder pick, synthesise, repeat.

The folder's picks follow the coefficients, so a fit on the picks of the coefficients before sends the folder to
folds the fit has not seen (one such round left 2 of 171 LUT figures outside +-25 %). This script iterates:

1. fit LUT_COEF / FF_COEF per weight mode (``cost_model.minimax_fit``: smallest worst-case relative error, the
   default-tier test's sample within +-20 %) on the union of every binary-input point measured so far;
2. set them in this process and take the cost bench's points for every model (``cost_model.plan_of``);
3. synthesise (Yosys, cached by RTL hash) the points not in the union; points over ``--synth-timeout`` are left
   out, as the bench leaves them out;

until a round finds no new point: every pick of the final coefficients has a Yosys figure. The union is kept in
bench/results/cost_model_union.json (rows: model, layer, mode, PE, SIMD, nnz, Yosys LUT/FF; the trained models
are seeded, so a row names its configuration) with the rounds and the final coefficients, for pasting into
sbnn/hls/sparse_mvau/estimates.py. ``--add`` joins the points of earlier ``cost_model.json`` runs to it.
Then run ``bench/cost_model.py`` to measure the new picks.

Usage: python bench/cost_model_refit.py [--models cnv,tfc,sfc,lfc,sample,mlp,default] [--rounds 6]
       [--add RUN.json ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import cost_model as bench   # bench/: the cost bench's models, picks, Yosys runs and fit

from sbnn.hls.sparse_mvau import estimates
from sbnn.hls.sparse_mvau.estimates import ff_features, lut_features

UNION = bench.RESULTS / "cost_model_union.json"
ROW_FIELDS = ("model", "layer", "mode", "PE", "SIMD", "nnz", "yosys_LUT", "yosys_FF")   # a union row
FEATURES = {"LUT": (lut_features, estimates.LUT_COEF), "FF": (ff_features, estimates.FF_COEF)}


def row_key(r: dict) -> tuple:
    return r["model"], r["layer"], r["mode"], r["PE"], r["SIMD"], r["nnz"]


def load_union(paths: list[Path]) -> dict:
    """key -> row, from the union file and any cost_model.json runs (a later file's row wins)."""
    rows = {}
    for p in paths:
        if p.is_file():
            for r in json.loads(p.read_text())["points"]:
                rows[row_key(r)] = {k: r[k] for k in ROW_FIELDS}
    return rows


def configs_of(rows: dict, plans: dict) -> list[tuple]:
    """(config at the row's folding, row) for the binary-input rows whose layer is in this run's models and whose
    kept weights match (a row of another model version is left out)."""
    out = []
    for r in rows.values():
        cfg = plans.get(r["model"], {}).get(r["layer"])
        if cfg is None or cfg.integer_input:
            continue
        c = cfg.refolded(r["PE"], r["SIMD"], r["mode"])
        if int(c.mask.sum()) == r["nnz"]:
            out.append((c, r))
    return out


def fit(pairs: list[tuple]) -> dict:
    """Fit and set LUT_COEF / FF_COEF in this process; returns {what: {mode: [worst, points]}}."""
    worst = {}
    for what, (featf, coef) in FEATURES.items():
        worst[what] = {}
        for mode in ("baked", "memory"):
            sel = [(c, r) for c, r in pairs if c.weight_mode == mode]
            fitted, w = bench.minimax_fit([featf(c) for c, _ in sel], [r[f"yosys_{what}"] for _, r in sel],
                                          [r["model"] == "sample" for _, r in sel])
            coef[mode] = fitted
            worst[what][mode] = [round(w, 3), len(sel)]
            bench.log(f"fit {what}[{mode}]: {len(sel)} points, worst +-{w:.3f}")
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cnv,tfc,sfc,lfc,sample,mlp,default",
                    help="as bench/cost_model.py's (default: `make build`'s layers, when it has run)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--add", type=Path, nargs="*", default=[], help="earlier cost_model.json runs to join")
    ap.add_argument("--synth-timeout", type=float, default=400)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    rows = load_union([UNION, *args.add])
    bench.log(f"{len(rows)} points in the union")
    model_cfgs = {name: cfgs for name in models if (cfgs := bench.model_configs(name)) is not None}
    configs = {name: {cfg.name: cfg for cfg in cfgs} for name, cfgs in model_cfgs.items()}
    rounds, skipped, converged = [], set(), False
    for rnd in range(args.rounds):
        worst = fit(configs_of(rows, configs))
        new = []
        for name, cfgs in model_cfgs.items():
            for cfg, pts in bench.plan_of(name, cfgs):   # the picks under the coefficients just fitted
                for pt in pts:
                    c = cfg.refolded(pt["PE"], pt["SIMD"], pt["mode"])
                    key = (name, c.name, c.weight_mode, c.PE, c.SIMD, int(c.mask.sum()))
                    if key in rows or key in skipped or c.integer_input:
                        continue
                    r = bench.measure(cfg, pt, args.synth_timeout, {})
                    if r is None:
                        skipped.add(key)
                        bench.log(f"round {rnd}: {key} left out, Yosys over {args.synth_timeout:.0f} s")
                        continue
                    rows[key] = {k: r[k] for k in ROW_FIELDS}
                    new.append(list(key))
                    bench.log(f"round {rnd}: new pick {key}: Yosys {r['yosys_LUT']} LUT, {r['yosys_FF']} FF")
        rounds.append({"points": len(rows), "worst": worst, "new_picks": new})
        if not new:
            converged = True
            break
    out = {"date": datetime.date.today().isoformat(), "converged": converged, "rounds": rounds,
           "coefficients": {"LUT_COEF": estimates.LUT_COEF, "FF_COEF": estimates.FF_COEF},
           "left_out_over_synth_timeout": sorted(list(k) for k in skipped), "points": list(rows.values())}
    UNION.parent.mkdir(exist_ok=True)
    UNION.write_text(json.dumps(out, indent=1) + "\n")
    bench.log(f"{'converged' if converged else 'NOT converged'} after {len(rounds)} rounds; wrote {UNION}")
    print(json.dumps(out["coefficients"], indent=4))
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
