"""Data-parallel training (torch DDP, gloo on the CPU): 2 ranks take the step 1 process takes.

The first check compares gradients, not weights after Adam: Adam divides each gradient by its own size, so
entries whose gradient is mathematically 0 (a constant input pixel before a BatchNorm) turn float noise into
a full step of either sign; gradients show the equality directly. The second runs `sbnn train --nproc 2`
end to end, resuming a single-process checkpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as torch_mp

import support_ddp
from sbnn.cli import main
from sbnn.training.config import TrainConfig

HAS_CUDA = torch.cuda.is_available()
# 96 samples in batches of 64: a full batch and a last one of 32, both split between the ranks
QUICK = ["--dataset", "digits", "--model", "mlp", "--hidden", "32,32", "--batch-size", "64", "--train-subset", "96",
         "--epochs", "2", "--ec", "0.25", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_give_the_single_process_gradient(tmp_path):
    """{alpha, beta} learned with the EC penalty on (every term of the loss), BatchNorm and TensorNorm in the
    net: the gradient of rank 0 after DDP's averaging equals the one-process gradient of the whole batch.
    Without the global-batch norm statistics the first layer's gradient is off by far more than rounding."""
    cfg = TrainConfig(dataset="digits", model="mlp", hidden="32,32", batch_size=64, train_subset=64,
                      domain="alpha-beta-learned", ec=0.1, gamma=0.3)
    single = support_ddp.first_step_grads(cfg)
    torch_mp.spawn(support_ddp.rank_main, args=(2, _free_port(), cfg, str(tmp_path / "g.pt")), nprocs=2)
    ddp = torch.load(tmp_path / "g.pt", weights_only=True)
    assert ddp.keys() == single.keys() and len(single) >= 6
    for name, g in single.items():
        assert torch.allclose(ddp[name], g, rtol=1e-4, atol=1e-6), (name, float((ddp[name] - g).abs().max()))


def test_train_nproc_2_resumes_a_single_process_run(tmp_path, capsys, monkeypatch):
    """Epoch 1 in one process (interrupted right after its checkpoint), epoch 2 resumed with --nproc 2: rank 0
    writes checkpoint and metrics, and the run ends where an uninterrupted one-process run ends."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--out", str(full), *QUICK]) == 0

    import sbnn.training.trainer as trainer
    real_save = trainer.save_checkpoint

    def save_then_interrupt(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_interrupt)
    assert main(["train", "--out", str(part), *QUICK]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--out", str(part), "--resume", "--nproc", "2", "--device", "cpu", *QUICK]) == 0
    assert "test accuracy" in capsys.readouterr().out
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (full, part))
    assert b["processes"] == 2 and a["processes"] == 1
    assert [h["epoch"] for h in b["history"]] == [1, 2]
    assert b["history"][1]["train_loss"] == pytest.approx(a["history"][1]["train_loss"], rel=2e-3)
    assert abs(b["test_accuracy"] - a["test_accuracy"]) <= 0.03
    wa = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(part / "checkpoint.pt", weights_only=True)["model"]
    assert wa.keys() == wb.keys(), "a DDP checkpoint is a single-process checkpoint"
    lr_steps = 1e-3 * 2 * 2   # Adam moves a weight by about lr per step; noise-level gradients can flip its sign
    for k in wa:
        if k.endswith(".weight") and wa[k].dim() == 2:
            assert (wa[k] - wb[k]).abs().max() <= lr_steps + 1e-6, k
            assert not (part / "metrics.json.tmp").exists()


def test_nproc_needs_samples_for_every_rank(tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path / "r"), "--nproc", "2", "--device", "cpu",
               *[a if a != "96" else "65" for a in QUICK]])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--batch-size" in err and "holds 1" in err, err


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (nccl ranks run one per GPU)")
def test_nproc_on_cuda(tmp_path, capsys):
    n = min(torch.cuda.device_count(), 2)
    assert main(["train", "--out", str(tmp_path / "r"), "--nproc", str(n), "--device", "cuda", *QUICK]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["processes"] == n and m["device"].startswith("cuda")


@pytest.mark.slow
def test_under_torchrun(tmp_path):
    """torchrun starts the ranks (env:// rendezvous); the CLI joins them, and only rank 0 prints and writes."""
    torchrun = Path(sys.executable).with_name("torchrun")
    res = subprocess.run([str(torchrun), "--nproc-per-node", "2", "-m", "sbnn.cli", "train", "--out",
                          str(tmp_path / "r"), "--device", "cpu", *QUICK], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("test accuracy") == 1
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["processes"] == 2
