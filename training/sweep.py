"""Accuracy versus sparsity: {alpha, beta} vs {0, beta} vs +-1 with magnitude pruning.

Every point is a full ``sbnn train`` run in its own folder under the sweep
directory; a finished run (metrics.json present, same config) is reused, so an
interrupted sweep picks up where it stopped. Outputs: ``sweep.csv``,
``sweep.md`` (the table for the README) and ``sweep.png``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from sbnn.artifacts import check_output_dir
from sbnn.errors import UserError

from .checkpoint import load_checkpoint
from .config import TrainConfig
from .device import resolve_device
from .trainer import CHECKPOINT, METRICS, train

SCHEMES = {
    "alpha-beta": "{α, β} closed form",
    "alpha-beta-learned": "{α, β} learned τ, φ",
    "zero-beta": "{0, β} closed form",
    "bipolar-pruned": "±1 + magnitude pruning",
}
BASELINE = "bipolar-dense"


SPARSIFY_END = 0.5  # every sparse scheme reaches its target halfway through training
LEARNED_GAMMA = 0.3  # EC penalty strength that meets the budget within a short run (the reference used
                     # 0.02-0.10 over hundreds of epochs)


def run_config(base: TrainConfig, scheme: str, ec: float | None) -> TrainConfig:
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
        return replace(base, domain=scheme, ec=ec, gamma=0.0 if ec >= 0.5 else LEARNED_GAMMA, prune="none",
                       prune_target=0.0, ec_ramp_end=0.0)
    return replace(base, domain=scheme, ec=ec, prune="none", prune_target=0.0, ec_ramp_end=SPARSIFY_END)


def _run_or_reuse(cfg: TrainConfig, out: Path, data_dir, progress: bool, device: str = "auto") -> dict:
    metrics_path = out / METRICS
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        if not cfg.differences(metrics.get("config", {})):
            return metrics
    resume = (out / CHECKPOINT).exists()
    if resume:
        stored = load_checkpoint(out / CHECKPOINT)["config"]
        diff = ", ".join(f"{k} {a!r} -> {b!r}" for k, a, b in cfg.differences(stored))
        if diff:
            raise UserError(f"{out} holds a sweep point trained with other settings ({diff}); "
                            "sweep into a new --out directory (nothing was changed)")
    return train(cfg, out, data_dir=data_dir, resume=resume, progress=progress, device=device)


def connections(metrics: dict, scheme: str) -> float:
    """Achieved share of the sparsified (hidden) layers' weights that cost hardware: at beta, or kept."""
    hidden = metrics["layers"][:-1] if metrics["config"].get("dense_classifier", True) else metrics["layers"]
    n = sum(layer["weights"] for layer in hidden)
    if scheme == "bipolar-pruned":
        return sum(layer["weights"] * (1 - layer["pruned"]) for layer in hidden) / n
    return sum(layer["weights"] * layer["connections"] for layer in hidden) / n


def _run_point(cfg: TrainConfig, out: Path, data_dir, progress: bool, threads: int | None,
               device: str = "auto") -> dict:
    """One sweep point; in a worker process ``threads`` caps torch's intra-op threads."""
    if threads:
        torch.set_num_threads(threads)
    return _run_or_reuse(cfg, out, data_dir, progress, device)


def sweep(base: TrainConfig, ecs: list[float], out_dir: str | Path, *, data_dir=None, progress=True,
          jobs: int = 1, device: str = "auto") -> list[dict]:
    """Run the baseline and every (scheme, EC) point; write csv, markdown table and plot.

    ``jobs > 1`` trains that many points at once in worker processes, the
    machine's cores split between them (small MLPs use many cores poorly, so
    this finishes a sweep sooner; per-epoch times are then those of a shared
    machine, see bench/train_speed.py for idle figures).
    """
    if not ecs:
        raise UserError("--ecs lists no EC value; pass comma-separated values in (0, 1), e.g. --ecs 0.5,0.1")
    for ec in ecs:
        if not 0.0 < ec < 1.0:
            raise UserError(f"sweep EC values must be in (0, 1), got {ec}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    resolve_device(device)   # a bad --device stops before any point is trained
    out = Path(out_dir)
    check_output_dir(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    points = [(BASELINE, None)] + [(s, ec) for s in SCHEMES for ec in ecs]
    named = [(scheme, ec, run_config(base, scheme, ec), scheme if ec is None else f"{scheme}_ec{ec:g}")
             for scheme, ec in points]
    # disable=None: the bar only on a terminal; either way one line per finished run (_finished)
    bar = tqdm(total=len(named), desc="sweep", unit="run", disable=None if progress else True)
    results: dict[str, dict] = {}
    if jobs == 1:
        for _, _, cfg, name in named:
            results[name] = _run_or_reuse(cfg, out / name, data_dir, progress, device)
            _finished(bar, f"{len(results)}/{len(named)} {name}", results[name], progress)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(_run_point, cfg, out / name, data_dir, False, threads, device): name
                    for _, _, cfg, name in named}
            try:
                for fut in as_completed(futs):
                    name = futs[fut]
                    results[name] = fut.result()
                    _finished(bar, f"{len(results)}/{len(named)} {name}", results[name], progress)
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
    bar.close()
    rows = []
    for scheme, ec, _, name in named:
        m = results[name]
        rows.append({"scheme": scheme, "ec_target": ec, "connections": round(connections(m, scheme), 4),
                     "test_accuracy": m["test_accuracy"], "epochs": m["epochs"],
                     "seconds_per_epoch": round(m["seconds_per_epoch"], 2), "run": name})
    base_acc = rows[0]["test_accuracy"]
    for r in rows:
        r["delta_vs_dense"] = round(r["test_accuracy"] - base_acc, 4)
    _write_csv(out / "sweep.csv", rows)
    (out / "sweep.md").write_text(markdown_table(rows, base, ecs))
    plot(rows, out / "sweep.png", base)
    return rows


def _finished(bar: tqdm, which: str, metrics: dict, progress: bool) -> None:
    """Count a finished run on the bar and give it one line, on a terminal and in a log; ``which``: "k/n name"
    (counted by the caller: a disabled bar counts nothing)."""
    bar.update()
    if progress:
        tqdm.write(f"sweep {which}: test acc {metrics['test_accuracy']:.4f}, "
                   f"{metrics['seconds_per_epoch']:.1f} s/epoch", file=sys.stderr)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def markdown_table(rows: list[dict], base: TrainConfig, ecs: list[float]) -> str:
    by = {(r["scheme"], r["ec_target"]): r for r in rows}
    dense = by[(BASELINE, None)]
    lines = [f"{base.model.upper()} on {base.dataset} (full test set, {dense['epochs']} epochs each). "
             f"Dense ±1 baseline: **{100 * dense['test_accuracy']:.2f} %**.", "",
             "| EC | " + " | ".join(SCHEMES.values()) + " |",
             "|---|" + "---|" * len(SCHEMES)]
    for ec in ecs:
        cells = []
        for s in SCHEMES:
            r = by[(s, ec)]
            cell = f"{100 * r['test_accuracy']:.2f} % ({100 * r['delta_vs_dense']:+.2f})"
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
            pts = sorted((r["connections"], 100 * r["test_accuracy"]) for r in rows if r["scheme"] == s)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
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
