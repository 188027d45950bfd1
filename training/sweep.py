"""Accuracy versus sparsity: {alpha, beta} vs {0, beta} vs +-1 with magnitude pruning.

Every point (scheme, EC, seed) is a full ``sbnn train`` run in its own folder
under the sweep directory; a finished run (metrics.json present, same config)
is reused, so an interrupted sweep picks up where it stopped. Points run here,
in a process pool or as Ray tasks (:mod:`.sweep_exec`). Outputs: ``sweep.csv``
(mean and std over the seeds), ``sweep_runs.csv`` (every run), ``sweep.md``
(the table for the README) and ``sweep.png``. With ``hardware`` every point is also compiled at one fixed
folding and costed (:mod:`.sweep_hw`): extra columns in the CSVs, ``sweep_hw.md`` and ``sweep_cost.png``
(:mod:`.sweep_cost`).
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from matplotlib.figure import Figure
from tqdm import tqdm

from sbnn.artifacts import check_output_dir
from sbnn.errors import UserError
from sbnn.flow.config import load_folding

from .config import TrainConfig
from .device import resolve_device
from .sweep_cost import cost_table, plot_cost
from .sweep_exec import ExecutorConfig, Point, check_ray_address, run_points
from .sweep_hw import HW_COLUMNS, check_hw_out

SCHEMES = {
    "alpha-beta": "{α, β} closed form",
    "alpha-beta-learned": "{α, β} learned τ, φ",
    "zero-beta": "{0, β} closed form",
    "bipolar-pruned": "±1 + magnitude pruning",
}
BASELINE = "bipolar-dense"


SPARSIFY_END = 0.5  # every sparse scheme reaches its target halfway through training
# The reference code's (EC, gamma) grid for the learned tau/phi domain (CIFAR-10, ResNet-18). Short runs may
# stop above their budget with these: the achieved EC is reported, and `sbnn sweep --gamma G` sets one strength
# for every point instead (0.3 meets the budget within 10-50 SFC epochs).
REFERENCE_GAMMA = {0.5: 0.0, 0.25: 0.02, 0.1: 0.04, 0.05: 0.07, 0.04: 0.07, 0.03: 0.08, 0.02: 0.08, 0.01: 0.10}


def learned_gamma(ec: float, gamma: float | None = None) -> float:
    """The EC penalty strength of a learned point: ``gamma`` when given (0 at EC >= 0.5, where no budget binds),
    else the reference grid's value at the nearest grid EC (on a log scale)."""
    if ec >= 0.5:
        return 0.0
    if gamma is not None:
        return gamma
    nearest = min(REFERENCE_GAMMA, key=lambda grid_ec: abs(math.log(grid_ec / ec)))
    return REFERENCE_GAMMA[nearest]


def run_config(base: TrainConfig, scheme: str, ec: float | None, gamma: float | None = None) -> TrainConfig:
    """The training config of one sweep point. For pruned +-1, EC = share of weights kept.

    All sparse schemes get the same gradual schedule (cubic, done at half of
    training): the closed-form domains lower their EC from 0.5, pruning raises
    its pruned share from 0. The classifier stays dense +-1 in every scheme.
    A ``base.block`` shapes the masks of the {alpha, beta} and {0, beta} schemes; the +-1 points stay
    element-wise (magnitude pruning has no block variant).
    """
    if scheme == BASELINE:
        return replace(base, domain="bipolar", ec=None, prune="none", prune_target=0.0, ec_ramp_end=0.0, block=None)
    if scheme == "bipolar-pruned":
        return replace(base, domain="bipolar", ec=None, prune="layer", prune_target=1.0 - ec, prune_start=0.0,
                       prune_end=SPARSIFY_END, ec_ramp_end=0.0, block=None)
    if scheme == "alpha-beta-learned":
        # The budget is a penalty, not a constraint: the achieved EC is reported, not forced.
        return replace(base, domain=scheme, ec=ec, gamma=learned_gamma(ec, gamma), prune="none",
                       prune_target=0.0, ec_ramp_end=0.0)
    return replace(base, domain=scheme, ec=ec, prune="none", prune_target=0.0, ec_ramp_end=SPARSIFY_END)


def connections(metrics: dict, scheme: str) -> float:
    """Achieved share of the sparsified (hidden) layers' weights that cost hardware: at beta, or kept."""
    hidden = metrics["layers"][:-1] if metrics["config"].get("dense_classifier", True) else metrics["layers"]
    n = sum(layer["weights"] for layer in hidden)
    if scheme == "bipolar-pruned":
        return sum(layer["weights"] * (1 - layer["pruned"]) for layer in hidden) / n
    return sum(layer["weights"] * layer["connections"] for layer in hidden) / n


def point_name(scheme: str, ec: float | None, seed: int) -> str:
    """The folder of one run; seed 0 keeps the one-seed sweep's names, so its runs are reused."""
    name = scheme if ec is None else f"{scheme}_ec{ec:g}"
    return name if seed == 0 else f"{name}_seed{seed}"


