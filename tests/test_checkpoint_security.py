"""Checkpoints are read with the safe unpickler: a hostile file never runs code, a genuine one still loads,
and an incomplete one names what it lacks, all as one-line errors."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sbnn.cli import main
from sbnn.errors import UserError
from sbnn.training.checkpoint import load_checkpoint, model_from_checkpoint
from sbnn.training.config import TrainConfig
from sbnn.training.datasets import load_dataset
from sbnn.training.trainer import evaluate, train


class ShellPayload:
    """Unpickling this runs a shell command: the classic malicious-pickle gadget."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ExecPayload:
    """The same attack through builtins.exec (no shell needed)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> tuple[Path, dict]:
    """A real one-epoch checkpoint (tiny MLP on 8x8 digits) and its metrics."""
    out = tmp_path_factory.mktemp("genuine")
    cfg = TrainConfig(dataset="digits", model="mlp", hidden="32", epochs=1, batch_size=64, seed=0)
    metrics = train(cfg, out, progress=False)
    return out / "checkpoint.pt", metrics


def plant(genuine_ckpt: Path, where: Path, payload) -> Path:
    """A genuine checkpoint with the payload hidden inside, so it would pass every header check if unpickled."""
    ckpt = torch.load(genuine_ckpt, weights_only=True)
    ckpt["history"].append({"epoch": payload})
    where.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, where)
    return where


@pytest.mark.parametrize("payload_cls", [ShellPayload, ExecPayload])
def test_python_api_refuses_payload(tmp_path, genuine, payload_cls):
    marker = tmp_path / "pwned"
    bad = plant(genuine[0], tmp_path / "bad.pt", payload_cls(marker))
    for reader in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(UserError, match="refused: the file contains code/objects sbnn does not load") as err:
            reader(bad)
        assert "\n" not in str(err.value)
        assert not marker.exists(), f"{reader.__name__} ran the payload"


@pytest.mark.parametrize("command", ["export", "build", "train"])
def test_cli_refuses_payload(tmp_path, genuine, command):
    """The installed entry point, as a user would run it: exit 2, one line on stderr, nothing executed."""
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    bad = plant(genuine[0], run / "checkpoint.pt", ShellPayload(marker))
    before = sorted(p.name for p in tmp_path.iterdir())
    args = {
        "export": ["export", str(bad), "--out", str(tmp_path / "m.onnx")],
        "build": ["build", str(bad), "--build-dir", str(tmp_path / "build"), "--quiet"],
        "train": ["train", "--resume", "--out", str(run), "--dataset", "digits", "--model", "mlp", "--hidden", "32",
                  "--epochs", "1", "--batch-size", "64", "--quiet"],
    }[command]
    p = subprocess.run([sys.executable, "-m", "sbnn.cli", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sbnn: error: "), p.stderr
    assert "Traceback" not in p.stderr and "refused" in lines[0]
    assert not marker.exists(), f"`sbnn {command}` ran the payload"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing is written for a refused checkpoint"


def test_genuine_checkpoint_loads_and_rebuilds(genuine):
    path, metrics = genuine
    raw = torch.load(path, weights_only=True)  # only plain data and tensors: the safe loader takes all of it
    assert raw["format"] == "sbnn-checkpoint" and raw["epoch"] == 1
    model, cfg, ckpt = model_from_checkpoint(path)
    assert cfg.dataset == "digits" and ckpt["history"] == metrics["history"]
    _, test_set, _ = load_dataset("digits")
    assert evaluate(model, *test_set.tensors) == metrics["test_accuracy"], "the rebuilt model is the trained one"


@pytest.mark.parametrize("key", ["config", "model", "data", "history", "epoch", "data.in_shape", "data.dataset"])
def test_missing_entry_is_named(tmp_path, genuine, key):
    ckpt = torch.load(genuine[0], weights_only=True)
    parent, _, leaf = key.rpartition(".")
    del (ckpt[parent] if parent else ckpt)[leaf]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    for reader in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(UserError, match=f"has no '{key}' entry") as err:
            reader(tmp_path / "checkpoint.pt")
        assert "\n" not in str(err.value)


def test_wrong_entry_type_is_named(tmp_path, genuine):
    ckpt = torch.load(genuine[0], weights_only=True)
    ckpt["model"] = "weights"
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match="malformed 'model' entry .expected dict, got str"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_wrong_config_value_type_is_named(tmp_path, genuine):
    ckpt = torch.load(genuine[0], weights_only=True)
    ckpt["config"]["epochs"] = "1"
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match="'epochs' must be int, got '1'"):
        model_from_checkpoint(tmp_path / "checkpoint.pt")


def test_resume_without_optimizer_state_is_one_line(tmp_path, genuine, capsys):
    """Entries only resuming needs are checked by `sbnn train --resume`, before any training starts."""
    ckpt = torch.load(genuine[0], weights_only=True)
    del ckpt["rng"]
    run = tmp_path / "run"
    run.mkdir()
    torch.save(ckpt, run / "checkpoint.pt")
    rc = main(["train", "--resume", "--out", str(run), "--dataset", "digits", "--model", "mlp", "--hidden", "32",
               "--epochs", "1", "--batch-size", "64", "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "has no 'rng' entry" in lines[0], err
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]
