"""``--device``: auto picks CUDA when torch sees a GPU; explicit devices are checked with one-line errors;
checkpoints hold CPU tensors (a run trained on a GPU resumes and exports on a CPU-only machine). The CUDA
comparison runs only where a GPU is visible (the GPU machine of a lent task)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sbnn.errors import UserError
from sbnn.training.config import TrainConfig
from sbnn.training.device import resolve_device
from sbnn.training.trainer import train

HAS_CUDA = torch.cuda.is_available()
SMALL = dict(dataset="digits", model="mlp", hidden="32,32", epochs=1, batch_size=64, domain="alpha-beta", ec=0.1)


def test_auto_and_cpu():
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == resolve_device("auto").type


@pytest.mark.parametrize("spec,msg", [("gpu", "unknown --device"), ("cuda:x", "expected auto"),
                                      ("cuda:99", "CUDA device")])
def test_bad_devices(spec, msg):
    if spec == "cuda:99" and not HAS_CUDA:
        msg = "no CUDA device"
    with pytest.raises(UserError, match=msg):
        resolve_device(spec)


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only message")
def test_cli_cuda_without_gpu_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sbnn.cli", "train", "--device", "cuda", "--out", str(tmp_path / "r"),
                          "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "1"],
                         capture_output=True, text=True)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--device cpu" in lines[0], res.stderr
    assert not (tmp_path / "r").exists()


def test_cpu_run_records_device_and_cpu_checkpoint(tmp_path):
    metrics = train(TrainConfig(**SMALL), tmp_path / "r", progress=False, device="cpu")
    assert metrics["device"] == "cpu"
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in ckpt["model"].values() if isinstance(t, torch.Tensor))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_matches_cpu(tmp_path):
    """One epoch on the GPU and on the CPU from the same seed: same data order, the first step's loss equal
    within float tolerance, final accuracies within 2 points; the GPU checkpoint is all CPU tensors and resumes
    on the CPU."""
    cfg = TrainConfig(**SMALL)
    cpu = train(cfg, tmp_path / "cpu", progress=False, device="cpu")
    gpu = train(cfg, tmp_path / "gpu", progress=False, device="cuda")
    assert gpu["device"].startswith("cuda")
    assert abs(cpu["history"][0]["train_loss"] - gpu["history"][0]["train_loss"]) < 1e-2
    assert abs(cpu["test_accuracy"] - gpu["test_accuracy"]) <= 0.02
    ckpt = torch.load(tmp_path / "gpu" / "checkpoint.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in ckpt["model"].values() if isinstance(t, torch.Tensor))
    # the finished GPU run resumes on the CPU (model, optimizer and scheduler state load there)
    resumed = train(cfg, tmp_path / "gpu", progress=False, device="cpu", resume=True)
    assert len(resumed["history"]) == 1 and resumed["device"] == "cpu"
    assert resumed["test_accuracy"] == pytest.approx(gpu["test_accuracy"], abs=0.02)
