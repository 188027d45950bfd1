"""The baked LUT model's group terms (estimates.baked_group_terms) against the RTL the generator writes.

The terms are computed from the mask alone (the folder evaluates them for every fold of a layer); here
they are recounted from the generated Verilog of the same configuration: per lane and first-level popcount
group ``gs<p>_<g>``, the compute-buffer bits its case arms read (support), the distinct bit sets among its
arms (the step selection, weighted by the sum's width) and its largest arm (popcount).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from sbnn.hls.sparse_mvau.estimates import (baked_group_terms, bram18_estimate, compute_steps, lut_features,
                                            memory_bram18, threshold_select_bits, threshold_table_luts)
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.sparse_mvau.sample_layers import classifier, hidden_layer

CONFIGS = [(hidden_layer, 64, 64, 4, 16), (hidden_layer, 64, 64, 2, 32), (hidden_layer, 64, 64, 64, 64),
           (hidden_layer, 128, 32, 8, 32), (hidden_layer, 64, 64, 1, 4), (classifier, 64, 10, 5, 8)]


def terms_from_verilog(text: str) -> tuple[int, int, int]:
    """(support, step mux, popcount) recounted from the ``gs<p>_<g>`` group sums of baked RTL."""
    width = {m[2]: int(m[1]) + 1 for m in re.finditer(r"(?:reg|wire) \[(\d+):0\] (gs\d+_\d+)\b", text)}
    arms: dict[str, list[frozenset]] = {name: [] for name in width}
    for m in re.finditer(r"\b(gs\d+_\d+) = ([^;]*);", text):
        bits = frozenset(int(i) for i in re.findall(r"cbuf\[(\d+)\]", m[2]))
        if bits:
            arms[m[1]].append(bits)
    support = sum(len(frozenset().union(*a)) for a in arms.values() if a)
    mux = sum(width[n] * len(set(a)) for n, a in arms.items() if len(set(a)) > 1)
    popcount = sum(max((len(b) for b in a), default=0) for a in arms.values())
    return support, mux, popcount


@pytest.mark.parametrize("shape", CONFIGS, ids=lambda s: s[0].__name__ + "_" + "x".join(map(str, s[1:])))
def test_baked_group_terms_match_the_generated_rtl(shape):
    make, mw, mh, pe, simd = shape
    cfg = make(mw, mh, pe, simd, "baked")
    text = generate_verilog(cfg)
    assert re.search(r"\bgs0_0\b", text), "the generator's group sums are no longer named gs<p>_<g>"
    assert baked_group_terms(cfg) == terms_from_verilog(text)


def test_group_terms_follow_the_fold():
    """Fully parallel (NF = SF = 1): one step, so no step selection and support = popcount = kept weights;
    folding the inputs (SF = 8) adds the selection among the steps' bit sets and keeps the support."""
    wide = hidden_layer(64, 64, 64, 64, "baked")
    folded = wide.refolded(64, 8, "baked")
    support, mux, popcount = baked_group_terms(wide)
    assert (support, mux) == (int(wide.mask.sum()), 0) and popcount == support
    f_support, f_mux, f_popcount = baked_group_terms(folded)
    assert f_support == support and f_mux > 0 and f_popcount < popcount


def test_threshold_selection_grows_with_the_neuron_folds():
    cfg = hidden_layer(64, 64, 64, 64, "baked")
    assert threshold_select_bits(cfg) == 0   # NF = 1: one constant per lane
    assert threshold_select_bits(cfg.refolded(32, 64, "memory")) == 0   # NF = 2: folds into the compare
    nf8, nf16 = (threshold_select_bits(cfg.refolded(pe, 64, "memory")) for pe in (8, 4))
    assert nf8 == 8 * cfg.acc_width * np.log2(4) and nf16 == 4 * cfg.acc_width * np.log2(8)
    assert lut_features(cfg.refolded(8, 64, "baked"))["thr_sel"] == nf8


def table_bits_from_verilog(text: str) -> int:
    """Threshold-table bits of folded thresholded lanes, recounted from the ``tc<p>`` case tables: per lane,
    the distinct neuron-fold arms (the default arm repeats one) times the constant's width."""
    total = 0
    for m in re.finditer(r"reg signed \[(\d+):0\] (tc\d+);", text):
        arms = re.findall(rf"^\s+(\d+): {m[2]} = ", text, flags=re.M)
        total += (int(m[1]) + 1) * len(set(arms)) if len(set(arms)) > 2 else 0
    return total


@pytest.mark.parametrize("pe", [16, 8, 4, 2])
def test_memory_threshold_tables_are_counted_from_the_rtl(pe):
    cfg = hidden_layer(64, 64, pe, 64, "memory")   # NF = 64 / PE neuron folds
    text = generate_verilog(cfg)
    assert lut_features(cfg)["thr_rom"] == threshold_table_luts(cfg) == table_bits_from_verilog(text) / 64
    assert (threshold_table_luts(cfg) > 0) == (cfg.NF > 2)


def test_memory_threshold_tables_of_512_entries_leave_the_luts():
    # Yosys maps a 512-entry table to block RAM; below that the PE tables hold all MH constants at any fold
    cfg = hidden_layer(512, 512, 64, 64, "memory")
    assert threshold_table_luts(cfg.refolded(1, 64, "memory")) == 0   # NF = 512
    table_bits = 512 * (cfg.acc_width + 1)
    assert threshold_table_luts(cfg.refolded(4, 64, "memory")) == table_bits / 64   # NF = 128
    assert threshold_table_luts(cfg.refolded(16, 64, "memory")) == table_bits / 64   # NF = 32


def test_baked_step_flags_of_deep_schedules_count_as_block_ram():
    # rtlgen's st_fl case (2 bits per step) becomes a ROM; Yosys puts it in block RAM at 16384 words
    cfg = hidden_layer(784, 256, 8, 8, "baked")
    deep, shallow = cfg.refolded(2, 2, "baked"), cfg.refolded(16, 16, "baked")
    steps = compute_steps(deep.mask, 2, 2)
    assert 16384 < steps <= 32768 and bram18_estimate(deep) == 4   # 32768 x 2 bits in 16384 x 1 blocks
    assert compute_steps(shallow.mask, 16, 16) <= 4096 and bram18_estimate(shallow) == 0
    assert bram18_estimate(deep.refolded(2, 2, "memory")) == memory_bram18(deep.refolded(2, 2, "memory"))