def sweep_points(base: TrainConfig, ecs: list[float], seeds: list[int], out: Path,
                 gamma: float | None = None, hardware: bool = False,
                 hw_folding: Path | None = None) -> list[tuple[str, float | None, Point]]:
    """``(scheme, ec, point)`` for the baseline and every (scheme, EC), for every seed."""
    grid = [(BASELINE, None)] + [(s, ec) for s in SCHEMES for ec in ecs]
    return [(scheme, ec, Point(point_name(scheme, ec, seed), run_config(replace(base, seed=seed), scheme, ec, gamma),
                               out / point_name(scheme, ec, seed), hardware, hw_folding))
            for scheme, ec in grid for seed in seeds]


def _check_axes(ecs: list[float], seeds: list[int]) -> None:
    if not ecs:
        raise UserError("--ecs lists no EC value; pass comma-separated values in (0, 1), e.g. --ecs 0.5,0.1")
    for ec in ecs:
        if not 0.0 < ec < 1.0:
            raise UserError(f"sweep EC values must be in (0, 1), got {ec}")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds must list distinct seeds >= 0, e.g. --seeds 0,1,2 (got {seeds})")


def sweep(base: TrainConfig, ecs: list[float], out_dir: str | Path, *, data_dir=None, progress=True,
          jobs: int = 1, device: str = "auto", seeds: list[int] | None = None,
          executor: ExecutorConfig | None = None, gamma: float | None = None, hardware: bool = False,
          hw_folding: str | Path | None = None) -> list[dict]:
    """Run the baseline and every (scheme, EC) point for every seed; write csv, markdown table and plot.

    ``jobs > 1`` trains that many points at once in worker processes, the machine's cores split between
    them (small MLPs use many cores poorly, so this finishes a sweep sooner; per-epoch times are then those
    of a shared machine, see bench/train_speed.py for idle figures). ``executor`` (:mod:`.sweep_exec`) runs
    the points on Ray instead. ``seeds`` (default: ``base.seed``) repeats every point; the table then gives
    mean ± std over the seeds. ``gamma`` replaces the reference (EC, gamma) grid of the learned points.
    ``hardware``: compile and cost every point at the folding of ``hw_folding`` (an ``sbnn compile --folding``
    file; default :func:`.sweep_hw.fixed_folding`) in the same worker as its training.
    """
    seeds = [base.seed] if seeds is None else seeds
    _check_axes(ecs, seeds)
    ex = executor or ExecutorConfig(jobs=jobs)
    if not (ex.kind == "ray" and device.startswith("cuda")):   # a Ray cluster's GPUs need not be on this machine
        resolve_device(device)   # a bad --device stops before any point is trained
    check_ray_address(ex)
    out = Path(out_dir)
    check_output_dir(out, "--out")
    if hardware:
        check_hw_out(out)
    if hw_folding is not None:
        if not hardware:
            raise UserError("--hw-folding needs --hardware")
        hw_folding = Path(hw_folding).resolve()
        if not hw_folding.is_file():
            raise UserError(f"--hw-folding {hw_folding}: no such file; pass a folding JSON as for `sbnn compile "
                            "--folding`")
        load_folding(hw_folding)   # a malformed file stops here, before any point trains
    out.mkdir(parents=True, exist_ok=True)
    # absolute: Ray workers do not run in this folder (on a cluster --out must be on a shared file system)
    named = sweep_points(base, ecs, seeds, out.resolve(), gamma, hardware, hw_folding)
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    # disable=None: the bar only on a terminal; either way one line per finished run (_finished)
    bar = tqdm(total=len(named), desc="sweep", unit="run", disable=None if progress else True)
    results: dict[str, dict] = {}
    for point, metrics in run_points([p for _, _, p in named], ex, data_dir=data_dir, progress=progress,
                                     device=device):
        results[point.name] = metrics
        _finished(bar, f"{len(results)}/{len(named)} {point.name}", metrics, progress)
    bar.close()
    runs = [_run_row(scheme, ec, p, results[p.name]) for scheme, ec, p in named]
    rows = aggregate(runs, seeds)
    _write_csv(out / "sweep_runs.csv", runs)
    _write_csv(out / "sweep.csv", rows)
    _write_text(out / "sweep.md", markdown_table(rows, base, ecs))
    plot(rows, out / "sweep.png", base)
    if hardware:
        _write_text(out / "sweep_hw.md", cost_table(rows, base, ecs))
        plot_cost(rows, out / "sweep_cost.png", base)
    return rows


def _run_row(scheme: str, ec: float | None, point: Point, m: dict) -> dict:
    row = {"scheme": scheme, "ec_target": ec, "seed": point.cfg.seed, "connections": round(connections(m, scheme), 4),
           "test_accuracy": m["test_accuracy"], "epochs": m["epochs"],
           "seconds_per_epoch": round(m["seconds_per_epoch"], 2), "run": point.name}
    if "hardware" in m:
        row.update({k: m["hardware"][k] for k in HW_COLUMNS})
    return row


