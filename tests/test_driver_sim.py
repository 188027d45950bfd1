"""The driver over simulation backends: it classifies exactly as the Python reference of the accelerator."""

from __future__ import annotations

import numpy as np
import pytest

from sbnn.bitstreams.deploy import make_config
from sbnn.bitstreams.driver import Accelerator, SimBackend
from sbnn.bitstreams.packing import StreamSpec, random_frames
from sbnn.bitstreams.simbackend import node_io, node_rtlsim_transfer, reference_node_transfer

from support_rtl import require_verilator, tiny_node_config


def _accel(cfg, transfer_factory, in_spec=None, batch=0):
    i, o, meaning = node_io(cfg)
    i = in_spec or i
    conf = make_config(i, o, meaning=meaning, design="tiny", board="pynq-z2", fclk_mhz=100.0)
    return Accelerator(conf, SimBackend(transfer_factory(cfg, in_spec=i)), batch=batch)


def test_sim_backend_classifies_like_the_reference():
    cfg = tiny_node_config(MW=48, MH=10, PE=5, SIMD=12, seed=3)   # a 10-class "classifier" layer
    acc = _accel(cfg, reference_node_transfer, batch=64)
    a = random_frames(acc.in_spec, 300, 5)
    scores = cfg.reference(a)
    assert np.array_equal(acc.execute(a), scores)
    assert np.array_equal(acc.infer(a), scores.argmax(axis=1))
    assert acc.accuracy(a, scores.argmax(axis=1)) == 1.0


def test_sim_backend_bipolar_frames():
    """Frames given as {-1, +1} int8 reach the accelerator as the bits (x + 1) / 2."""
    cfg = tiny_node_config(seed=4)
    spec = StreamSpec((cfg.MW,), 1, cfg.SIMD, "bipolar")
    acc = _accel(cfg, reference_node_transfer, in_spec=spec)
    x = random_frames(spec, 40, 6)
    assert np.array_equal(acc.infer(x), cfg.reference((x + 1) // 2).argmax(axis=1))


def test_sim_backend_thresholded_outputs():
    cfg = tiny_node_config(MW=32, MH=8, PE=4, SIMD=8, no_activation=False, seed=7)
    acc = _accel(cfg, reference_node_transfer)
    a = random_frames(acc.in_spec, 60, 8)
    assert np.array_equal(acc.execute(a), cfg.reference(a))
    assert acc.throughput(50)["fps"] > 0


@pytest.mark.slow
def test_verilator_node_backend_matches_reference(tmp_path):
    """The same driver over the node's generated RTL in Verilator (one build, ~1 min)."""
    require_verilator()
    cfg = tiny_node_config(MW=48, MH=10, PE=5, SIMD=12, seed=3)
    i, o, meaning = node_io(cfg)
    conf = make_config(i, o, meaning=meaning)
    acc = Accelerator(conf, SimBackend(node_rtlsim_transfer(cfg, build_dir=tmp_path / "rtlsim"), "verilator"),
                      batch=100)
    a = random_frames(i, 200, 9)
    assert np.array_equal(acc.infer(a), cfg.reference(a).argmax(axis=1))
