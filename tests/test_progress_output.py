"""Progress output: bars on a terminal; in a log (stderr not a terminal) one line per epoch, per sweep run and
per build stage, no per-batch lines and no carriage returns. The build's own lines are checked on the real
embedded-default build in test_build_cli.py."""

import io
import re
import sys

from sbnn.flow.build import summary_line
from sbnn.training.config import TrainConfig
from sbnn.training.sweep import sweep
from sbnn.training.trainer import train

# 320 images in batches of 16: 20 batches an epoch, so a per-batch line would show up many times
TINY = TrainConfig(dataset="digits", model="mlp", hidden="16", epochs=2, batch_size=16, train_subset=320)
EPOCH_LINE = re.compile(r"epoch [12]/2: loss \d\.\d{4}  train acc \d\.\d{4}  test acc \d\.\d{4}  "
                        r"sparsity \d\.\d{3}  pruned \d\.\d{3}  \(\d+\.\d s\)")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_training_in_a_log_prints_one_line_per_epoch(tmp_path, capfd):
    train(TINY, tmp_path / "run")
    out, err = capfd.readouterr()
    assert out == ""
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert all(EPOCH_LINE.fullmatch(ln) for ln in lines), lines
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"]


def test_training_on_a_terminal_draws_the_bar(tmp_path, monkeypatch):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    train(TINY, tmp_path / "run")
    text = term.getvalue()
    assert "\r" in text and "batch" in text, "the bar is drawn on a terminal"
    assert sum(bool(EPOCH_LINE.fullmatch(ln.split("\r")[-1].strip())) for ln in text.split("\n")) == 2


def test_quiet_training_prints_nothing(tmp_path, capfd):
    train(TINY, tmp_path / "run", progress=False)
    assert capfd.readouterr() == ("", "")


def test_sweep_in_a_log_prints_one_line_per_run(tmp_path, capfd):
    base = TrainConfig(dataset="digits", model="mlp", hidden="16", epochs=1, batch_size=64, train_subset=256)
    sweep(base, [0.5], tmp_path / "sweep")
    out, err = capfd.readouterr()
    assert "\r" not in err
    runs = [ln for ln in err.splitlines() if ln.startswith("sweep ")]
    assert [ln.split(":")[0] for ln in runs] == [
        "sweep 1/5 bipolar-dense", "sweep 2/5 alpha-beta_ec0.5", "sweep 3/5 alpha-beta-learned_ec0.5",
        "sweep 4/5 zero-beta_ec0.5", "sweep 5/5 bipolar-pruned_ec0.5"]
    assert all(re.search(r": test acc \d\.\d{4}, \d+\.\d s/epoch$", ln) for ln in runs), runs
    epochs = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 5 and len(err.splitlines()) == 10, err


def test_build_summary_line():
    report = {"wall_time_s": 254.3, "cycles_per_frame": 98.0, "fps_estimate": 1020408.16, "fclk_mhz": 100.0,
              "bit_exact": True, "frames_verified": 1000, "accuracy_rtlsim": 0.826,
              "resources": {"LUT": 7571, "FF": 3179, "BRAM36": 0, "DSP": 0, "CARRY4": 917}}
    assert summary_line(report) == ("done in 4 min 14 s: 98 cycles/frame, 1,020,408 FPS at 100 MHz, bit-exact on "
                                    "1000 frames, accuracy 0.8260 (rtlsim); 7,571 LUT, 3,179 FF, 0 BRAM36")
    short = {**report, "wall_time_s": 12.34, "accuracy_rtlsim": None, "bit_exact": False}
    assert summary_line(short).startswith("done in 12.3 s: 98 cycles/frame")
    assert "NOT bit-exact" in summary_line(short) and "accuracy" not in summary_line(short)
