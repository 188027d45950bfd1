"""Accuracy against hardware cost for ``sbnn sweep --hardware``: ``sweep_hw.md`` and ``sweep_cost.png``.

Rows are :func:`.sweep.aggregate`'s (means over the seeds) with the :data:`.sweep_hw.HW_COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .config import TrainConfig

BASELINE = "bipolar-dense"
LABELS = {BASELINE: "±1 dense", "alpha-beta": "{α, β} closed form", "alpha-beta-learned": "{α, β} learned τ, φ",
          "zero-beta": "{0, β} closed form", "bipolar-pruned": "±1 pruned (ternary: mask + sign)"}


def cost_table(rows: list[dict], base: TrainConfig, ecs: list[float]) -> str:
    """One line per scheme and EC: accuracy and the cost model's figures at the sweep's fixed folding."""
    seeds = rows[0]["seeds"]
    lines = [f"{base.model.upper()} on {base.dataset}: hardware cost at one fixed folding (cost model, "
             f"{'mean over ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'}).", "",
             "| scheme | EC | test acc. | LUT baked | LUT memory | BRAM18 memory | weight bits memory | cycles/frame |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        std = f" ± {100 * r['test_accuracy_std']:.2f}" if r["seeds"] > 1 else ""
        ec = "dense" if r["ec_target"] is None else f"{r['ec_target']:g}"
        lines.append(f"| {LABELS[r['scheme']]} | {ec} | {100 * r['test_accuracy']:.2f}{std} % | {r['lut_baked']:.0f} | "
                     f"{r['lut_memory']:.0f} | {r['bram18_memory']:.0f} | {r['weight_bits_memory']:.0f} | "
                     f"{r['cycles_per_frame']:.0f} |")
    lines += ["", "LUTs and RAMB18s of the sparse MVAUs (classifier included; FINN's input thresholding and label "
              "select are the same in every point and left out), estimated by `hls/sparse_mvau/estimates.py` from "
              "each compiled mask at the same PE/SIMD in both weight modes. Weight bits: what memory mode stores, "
              "a PE×SIMD mask word per non-zero block plus a sign word in ternary layers (dense ±1: every weight "
              "bit). Cycles/frame: the slowest layer, the same in both modes (only non-zero blocks are visited)."]
    return "\n".join(lines) + "\n"


def plot_cost(rows: list[dict], path: Path, base: TrainConfig) -> None:
    """Accuracy (seed std as error bars) against baked LUTs (left) and memory mode's weight bits (right)."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, key, xlabel in zip(axes, ("lut_baked", "weight_bits_memory"),
                               ("LUTs, baked weights (cost model)", "weight bits, memory mode (mask + sign)")):
        for scheme, label in LABELS.items():
            pts = sorted((r[key], 100 * r["test_accuracy"], 100 * (r["test_accuracy_std"] or 0.0))
                         for r in rows if r["scheme"] == scheme)
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts],
                            marker="*" if scheme == BASELINE else "o", ms=10 if scheme == BASELINE else 5,
                            capsize=3, label=label, ls="none" if scheme == BASELINE else "-")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title(f"{base.model.upper()}, {base.dataset}: accuracy vs LUTs")
    axes[1].set_title("accuracy vs weight memory")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
