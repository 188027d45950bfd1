"""Deploy package: everything a PYNQ board needs to run the accelerator.

:func:`make_deploy_package` writes::

    <out>/<design>.bit, <design>.hwh   the bitstream and its hardware handoff (once Vivado built them)
    <out>/driver.py                   sbnn.bitstreams.driver, verbatim (PYNQ Overlay + AXI DMA)
    <out>/packing.py                  sbnn.bitstreams.packing, verbatim (shared with the host tests)
    <out>/streams.py                  sbnn.hls.streams, verbatim (the FINN beat packing packing.py builds on)
    <out>/config.json                 stream shapes/widths/folding, fclk, board, IP names, batch
    <out>/test_images.npy, test_labels.npy   optional: frames to check the accuracy on the board
    <out>/README.md                   copy to the board, run, expected accuracy

Our designs are baked/ROM (weights in the bitstream): no runtime weights are
written; ``config.json`` records ``"runtime_weights": null``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbnn.artifacts import write_text_atomic
from sbnn.errors import UserError
from sbnn.hls import streams
from sbnn.hls.stitch import load_design

from .checklist import BoardExpectations, board_checklist
from .driver import PYNQ_PYTHON, PYNQ_VENV
from .packing import StreamSpec, validate_frames
from .vivado import (TEMPLATES, VIVADO_COMMAND, VivadoResult, fill_template, generate_vivado_project,
                     io_from_stitched, load_project, run_vivado)

HERE = Path(__file__).parent
FORMAT = "sbnn-deploy/1"
# The board-side modules, copied verbatim: the driver imports packing, packing imports streams
# (both from the package folder; no sbnn on the board).
SHIPPED = {"driver.py": HERE / "driver.py", "packing.py": HERE / "packing.py", "streams.py": Path(streams.__file__)}


@dataclass
class DeployPackage:
    path: Path
    complete: bool                  # .bit and .hwh included
    files: list[str] = field(default_factory=list)
    message: str = ""


def make_config(input_spec: StreamSpec, output_spec: StreamSpec, *, meaning: str = "scores", design: str = "",
                board: str = "", part: str = "", ps: str = "", fclk_mhz: float | None = None, batch: int = 1000,
                expected_accuracy: float | None = None, dma_max_bytes: int = (1 << 26) - 1,
                ip: dict | None = None, **extra) -> dict:
    """The driver's config.json as a dict (also what host simulation tests pass to ``Accelerator``).

    ``expected_accuracy`` is the accuracy on the package's own test images (``test_images.npy``), the figure
    the driver prints next to the accuracy it measures on them; other figures go into ``extra``."""
    out = output_spec.to_dict()
    out["meaning"] = meaning
    return {
        "format": FORMAT, "design": design, "bitfile": f"{design}.bit" if design else "",
        "board": board, "part": part, "ps": ps, "fclk_mhz": fclk_mhz,
        "input": input_spec.to_dict(), "output": out, "batch": int(batch),
        "ip": ip or {"dma": "dma", "out_beats": "out_beats"}, "dma_max_bytes": int(dma_max_bytes),
        "max_frames_per_transfer": max(1, min(10000, dma_max_bytes // max(input_spec.frame_bytes,
                                                                         output_spec.frame_bytes))),
        "weights": "baked", "runtime_weights": None, "expected_accuracy": expected_accuracy,
        # conv nets stream images as (H, W, C) pixels: the driver also takes (N, C, H, W) with --layout NCHW
        "image_layout": "NHWC" if len(input_spec.shape) == 3 else None, **extra,
    }


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:   # a file object: np.save would append ".npy" to a name
        np.save(fh, array)
    os.replace(tmp, path)


def _spec(meta: dict, side: str) -> StreamSpec:
    d = meta.get(side, {})
    if "shape" not in d:
        raise UserError(f"the Vivado project was generated with only TDATA widths for its {side} stream; "
                        "regenerate it with StreamSpec stream descriptions (shape, element bits, fold) for the driver")
    return StreamSpec.from_dict(d)


def make_deploy_package(project_dir, out_dir, *, vivado_result: VivadoResult | None = None,
                        images: np.ndarray | None = None, labels: np.ndarray | None = None,
                        expected_accuracy: float | None = None, meaning: str | None = None,
                        batch: int = 1000, rtlsim_accuracy: float | None = None,
                        rtlsim_frames: int | None = None,
                        rtlsim_cycles_per_frame: float | None = None) -> DeployPackage:
    """Assemble the deploy folder from a generated (and possibly built) Vivado project.

    ``expected_accuracy``: measured on exactly ``images`` (what the driver will see on the board);
    ``rtlsim_accuracy`` over ``rtlsim_frames`` verified frames is stated separately, labelled as such.
    ``rtlsim_cycles_per_frame`` (steady state) gives the README checklist's frames/s at the board clock."""
    project_dir, out = Path(project_dir), Path(out_dir)
    meta = load_project(project_dir)
    in_spec, out_spec = _spec(meta, "input"), _spec(meta, "output")
    meaning = meaning or meta.get("meaning", "scores")
    if expected_accuracy is None:
        expected_accuracy = meta.get("expected_accuracy")
    design = meta["design"]
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{design}.*"):
        if stale.suffix in (".bit", ".hwh"):
            stale.unlink()
    files = []
    for name, src in SHIPPED.items():
        shutil.copy2(src, out / name)
        files.append(name)
    if vivado_result is not None:  # this run's outcome decides: no Vivado here -> no bitstream
        bit, hwh = vivado_result.bit, vivado_result.hwh
    else:  # re-packaging after running Vivado by hand in the project folder
        bit, hwh = project_dir / meta["bit"], project_dir / meta["hwh"]
    complete = bit is not None and hwh is not None and Path(bit).is_file() and Path(hwh).is_file()
    if complete:
        shutil.copy2(bit, out / f"{design}.bit")
        shutil.copy2(hwh, out / f"{design}.hwh")
        files += [f"{design}.bit", f"{design}.hwh"]
    n_images = 0
    if images is not None:
        try:
            validate_frames(images, in_spec, what="deploy test images")
        except ValueError as exc:
            raise UserError(str(exc)) from None
        _save_atomic(out / "test_images.npy", images)
        files.append("test_images.npy")
        n_images = images.shape[0]
        if labels is not None:
            labels = np.asarray(labels).astype(np.int64).reshape(-1)
            if labels.shape[0] != n_images:
                raise UserError(f"deploy test labels: {labels.shape[0]} labels for {n_images} images")
            _save_atomic(out / "test_labels.npy", labels)
            files.append("test_labels.npy")
    expect = BoardExpectations(design, out.name, complete, n_images,
                               expected_accuracy if n_images else None, float(meta["fclk_mhz"]),
                               rtlsim_cycles_per_frame, int(batch))
    cfg = make_config(in_spec, out_spec, meaning=meaning, design=design, board=meta["board"], part=meta["part"],
                      ps=meta["ps"], fclk_mhz=meta["fclk_mhz"], batch=batch, expected_accuracy=expected_accuracy,
                      dma_max_bytes=meta.get("dma_max_bytes", (1 << 26) - 1), ip=meta.get("ip"),
                      expected_accuracy_images=n_images or None,
                      accuracy_rtlsim=rtlsim_accuracy, accuracy_rtlsim_frames=rtlsim_frames, **expect.config_fields())
    write_text_atomic(out / "config.json", json.dumps(cfg, indent=2) + "\n")
    files.append("config.json")
    exp = ("not measured" if expected_accuracy is None else
           f"**{100 * expected_accuracy:.2f} %** (the hardware's outputs for exactly these images)")
    note = ("" if rtlsim_accuracy is None or not rtlsim_frames else
            f" Over the {rtlsim_frames:,} frames verified in rtlsim at build time (`accuracy_rtlsim` in "
            f"config.json) the accuracy was {100 * rtlsim_accuracy:.2f} %.")
    status = ("" if complete else
              f"\n**The bitstream is not built yet.** Run `{VIVADO_COMMAND}` in the Vivado project folder "
              f"({project_dir.resolve()}), then copy `output/{design}.bit` and `output/{design}.hwh` here.\n")
    readme = fill_template((TEMPLATES / "deploy_README.md.in").read_text(), {
        "DESIGN": design, "BOARD": meta["board"], "FCLK_MHZ": f"{meta['fclk_mhz']:g}", "STATUS": status,
        "DEPLOY_DIR": out.name, "PYNQ_VENV": PYNQ_VENV, "PYNQ_PYTHON": PYNQ_PYTHON,
        "CHECKLIST": board_checklist(expect),
        "EXPECTED": exp, "EXPECTED_NOTE": note, "N_IMAGES": n_images or "your", "IN_SHAPE": "(N, " + ", ".join(map(str, in_spec.shape)) + ")",
        "IN_DTYPE": in_spec.dtype.name, "IN_KIND": in_spec.kind, "IN_BITS": in_spec.elem_bits,
        "LAYOUT_NOTE": ("" if cfg["image_layout"] is None else
                        "  These are images in NHWC order (height, width, channels: `image_layout` in config.json); "
                        "add `--layout NCHW` for (N, C, H, W) arrays as PyTorch stores them "
                        "(`acc.infer(images, layout=\"NCHW\")` from Python).\n"),
        "OUT_MEANING": {"class_index": "the class index (top-1)", "scores": "integer class scores (argmax = label)",
                        "raw": "raw integer outputs"}[meaning]})
    write_text_atomic(out / "README.md", readme)
    files.append("README.md")
    msg = (f"deploy package ready in {out}" if complete else
           f"deploy package in {out} (without bitstream: run Vivado on the project, then copy .bit/.hwh)")
    return DeployPackage(out, complete, sorted(files), msg)