def aggregate(runs: list[dict], seeds: list[int]) -> list[dict]:
    """One row per (scheme, EC): means over the seeds, the accuracy's sample std (empty for one seed) and the
    difference of the means to the dense baseline's."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["scheme"], r["ec_target"]), []).append(r)
    rows = []
    for (scheme, ec), rs in groups.items():
        acc = [r["test_accuracy"] for r in rs]
        rows.append({"scheme": scheme, "ec_target": ec,
                     "connections": round(statistics.fmean(r["connections"] for r in rs), 4),
                     "test_accuracy": statistics.fmean(acc),
                     "test_accuracy_std": round(statistics.stdev(acc), 4) if len(acc) > 1 else "",
                     "seeds": len(rs), "epochs": rs[0]["epochs"],
                     "seconds_per_epoch": round(statistics.fmean(r["seconds_per_epoch"] for r in rs), 2),
                     "run": rs[0]["run"] if len(rs) == 1 else ",".join(r["run"] for r in rs)})
        if HW_COLUMNS[0] in rs[0]:   # hardware figures: means over the seeds
            rows[-1].update({k: round(statistics.fmean(r[k] for r in rs), 1) for k in HW_COLUMNS})
    base_acc = rows[0]["test_accuracy"]
    for r in rows:
        r["delta_vs_dense"] = round(r["test_accuracy"] - base_acc, 4)
    return rows


def _finished(bar: tqdm, which: str, metrics: dict, progress: bool) -> None:
    """Count a finished run on the bar and give it one line, on a terminal and in a log; ``which``: "k/n name"
    (counted by the caller: a disabled bar counts nothing)."""
    bar.update()
    if progress:
        tqdm.write(f"sweep {which}: test acc {metrics['test_accuracy']:.4f}, "
                   f"{metrics['seconds_per_epoch']:.1f} s/epoch", file=sys.stderr)


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def markdown_table(rows: list[dict], base: TrainConfig, ecs: list[float]) -> str:
    by = {(r["scheme"], r["ec_target"]): r for r in rows}
    dense = by[(BASELINE, None)]
    seeds = f", mean ± std over {dense['seeds']} seeds" if dense["seeds"] > 1 else ""
    lines = [f"{base.model.upper()} on {base.dataset} (full test set, {dense['epochs']} epochs each{seeds}). "
             f"Dense ±1 baseline: **{_accuracy(dense)}**.", "",
             "| EC | " + " | ".join(SCHEMES.values()) + " |",
             "|---|" + "---|" * len(SCHEMES)]
    for ec in ecs:
        cells = []
        for s in SCHEMES:
            r = by[(s, ec)]
            cell = f"{_accuracy(r)} ({100 * r['delta_vs_dense']:+.2f})"
            if abs(r["connections"] - ec) > 0.005:
                cell += f", EC {r['connections']:.3f}"
            cells.append(cell)
        lines.append(f"| {ec:g} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: test accuracy (difference to the dense ±1 baseline, in points), and the achieved EC "
                 "where it differs from the target (the learned domain's budget is a penalty). "
                 "EC = share of the hidden layers' weights that cost hardware (at β, or kept after pruning); "
                 "the classifier stays dense ±1 in every scheme.")
    return "\n".join(lines) + "\n"


def _accuracy(row: dict) -> str:
    std = f" ± {100 * row['test_accuracy_std']:.2f}" if row["seeds"] > 1 else ""
    return f"{100 * row['test_accuracy']:.2f}{std} %"


def plot(rows: list[dict], path: Path, base: TrainConfig) -> None:
    """Accuracy against connections: every scheme on the left, a zoom on the dense baseline's range on the
    right (a collapsing scheme would otherwise flatten the differences that matter)."""
    # A bare Figure renders with Agg without pyplot, so no global backend is switched and nothing
    # needs closing.
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    dense = 100 * next(r for r in rows if r["scheme"] == BASELINE)["test_accuracy"]
    for ax, zoom in zip(axes, (False, True)):
        ax.axhline(dense, color="gray", ls="--", label="±1 dense")
        for s, label in SCHEMES.items():
            pts = sorted((r["connections"], 100 * r["test_accuracy"], 100 * (r["test_accuracy_std"] or 0.0))
                         for r in rows if r["scheme"] == s)
            # error bars: the std over the seeds (none with one seed)
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                        capsize=3, label=label)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("connections (share of weights at β / kept)  →  sparser")
        ax.grid(True, which="both", alpha=0.3)
        if zoom:
            ax.set_ylim(dense - 6.0, dense + 1.5)
            ax.axhspan(dense - 1.5, dense, color="gray", alpha=0.12, label="within 1.5 points")
            ax.set_title("zoom: near the dense baseline")
        else:
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{base.model.upper()}, {base.dataset}: accuracy vs sparsity")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
