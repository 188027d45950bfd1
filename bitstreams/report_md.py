"""The human-readable build report: ``report.md`` with one PNG of per-layer plots.

It says, in the order a user asks: did it verify (bit-exact on how many real
frames, accuracy in PyTorch / QONNX / rtlsim), how fast (cycles per frame,
latency, frames per second at the board clock), how big (resources against
the part, per layer), and what to do next (Vivado, the deploy package).
The figure shows per layer what the table lists, because the bottleneck layer
and the LUT hog are easier to see than to read.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure   # the object API: no pyplot, no global backend switch for the caller

from sbnn.artifacts import write_text_atomic
from sbnn.hls import ops
from sbnn.hls.resources import format_depth

PLOT = "report_layers.png"


def _fmt(v, spec: str = "", none: str = "–") -> str:
    if v is None:
        return none
    return format(v, spec) if spec else str(v)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def _short_name(row: dict) -> str:
    """Node name with its op type shortened to the kernel's label (SomeLongOp_3 -> Label_3)."""
    kernel = ops.kernel_for(row["op"])
    return row["name"].replace(row["op"], kernel.label) if kernel else row["name"]


def plot_layers(report: dict, path: Path) -> Path:
    """Three panels per layer: LUT (Yosys or FINN estimate, with the layer model), cycles per frame, sparsity."""
    layers = report["layers"]
    names = [_short_name(r) for r in layers]
    x = range(len(layers))
    lut = [(r.get("resources") or {}).get("LUT") or 0 for r in layers]
    model = [r.get("lut") or 0 for r in layers]
    cyc = [r.get("cycles") or 0 for r in layers]
    sp = [r.get("sparsity") or 0.0 for r in layers]
    fig = Figure(figsize=(13, 3.8))
    ax = fig.subplots(1, 3)
    ax[0].bar(x, lut, color="tab:blue", label="Yosys / FINN estimate")
    ax[0].plot(x, model, "o", color="tab:orange", label="layer model")
    ax[0].set_title(f"LUT per layer (total {report['resources']['LUT']:,} of {report['part_resources']['LUT']:,})")
    ax[0].legend(fontsize=8)
    bott = max(range(len(cyc)), key=cyc.__getitem__) if cyc else 0
    ax[1].bar(x, cyc, color=["tab:red" if i == bott else "tab:gray" for i in x])
    ax[1].axhline(report["cycles_per_frame"], color="k", ls="--", lw=1,
                  label=f"measured {report['cycles_per_frame']:.0f} cycles/frame")
    ax[1].set_title("estimated cycles per frame (red: bottleneck)")
    ax[1].legend(fontsize=8)
    ax[2].bar(x, sp, color="tab:green")
    ax[2].set_ylim(0, 1)
    ax[2].set_title(f"weight sparsity (share at α; overall {_fmt(report['weight_sparsity'], '.3f')})")
    for a in ax:
        a.set_xticks(list(x))
        a.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    fig.suptitle(f"{report['board']} ({report['part']}), {report['fclk_mhz']:g} MHz")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def timing_lines(timing: dict | None) -> list[str]:
    """The report's timing section: the deepest path against the clock's budget, and every risk."""
    if not timing or not timing.get("top"):
        return []
    b, top = timing["budget"], timing["top"]
    verdict = "within the budget" if not timing["risks"] else "**over the budget: timing risk**"
    out = ["", "## Timing by estimate", "",
           f"Deepest register-to-register path: {top['weighted']:.1f} weighted LUT levels ({top['lut_levels']} "
           f"LUTs, in {top['where']}); budget {b['levels']} levels at {b['fclk_mhz']:g} MHz: {verdict}. "
           f"Logic depth is measured on each layer's Yosys netlist; streams between layers add the producer's and "
           f"the consumer's halves. Basis: {b['basis']}."]
    out += [f"- timing risk: {x}" for x in timing["risks"]]
    if timing.get("unchecked"):
        out.append(f"- not measured (FINN's RTL): {', '.join(timing['unchecked'])}")
    return out