def vivado_and_deploy(stitched, board, vivado_dir, deploy_dir, *, images: np.ndarray | None = None,
                      labels: np.ndarray | None = None, expected_accuracy: float | None = None,
                      vivado: str | None = None, timeout_s: float | None = None, batch: int = 1000) -> dict:
    """The ``vivado`` and ``deploy`` stages of ``sbnn build`` for a stitched design, in order.

    ``stitched``: a :class:`sbnn.hls.stitch.StitchedDesign` or its output folder (with stitch.json).
    Never fails for a missing Vivado: the report says ``"vivado": {"status": "project_ready", ...}``
    and ``"complete": False``; the caller decides the exit status.
    """
    if isinstance(stitched, (str, Path)):
        if not (Path(stitched) / "stitch.json").is_file():
            raise UserError(f"{stitched} holds no stitched design (stitch.json); run the stitch stage first")
        stitched = load_design(stitched)
    io = io_from_stitched(stitched)
    proj = generate_vivado_project(stitched.rtl_dir, stitched.top, io, board, vivado_dir,
                                   extra={"meaning": io["meaning"], "expected_accuracy": expected_accuracy})
    res = run_vivado(proj, vivado=vivado, timeout_s=timeout_s)
    pkg = make_deploy_package(proj, deploy_dir, vivado_result=res, images=images, labels=labels,
                              expected_accuracy=expected_accuracy, batch=batch)
    return {"vivado": res.to_dict(), "vivado_project": str(proj),
            "deploy": {"path": str(pkg.path), "complete": pkg.complete, "files": pkg.files, "message": pkg.message},
            "complete": res.built and pkg.complete}
