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
# # sbnn on a conv net: a sparse CNV from training to a PYNQ build
#
# This notebook trains a small sparse binary **CNV** and builds it for a PYNQ-Z2, one stage at a time:
#
# 1. **train** a CNV with {α, β} weights at EC = 0.1 on Fashion-MNIST padded to 32×32, and look at its training
#    curve and its sparsity per layer,
# 2. **build** it for a PYNQ-Z2 with `sbnn.build` (export → FINN compile into sliding windows, sparse MVAUs and bit
#    max-pools → stitched Verilog → Yosys → Verilator rtlsim against FINN → Vivado project → deploy package), and
#    look at the per-layer table, LUTs and cycles, the bit-exact rtlsim and the measured cycles per frame,
# 3. **classify** a few test images with the deploy package's own `driver.py` over the Verilator simulation.
#
# *The outputs stored with this notebook come from its full settings (below), executed from the repository root
# in about 12 minutes on a 2-core machine (8½ of them training).*
#
# `walkthrough.ipynb` does the same for an MLP (TFC) and explains the {α, β} domain: w = α + (β − α)·b, only the
# weights at β (b = 1, a share *EC* of them) cost hardware.
#
# ### CNV
#
# CNV is the convolutional topology of FINN's bnn_pynq examples (the one behind FINN's CIFAR-10 demos): six 3×3
# convolutions without padding with 64, 64, 128, 128, 256, 256 channels, a 2×2 max-pool after the second and the
# fourth, then two fully connected layers of 512 and the classifier. Every weight layer is binary, every hidden
# activation a sign (±1), and the first convolution reads **8-bit pixels**. sbnn's `width` scales every channel
# and FC count: `width=0.25` gives 16, 16, 32, 32, 64, 64 channels and FC 128, 128.
#
# ### Why 32×32
#
# Valid 3×3 convolutions take two pixels off each side length, pools halve it:
# 32 → 30 → 28 → *14* → 12 → 10 → *5* → 3 → 1, so the last conv leaves a 1×1 map and the first FC sees its
# channels. A 28×28 image would run out of pixels before the sixth conv (28 → 26 → 24 → 12 → 10 → 8 → 4 → 2 → 0).
# Hence the data set **`fashion-mnist-32`**: Fashion-MNIST (60,000 training and 10,000 test images of ten kinds of
# clothing, from the Debian package `dataset-fashion-mnist`, no download) zero-padded by two pixels on each side.
#
# ### In hardware
#
# FINN lowers each convolution to a *sliding-window generator* (`ConvolutionInputGenerator`, FINN's RTL: it turns
# the pixel stream into a stream of 3×3×C windows) feeding a matrix-vector unit over the output pixels; sbnn's
# compile turns the binary ones into sparse XNOR-popcount MVAUs (`SparseXnorMVAU`), the max-pools on sign bits
# into OR pools (`BinaryMaxPool`), and the first conv into the MVAU's multi-bit mode (integer sums of 8-bit
# pixels instead of popcounts). The hardware takes NHWC `uint8` images.

# %% [markdown]
# ## Settings
#
# `SBNN_NOTEBOOK_SMALL=1` (set by the test suite) shrinks everything to a few minutes: a CNV at `width=0.125`
# (8, 8, 16, 16, 32, 32 channels, FC 64), one epoch on the first 2,000 training images (with a higher learning
# rate, so that one short epoch gives a model worth looking at) and 100 rtlsim frames. The full settings train a
# CNV at `width=0.25` for 5 epochs on all 60,000 images and verify 1,000 frames in rtlsim; expect from ten
# minutes to an hour on a laptop CPU, most of it training. `SBNN_NOTEBOOK_WORK` picks the work directory
# (default `build/notebook_cnv` in the repository).
#
# Both fold the accelerator for **20,000 frames/s** at the PYNQ-Z2's 100 MHz (`target_fps`): every layer gets
# enough parallelism (PE, SIMD) to stay under 5,000 cycles per frame. That keeps the design small and the
# rtlsim quick.

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
from IPython.display import Markdown, display