def _frames_words(r: dict) -> str:
    """What the verified frames were: real test frames, the user's images, or random inputs."""
    data = r.get("verification_data") or {"source": "test"}
    n = f"{r['frames_verified']:,}"
    if data["source"] == "random":
        return f"{n} random frames"
    if data["source"] == "files":
        return f"{n} of the user's images ({data.get('images')})"
    return f"{n} real test frames" + (f" of {data['dataset']}" if data.get("dataset") else "")


def _input_lines(r: dict) -> list[str]:
    hw = r.get("hardware_input")
    if not hw:
        return []
    return ["", f"Hardware input: {hw['dtype']} × {hw['shape']}; pre-processing: {hw['preprocessing']}."]


def _missing_lines(r: dict) -> list[str]:
    missing = r.get("not_available") or {}
    return ["", "Not available:", *[f"- {k}: {why}" for k, why in missing.items()]] if missing else []


def _baseline_lines(r: dict) -> list[str]:
    """The dense +-1 twin's accuracy next to the sparse model's: what sparsity costs, and where it comes from."""
    base = r.get("dense_baseline")
    if not base:
        return []
    if base.get("accuracy") is None:
        return ["", f"Dense ±1 baseline: not available ({base['why']})."]
    lines = [f"| dense ±1 baseline, same architecture and data (PyTorch) | {_pct(base['accuracy'])} |", ""]
    sparse = r.get("accuracy_pytorch")
    cost = f"; sparsity costs {100 * (base['accuracy'] - sparse):.1f} points in PyTorch" if sparse is not None else ""
    return lines + [f"Dense ±1 baseline from a {base['source']}{cost}."]

def _frac_bits_lines(r: dict) -> list[str]:
    """What freezing at --frac-bits did to the test predictions (export's frac_bits_effect), flagged when lossy."""
    e = r.get("frac_bits_effect")
    if not e:
        return []
    text = (f"Freezing at `--frac-bits {e['frac_bits']}` changes {e['changed_predictions']:,} of {e['frames']:,} "
            f"test predictions (PyTorch accuracy {100 * e['accuracy_float']:.1f} % → "
            f"{100 * e['accuracy_fixed']:.1f} %)")
    if not e.get("lossy"):
        return ["", text + "."]
    fix = (f"; use `--frac-bits {e['suggested_frac_bits']}` or more" if e.get("suggested_frac_bits") is not None
           else "")
    return ["", f"**Warning: lossy.** {text}{fix}."]


def _target_lines(r: dict) -> list[str]:
    """Whether --target-fps was reached (compile's target_fps_reach); nothing without a target."""
    t = r.get("target_fps_reach")
    if not t:
        return []
    if t["reached"]:
        return [f"- `--target-fps {t['target_fps']:,.0f}` reached"]
    return [f"- **`--target-fps {t['target_fps']:,.0f}` not reached**: at most {t['best_fps']:,.0f} FPS, bounded by "
            f"{t['why']}"]


