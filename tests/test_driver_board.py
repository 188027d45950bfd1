"""The board side of the driver against a fake ``pynq`` (Overlay, AXI DMA channels, MMIO, allocate).

* a DMA that never completes: the driver gives up after its deadline with one line that says to reload
  the overlay, from Python and from the command line (exit status 2), instead of hanging for ever;
* a DMA that completes: the transfer goes through, and the driver never calls PYNQ's deadline-free wait();
* no pynq in this Python: the message names the PYNQ virtualenv's Python to run instead (PYNQ >= 2.7).
"""

from __future__ import annotations

import json
import sys
import time
import types

import numpy as np
import pytest

from sbnn.bitstreams import driver
from sbnn.bitstreams.deploy import make_config
from sbnn.bitstreams.driver import Accelerator, PynqBackend, main
from sbnn.bitstreams.packing import StreamSpec

IN, OUT = StreamSpec((16,), 1, 4, "binary"), StreamSpec((1,), 4, 1, "uint")


class FakeChannel:
    """A simple-mode AXI DMA channel: busy from transfer() until it completes (or for ever)."""

    def __init__(self, completes: bool):
        self.completes, self.busy, self.error, self.transfers = completes, False, False, []

    def transfer(self, buf, nbytes=0):
        self.transfers.append(nbytes)
        self.busy = True

    @property
    def idle(self) -> bool:
        if self.busy and self.completes:
            self.busy = False
        return not self.busy

    def wait(self):
        raise AssertionError("PYNQ's wait() has no deadline; the driver must poll with its own")


def fake_pynq(recv_completes: bool) -> types.ModuleType:
    m = types.ModuleType("pynq")
    dma = types.SimpleNamespace(sendchannel=FakeChannel(True), recvchannel=FakeChannel(recv_completes))
    m.dma = dma
    m.Overlay = lambda bitfile: types.SimpleNamespace(dma=dma, ip_dict={"out_beats": {"phys_addr": 0x4000_0000,
                                                                                     "addr_range": 0x1000}})
    m.MMIO = lambda addr, size: types.SimpleNamespace(write=lambda off, value: None)
    m.allocate = lambda shape, dtype: np.zeros(shape, dtype=dtype)
    return m


@pytest.fixture
def board(tmp_path, monkeypatch):
    def install(recv_completes: bool):
        m = fake_pynq(recv_completes)
        monkeypatch.setitem(sys.modules, "pynq", m)
        return m
    (tmp_path / "d.bit").write_bytes(b"BIT")
    conf = make_config(IN, OUT, meaning="class_index", design="d", board="pynq-z2", fclk_mhz=100.0)
    (tmp_path / "config.json").write_text(json.dumps(conf))
    frames = np.random.default_rng(0).integers(0, 2, size=(20, 16)).astype(np.uint8)
    np.save(tmp_path / "images.npy", frames)
    return install, tmp_path, conf, frames


def test_stalled_dma_times_out_with_one_line(board):
    install, d, conf, frames = board
    install(recv_completes=False)
    acc = Accelerator(conf, PynqBackend(str(d / "d.bit"), conf, timeout_s=0.05))
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as ei:
        acc.infer(frames)
    assert time.perf_counter() - t0 < 5
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("DMA S2MM (output) transfer did not complete within 0.05 s")
    assert "reload the overlay" in msg


def test_stalled_dma_on_the_command_line(board, capsys):
    install, d, conf, frames = board
    install(recv_completes=False)
    rc = main(["--config", str(d / "config.json"), "--images", str(d / "images.npy"), "--timeout", "0.05"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("driver.py: error: DMA S2MM (output) transfer did not complete within 0.05 s")
    assert "reload the overlay" in err[0]


def test_timeout_from_config_and_negative_timeout(board, capsys):
    install, d, conf, frames = board
    install(recv_completes=False)
    assert PynqBackend(str(d / "d.bit"), dict(conf, dma_timeout_s=2.5)).timeout_s == 2.5
    assert PynqBackend(str(d / "d.bit"), conf).timeout_s == driver.DMA_TIMEOUT_S
    rc = main(["--config", str(d / "config.json"), "--images", str(d / "images.npy"), "--timeout", "-1"])
    assert rc == 2 and "--timeout must be >= 0 seconds" in capsys.readouterr().err


def test_completing_dma_runs_through(board, capsys):
    install, d, conf, frames = board
    m = install(recv_completes=True)
    acc = Accelerator(conf, PynqBackend(str(d / "d.bit"), conf, timeout_s=0.05), batch=8)
    assert acc.infer(frames).tolist() == [0] * 20        # the fake writes nothing: all-zero class indices
    assert m.dma.sendchannel.transfers == [8 * IN.frame_bytes, 8 * IN.frame_bytes, 4 * IN.frame_bytes]


def test_missing_pynq_names_the_pynq_venv(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)   # import pynq -> ImportError
    with pytest.raises(RuntimeError) as ei:
        PynqBackend("x.bit", make_config(IN, OUT))
    msg = str(ei.value)
    assert msg.startswith("pynq is not installed") and "\n" not in msg
    assert "sudo /usr/local/share/pynq-venv/bin/python3 driver.py" in msg
    monkeypatch.setattr(driver.os.path, "isfile", lambda p: p == driver.PYNQ_PYTHON)   # as on a PYNQ 2.7+ image
    with pytest.raises(RuntimeError, match=r"run with the PYNQ virtualenv's Python, `sudo /usr/local/share/"
                                           r"pynq-venv/bin/python3 driver.py \.\.\.` \(or `sudo -i`, `source "
                                           r"/etc/profile.d/pynq_venv.sh`"):
        PynqBackend("x.bit", make_config(IN, OUT))