SMALL = os.environ.get("SBNN_NOTEBOOK_SMALL") == "1"
# quiet library chatter that says nothing about these models
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")   # brevitas
warnings.filterwarnings("ignore", message="Assuming 4D input is NCHW")                    # qonnx
logging.getLogger("finn_logger").addFilter(lambda r: "No layout annotations" not in r.getMessage())

# the repository root (the notebook may be started from notebooks/ or from the root)
REPO = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
WORK = Path(os.environ.get("SBNN_NOTEBOOK_WORK") or REPO / "build" / "notebook_cnv").resolve()
WORK.mkdir(parents=True, exist_ok=True)


def rel(path) -> str:
    """A path as the notebook prints it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def in_repo(text: str) -> str:
    """``text`` with the paths in the repository made relative to it."""
    return text.replace(f"{REPO}{os.sep}", "")


DATASET = "fashion-mnist-32"   # Fashion-MNIST zero-padded to 32x32
MODEL = "cnv"
EC = 0.1
BOARD = "pynq-z2"
TARGET_FPS = 20000             # folding target at the board's 100 MHz: at most 5,000 cycles per frame
if SMALL:
    WIDTH, EPOCHS, TRAIN_SUBSET, BATCH, LR, EC_RAMP, RTLSIM_FRAMES = 0.125, 1, 2000, 50, 3e-3, 0.0, 100
else:
    WIDTH, EPOCHS, TRAIN_SUBSET, BATCH, LR, EC_RAMP, RTLSIM_FRAMES = 0.25, 5, None, 100, 1e-3, 0.5, 1000

RUN = WORK / (f"cnv-w{WIDTH:g}_alpha-beta_ec{EC:g}_e{EPOCHS}" + ("_small" if SMALL else ""))
BUILD_DIR = WORK / f"{RUN.name}_{BOARD}"

RESULTS = {"small": SMALL, "python": sys.executable, "work": str(WORK)}   # summary written at the end
t_start = time.perf_counter()
print(f"{'small' if SMALL else 'full'} settings: {MODEL.upper()} width {WIDTH:g} on {DATASET}, {EPOCHS} epoch(s)"
      f" on {TRAIN_SUBSET or 'all'} training images, EC {EC:g}")
print(f"work directory: {rel(WORK)}")

# %% [markdown]
# ## 1. Train a sparse {α, β} CNV
#
# `TrainConfig` holds every hyperparameter of a run, `train` writes `checkpoint.pt` and `metrics.json` into the
# run's folder (the same as `sbnn train --dataset fashion-mnist-32 --model cnv --width 0.25 --ec 0.1`). With the
# full settings the EC falls gradually from 0.5 to 0.1 during the first half of training (`ec_ramp_end=0.5`, as
# the library's `sweep` does); the one short epoch of the small settings trains at 0.1 from the start. The
# classifier stays dense ±1. A finished run is reused when the notebook is rerun.

# %%
from sbnn.training.config import TrainConfig
from sbnn.training.trainer import train

cfg = TrainConfig(dataset=DATASET, model=MODEL, width=WIDTH, domain="alpha-beta", ec=EC, ec_ramp_end=EC_RAMP,
                  epochs=EPOCHS, batch_size=BATCH, lr=LR, train_subset=TRAIN_SUBSET)
metrics = json.loads((RUN / "metrics.json").read_text()) if (RUN / "metrics.json").is_file() else None
if metrics is None or cfg.differences(metrics["config"]):   # reuse a finished run only with the same config
    # resumes an interrupted run from its per-epoch checkpoint (and refuses one with other settings)
    t0 = time.perf_counter()
    metrics = train(cfg, RUN, resume=(RUN / "checkpoint.pt").is_file(), progress=False)
    print(f"trained in {time.perf_counter() - t0:.0f} s")
print(f"{RUN.name}: test accuracy {100 * metrics['test_accuracy']:.2f} % on {metrics['test_samples']:,} test images, "
      f"weight sparsity {metrics['sparsity']:.3f}")
RESULTS["train"] = {"run": RUN.name, "test_accuracy": metrics["test_accuracy"], "sparsity": metrics["sparsity"],
                    "epochs": metrics["epochs"], "history": metrics["history"]}

# %% [markdown]
# `metrics.json` keeps one entry per epoch in `history`: training loss and accuracy (on the fly, over the epoch),
# test accuracy and sparsity at its end. With the small settings there is a single point.

# %%
hist = metrics["history"]
ep = [h["epoch"] for h in hist]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.plot(ep, [h["train_loss"] for h in hist], marker="o", color="C3")
ax1.set_ylabel("training loss (cross entropy)")
ax2.plot(ep, [100 * h["train_accuracy"] for h in hist], marker="o", label="train (during the epoch)")
ax2.plot(ep, [100 * h["test_accuracy"] for h in hist], marker="s", label="test")
ax2.set_ylabel("accuracy (%)")
ax2.set_ylim(0, 100)
ax2.legend()
for ax in (ax1, ax2):
    ax.set_xlabel("epoch")
    ax.set_xticks(ep)
    ax.grid(True, alpha=0.3)
fig.suptitle(f"CNV width {WIDTH:g}, {{α, β}} at EC {EC:g}, on {DATASET}")
fig.tight_layout()
fig.savefig(WORK / "training_curve.png", dpi=110)
plt.show()

# %% [markdown]
# Per layer, `metrics.json` holds the share of weights at α (*sparsity*) and the two levels. The six convs and
# the two hidden FC layers sit at the budget, 1 − EC = 0.9; the classifier is dense ±1 (α = −β, about half of
# its weights at each level). The first conv has only 3×3×1 weights per output channel, so its share is the
# closest whole number of weights.

# %%
layers = metrics["layers"]
print(f"{'layer':8s} {'shape':>12s} {'weights':>8s} {'sparsity':>9s} {'alpha':>9s} {'beta':>9s}")
for layer in layers:
    shape = "x".join(map(str, layer["shape"]))
    print(f"{layer['name']:8s} {shape:>12s} {layer['weights']:8,} {layer['sparsity']:9.3f} "
          f"{layer['alpha']:9.4f} {layer['beta']:9.4f}")

fig, ax = plt.subplots(figsize=(8, 3.4))
names = [l["name"] for l in layers]
colors = ["C0" if n.startswith("conv") else "C1" for n in names]
ax.bar(names, [l["sparsity"] for l in layers], color=colors)
ax.axhline(1 - EC, color="gray", ls="--", label=f"1 − EC = {1 - EC:g}")
for i, l in enumerate(layers):
    ax.text(i, l["sparsity"] + 0.01, f"{l['weights']:,}", ha="center", fontsize=7)
ax.set_ylim(0, 1.05)
ax.set_ylabel("share of weights at α")
ax.set_title("sparsity per layer (blue: convs, orange: FC; numbers: weights)")
ax.legend(loc="lower left")
fig.tight_layout()
fig.savefig(WORK / "sparsity_per_layer.png", dpi=110)
plt.show()
RESULTS["sparsity_per_layer"] = [{"name": l["name"], "sparsity": l["sparsity"]} for l in layers]

# %% [markdown]
# ## 2. Build for a PYNQ-Z2
#
# `sbnn.build` is the Python API of `sbnn build CHECKPOINT --board pynq-z2 --target-fps 20000`: export →
# compile → stitch → Yosys estimate + fit check on the xc7z020 → Verilator rtlsim of the stitched design on real
# test frames against FINN's execution of the compiled graph → Vivado project (and the Vivado run itself when
# `vivado` is on PATH) → PYNQ deploy package → `report.md` + `report.json`; it returns report.json's content.
# Every stage is resumable: a rerun reuses what is done. The compile options (`target_fps` here, or `folding=` a
# folding file) are keyword arguments like the others; the part and clock come from the board.
#
# This takes a few minutes, most of it Yosys (one `synth_xilinx` per layer of ours) and building the Verilator
# model. FINN's folding of the sliding windows may print that one "did not meet the target cycles": that is FINN's
# own estimate of its generator; the table below holds sbnn's cycle model of it, and the rtlsim measures the whole
# pipeline.

# %%
import sbnn

t0 = time.perf_counter()
report = sbnn.build(str(RUN / "checkpoint.pt"), board=BOARD, build_dir=str(BUILD_DIR), frames=RTLSIM_FRAMES,
                    target_fps=TARGET_FPS, progress=False)
print(f"build finished in {time.perf_counter() - t0:.0f} s: {rel(BUILD_DIR)}")
highlights = {k: report[k] for k in ("frames_verified", "bit_exact", "accuracy_pytorch", "accuracy_pytorch_frozen",
                                     "accuracy_qonnx", "accuracy_rtlsim", "cycles_per_frame",
                                     "cycles_per_frame_estimate", "latency_cycles", "fps_estimate",
                                     "weight_sparsity", "wall_time_s")}
highlights["LUT"], highlights["FF"] = report["resources"]["LUT"], report["resources"]["FF"]
RESULTS["build"] = highlights

# %% [markdown]
# ### Bit-exact rtlsim, measured cycles
#
# The rtlsim stage streams the first test images through the Verilator model of the stitched accelerator and
# compares every output with FINN's Python execution of the compiled graph; the build stops if a single frame
# differs. It also measures the cycles between frames once the pipeline is full, to compare with the compile's
# estimate (the slowest layer's cycles per frame). `accuracy_pytorch` is on the whole test set, `accuracy_qonnx`
# and `accuracy_rtlsim` on the frames that went through rtlsim.

# %%
b = highlights
print(f"rtlsim: {b['frames_verified']} test frames, bit-exact against FINN's execution: {b['bit_exact']}")
print(f"accuracy: PyTorch {100 * b['accuracy_pytorch']:.2f} % (all test images), frozen levels "
      f"{100 * b['accuracy_pytorch_frozen']:.2f} %, QONNX {100 * b['accuracy_qonnx']:.2f} % and rtlsim "
      f"{100 * b['accuracy_rtlsim']:.2f} % (the {b['frames_verified']} rtlsim frames)")
ratio = b["cycles_per_frame"] / b["cycles_per_frame_estimate"]
print(f"cycles per frame: measured {b['cycles_per_frame']:,.0f}, estimated {b['cycles_per_frame_estimate']:,} "
      f"({100 * (ratio - 1):+.1f} %); target {report['fclk_mhz'] * 1e6 / TARGET_FPS:,.0f}")
print(f"throughput {b['fps_estimate']:,.0f} frames/s at {report['fclk_mhz']:g} MHz, latency {b['latency_cycles']:,} "
      f"cycles ({b['latency_cycles'] / report['fclk_mhz']:.1f} µs)")
print(f"resources: {b['LUT']:,} LUT, {b['FF']:,} FF of the {report['part_resources']['LUT']:,} LUT of the "
      f"{report['part']}")
RESULTS["cycles_vs_estimate"] = ratio

# %% [markdown]
# ### Per layer
#
# The report's layer table, in stream order: FINN's input `Thresholding` (it quantizes the 8-bit pixels as the
# model's input quantizer does), then for every conv a sliding window (`ConvolutionInputGenerator_rtl`) and a
# sparse MVAU, the two bit max-pools, the three FC MVAUs and FINN's `LabelSelect` (top-1). `MW×MH` is the
# matrix a layer computes per output pixel (3·3·C_in × C_out for a conv: the first one is 9×C_out on 8-bit
# pixels, the multi-bit mode), PE and SIMD its parallelism, *LUT* Yosys `synth_xilinx` for our layers and FINN's
# estimates for FINN's, *model LUT* the compile's layer model.

# %%
layer_md = in_repo((BUILD_DIR / "report.md").read_text()).split("## Layers", 1)[1].split("\n![", 1)[0]
display(Markdown(layer_md))

# %%
KINDS = {"ConvolutionInputGenerator": ("sliding window", "C0"), "SparseXnorMVAU": ("sparse MVAU", "C1"),
         "BinaryMaxPool": ("bit max-pool", "C2")}


def kind(op: str) -> tuple[str, str]:
    return next((v for k, v in KINDS.items() if op.startswith(k)), ("FINN (threshold, top-1)", "C7"))


rows = report["layers"]
labels = [r["name"].replace("ConvolutionInputGenerator_rtl", "SWG").replace("SparseXnorMVAU", "MVAU")
          .replace("BinaryMaxPool", "pool").replace("Thresholding_rtl", "thresh").replace("LabelSelect_hls", "top1")
          for r in rows]
colors = [kind(r["op"])[1] for r in rows]
lut = [r["resources"].get("LUT") or r.get("lut") or 0 for r in rows]
cycles = [r.get("cycles") or 0 for r in rows]

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
ax1.bar(labels, lut, color=colors)
ax1.set_ylabel("LUT")
ax1.set_title(f"per-layer LUT (Yosys / FINN estimates): {sum(lut):,} in these layers, "
              f"{report['resources']['LUT']:,} with FIFOs and width converters")
ax2.bar(labels, cycles, color=colors)
ax2.axhline(report["cycles_per_frame"], color="black", ls="--", lw=1,
            label=f"measured cycles / frame ({report['cycles_per_frame']:,.0f})")
ax2.axhline(report["fclk_mhz"] * 1e6 / TARGET_FPS, color="gray", ls=":", lw=1,
            label=f"target ({TARGET_FPS:,} frames/s)")
ax2.set_ylabel("estimated cycles / frame")
ax2.set_title("per-layer cycles per frame: the slowest layer sets the throughput")
ax2.tick_params(axis="x", rotation=60)
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, c in KINDS.values()] + \
          [plt.Rectangle((0, 0), 1, 1, color="C7")]
ax1.legend(handles, [n for n, _ in KINDS.values()] + ["FINN (threshold, top-1)"], fontsize=8, ncol=4)
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.grid(True, axis="y", alpha=0.3)
fig.tight_layout()
fig.savefig(WORK / "layers_lut_cycles.png", dpi=110)
plt.show()
RESULTS["layer_counts"] = {name: sum(kind(r["op"])[0] == name for r in rows) for name, _ in KINDS.values()}
print(RESULTS["layer_counts"])

# %% [markdown]
# The late convs work on small maps (10×10 down to 3×3 pixels) with many channels: few cycles, but their MVAUs
# take most of the LUTs, since the folding unrolls them to keep up with the early layers. The first layers see
# every pixel of the 32×32 image and set the pace.
#
# ### Vivado
#
# The build always writes the Vivado project (`build_vivado.tcl`: Zynq PS, AXI DMA and the stitched accelerator
# as RTL module, through to the bitstream and `.hwh`); Vivado runs only when `vivado` is on PATH.

# %%
viv = report["vivado"]
print("status:", viv["status"])
print(in_repo(viv["message"]))
RESULTS["vivado_tcl"] = str(Path(viv["project_dir"]) / "build_vivado.tcl")

# %% [markdown]
# ## 3. Classify images with the deploy package, over the rtlsim
#
# `deploy/` is what goes on the board: `driver.py` + `packing.py`, `config.json` (stream shapes and widths,
# clock, expected accuracy) and the first 100 test images. For a conv net the images are **NHWC `uint8`**
# (`image_layout` in `config.json`: FINN streams pixel by pixel, channels innermost). The driver's
# `Accelerator` talks to a *backend*: `PynqBackend` (Overlay + AXI DMA) on the board, or `SimBackend` over any
# `transfer(packed_bytes) -> packed_bytes` function; here the transfer is the Verilator simulation of the
# stitched design, so the packing code that runs on the board is exercised on the host.

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
print(f"test_images.npy: {images.shape} {images.dtype}, image_layout {acc.image_layout!r}")
deploy_acc = acc.accuracy(images, labels)
print(f"driver over rtlsim on the package's {len(images)} test images: accuracy {deploy_acc:.4f} "
      f"(config.json expects {acc.config['expected_accuracy']:.4f})")

# %% [markdown]
# Now two images of every class from the whole test set. The data set gives PyTorch's NCHW floats in [0, 1];
# `pixels_for_hw` turns them into the 8-bit pixels the compiled graph takes, and `infer(..., layout="NCHW")`
# lets the driver transpose them to the hardware's NHWC (`images_to_frames`). QONNX execution of the exported
# model gives the reference answers.

# %%
from sbnn.export.verify import pixels_for_hw, qonnx_logits
from sbnn.training.datasets import load_dataset

_, test_set, info = load_dataset(DATASET)
x_all, y_all = test_set.tensors[0].numpy(), test_set.tensors[1].numpy()
pick = np.concatenate([np.flatnonzero(y_all == c)[:2] for c in range(10)])
x, y = x_all[pick], y_all[pick]
compile_rep = json.loads((BUILD_DIR / "compile" / "compile_report.json").read_text())
nchw = pixels_for_hw(x, compile_rep["input_max_value"]).astype(np.uint8)   # (N, 1, 32, 32) uint8

pred = acc.infer(nchw, layout="NCHW")                       # transposed + packed by driver.py, run in Verilator
qonnx_pred = qonnx_logits(BUILD_DIR / "export" / "model.qonnx.onnx", x).argmax(1)
print(f"labels      {y.tolist()}\naccelerator {pred.tolist()}\nQONNX       {qonnx_pred.tolist()}")
print(f"accelerator == QONNX on {int((pred == qonnx_pred).sum())} of {len(x)} images; "
      f"{int((pred == y).sum())} correct")

frames = acc.images_to_frames(nchw, "NCHW")                 # NHWC, what the hardware streams
names = info.class_names
fig, axes = plt.subplots(2, 10, figsize=(13, 3.4))
for i, ax in enumerate(axes.T.flat):
    ax.imshow(frames[i][..., 0], cmap="gray")
    ok = pred[i] == y[i]
    ax.set_title(names[pred[i]] + ("" if ok else f"\n(≠ {names[y[i]]})"), color="black" if ok else "red",
                 fontsize=7)
    ax.axis("off")
fig.suptitle("accelerator predictions (driver.py over the Verilator rtlsim); red: wrong")
fig.tight_layout()
plt.show()
RESULTS["driver"] = {"deploy_images_accuracy": deploy_acc, "image_layout": acc.image_layout,
                     "deploy_images_shape": list(images.shape), "labels": y.tolist(), "predictions": pred.tolist(),
                     "qonnx_predictions": qonnx_pred.tolist()}

# %%
RESULTS["wall_time_s"] = round(time.perf_counter() - t_start, 1)
(WORK / "results.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
print(f"notebook done in {RESULTS['wall_time_s']:.0f} s; summary in {rel(WORK / 'results.json')}")

# %% [markdown]
# ## On the board
#
# Build the bitstream (`cd <build>/vivado && vivado -mode batch -source build_vivado.tcl`, or rerun the build with
# `vivado` on PATH), copy `<build>/deploy` to a PYNQ-Z2 and run
#
# ```bash
# sudo python3 driver.py --bitfile sbnn_accel.bit --images test_images.npy --labels test_labels.npy --throughput 10000
# ```
#
# `test_images.npy` is NHWC; for NCHW arrays (PyTorch, torchvision) add `--layout NCHW`. From Python on the board:
# `Accelerator.on_board("sbnn_accel.bit").infer(images, layout="NCHW")`. `walkthrough.ipynb` ends with the same
# steps for the MLP.
#
# The same flow from the shell:
#
# ```bash
# sbnn train --dataset fashion-mnist-32 --model cnv --width 0.25 --ec 0.1 --epochs 5 --out runs/cnv
# sbnn build runs/cnv/checkpoint.pt --board pynq-z2 --target-fps 20000
# ```