def render_markdown(report: dict, plot_name: str | None = PLOT) -> str:
    r = report
    res, part = r["resources"], r["part_resources"]
    verdict = "**bit-exact**" if r["bit_exact"] else "**MISMATCH**"
    lines = [
        f"# sbnn build report: {r['board']}",
        "",
        f"Part `{r['part']}`, fabric clock {r['fclk_mhz']:g} MHz, model `{r.get('model') or r['checkpoint']}`.",
        "",
        "## Verification",
        "",
        f"Verilator rtlsim of the stitched accelerator on {_frames_words(r)} against FINN's "
        f"execution of the compiled graph: {verdict}.",
        *_input_lines(r),
        "",
        "| accuracy | value |",
        "|---|---|",
        f"| PyTorch (training) | {_pct(r.get('accuracy_pytorch'))} |",
        f"| PyTorch, frozen levels | {_pct(r.get('accuracy_pytorch_frozen'))} |",
        f"| QONNX execution (the {r['frames_verified']:,} verified frames) | {_pct(r.get('accuracy_qonnx'))} |",
        f"| rtlsim (same frames) | {_pct(r.get('accuracy_rtlsim'))} |",
        *_baseline_lines(r),
        *_frac_bits_lines(r),
        *_missing_lines(r),
        "",
        "## Performance",
        "",
        f"- {r['cycles_per_frame']:,.1f} cycles per frame measured in rtlsim (estimate "
        f"{r['cycles_per_frame_estimate']}), latency {r['latency_cycles']:,} cycles",
        f"- {_fmt(r.get('fps_estimate'), ',.0f')} frames/s at {r['fclk_mhz']:g} MHz "
        f"({r['latency_cycles'] / r['fclk_mhz']:,.1f} µs latency)",
        f"- weight sparsity {_fmt(r.get('weight_sparsity'), '.3f')} (share of weights at α"
        + (f"; from the {r['weight_sparsity_source']})" if r.get("weight_sparsity_source") else ")"),
        *([f"- throughput bound ({r['throughput_bound']['reason']}): {r['throughput_bound']['why']}"]
          if r.get("throughput_bound") else []),
        *_target_lines(r),
        "",
        "## Resources (Yosys synth_xilinx for our layers, FINN's estimates for FINN's)",
        "",
        "| resource | used | available | utilization |",
        "|---|---:|---:|---:|",
    ]
    for k in ("LUT", "FF", "BRAM36", "DSP"):
        used, avail = res.get(k) or 0, part.get(k) or 0
        lines.append(f"| {k} | {used:,} | {avail:,} | {100 * used / avail:.1f} % |" if avail else
                     f"| {k} | {used:,} | – | – |")
    lines += timing_lines(r.get("timing"))
    lines += ["", "## Layers", "",
              "| layer | MW×MH | PE | SIMD | weights | sparsity | est. cycles | LUT | model LUT | FF | BRAM18 | depth |",
              "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["layers"]:
        rr = row.get("resources") or {}
        shape = f"{row.get('MW')}×{row.get('MH')}" if row.get("MW") is not None else "–"
        sp = "–" if row.get("sparsity") is None else f"{row['sparsity']:.3f}"
        lines.append(f"| {row['name']} | {shape} | {_fmt(row.get('PE'))} | {_fmt(row.get('SIMD'))} | "
                     f"{_fmt(row.get('weight_mode'))} | {sp} | "
                     f"{row['cycles']:,} | {_fmt(rr.get('LUT'), ',')} | {_fmt(row.get('lut'), ',')} | "
                     f"{_fmt(rr.get('FF'), ',')} | {_fmt(rr.get('BRAM18'))} | "
                     f"{format_depth(rr.get('depth')) or '–'} |")
    if plot_name:
        lines += ["", f"![per-layer LUT, cycles and sparsity]({plot_name})"]
    viv, dep = r["vivado"], r["deploy"]
    lines += ["", "## Next steps", "", f"- Vivado: {viv['message']}", f"- Deploy package: {dep['message']}"]
    if not r.get("complete"):
        lines.append("- Once the bitstream exists, rerun the same `sbnn build` command: finished stages are reused "
                     "and the .bit/.hwh are copied into the deploy package.")
    lines += ["", f"Build wall time {r['wall_time_s']:.0f} s; stages {', '.join(r['stages_done'])}.", ""]
    return "\n".join(lines)


def write_report_md(report: dict, build_dir: str | Path) -> Path:
    """Write BUILD/report_layers.png and BUILD/report.md (atomically); returns the markdown path."""
    build_dir = Path(build_dir)
    plot_name = None
    if report.get("layers"):
        plot_layers(report, build_dir / PLOT)
        plot_name = PLOT
    out = build_dir / "report.md"
    write_text_atomic(out, render_markdown(report, plot_name))
    return out
