"""Runs whose quantizers carry state (magnitude-pruning masks, learned tau / phi) resume and export.

Brevitas rebuilds every weight quantizer when a state dict is loaded, which used to drop the pruning
masks ("checkpoint ... does not match the model") and leave the optimizer holding the learned domain's
old tau / phi Parameters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import sbnn.training.trainer as trainer
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.training.checkpoint import model_from_checkpoint
from sbnn.training.config import TrainConfig

# 800 training images in batches of 16: 50 steps per epoch, so the masks are first set (trainer.PRUNE_EVERY)
# at the last step of epoch 1 and an interruption after epoch 1 leaves a pruned checkpoint.
PRUNED = TrainConfig(dataset="digits", model="tfc", domain="zero-beta", prune="layer", prune_target=0.5,
                     prune_end=0.5, epochs=2, batch_size=16, train_subset=800, seed=0)
LEARNED = TrainConfig(dataset="digits", model="mlp", hidden="32,32", domain="alpha-beta-learned", ec=0.3, gamma=0.3,
                      epochs=2, batch_size=32, train_subset=640, seed=0)


def train_interrupted_then_resumed(cfg: TrainConfig, out: Path, monkeypatch) -> dict:
    """Train until epoch 1 is checkpointed, stop as Ctrl-C would, then `--resume` to the end."""
    real_save = trainer.save_checkpoint

    def save_then_interrupt(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer, "save_checkpoint", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(cfg, out, progress=False)
    assert torch.load(out / trainer.CHECKPOINT, weights_only=True)["epoch"] == 1
    return trainer.train(cfg, out, resume=True, progress=False)


def states(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / trainer.CHECKPOINT, weights_only=True)["model"]


@pytest.fixture(scope="module")
def pruned_runs(tmp_path_factory) -> tuple[Path, Path]:
    """(uninterrupted, interrupted-and-resumed) pruned run directories."""
    root = tmp_path_factory.mktemp("pruned")
    trainer.train(PRUNED, root / "full", progress=False)
    with pytest.MonkeyPatch.context() as mp:
        train_interrupted_then_resumed(PRUNED, root / "part", mp)
    return root / "full", root / "part"


def test_pruned_run_resumes_to_the_same_result(pruned_runs):
    full, part = pruned_runs
    a, b = states(full), states(part)
    masks = [k for k in a if k.endswith("prune_mask")]
    assert len(masks) == 3, "tfc: every hidden layer pruned, the classifier dense"
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed pruned training is bit-identical to an uninterrupted run"
    for k in masks:
        assert float(b[k].mean()) == pytest.approx(0.5, abs=0.01), k


def test_pruned_checkpoint_rebuilds_and_exports(pruned_runs, tmp_path):
    _, part = pruned_runs
    ckpt = part / trainer.CHECKPOINT
    model, _, stored = model_from_checkpoint(ckpt)
    for name, buf in model.named_buffers():
        if name.endswith("prune_mask"):
            assert torch.equal(buf, stored["model"][name]), name
    report = export_checkpoint(ckpt, tmp_path / "pruned.onnx")
    assert (tmp_path / "pruned.onnx").is_file()
    trained = stored["history"][-1]["test_accuracy"]
    assert report["accuracy_before_freeze"] == trained, "export rebuilt the model with its pruning masks"
    assert report["accuracy_after_freeze"] == pytest.approx(trained, abs=0.03)


def test_learned_domain_resumes_to_the_same_result(tmp_path, monkeypatch):
    """tau / phi must stay in the optimizer after resuming, or they silently stop training."""
    trainer.train(LEARNED, tmp_path / "full", progress=False)
    train_interrupted_then_resumed(LEARNED, tmp_path / "part", monkeypatch)
    a, b = states(tmp_path / "full"), states(tmp_path / "part")
    taus = [k for k in a if k.endswith(".tau")]
    assert taus and all(torch.equal(a[k], b[k]) for k in a), "resumed learned-domain training is bit-identical"
