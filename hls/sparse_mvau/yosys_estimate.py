"""Yosys resource counts of one generated sparse MVAU node (:mod:`sbnn.hls.yosys` does the synthesis)."""

from __future__ import annotations

from pathlib import Path

from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.yosys import synth_stats


def node_stats(cfg, family: str = "xc7", cache_dir: str | Path | None = None, timeout: float = 1800) -> dict:
    """Yosys counts (LUT, FF, BRAM18, DSP, CARRY4, cells) for one generated node, cached by RTL hash
    (subprocess.TimeoutExpired after ``timeout`` seconds of Yosys)."""
    return synth_stats(generate_verilog(cfg), cfg.name, family, cache_dir, timeout=timeout)
