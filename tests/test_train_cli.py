"""`sbnn train`: metrics, determinism, checkpoint/resume, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest
import torch

from sbnn.cli import main

QUICK = ["--dataset", "digits", "--model", "mlp", "--hidden", "64,64", "--epochs", "2", "--batch-size", "16",
         "--quiet"]


def run_cli(capsys, *args):
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_error(rc, err, *needles):
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sbnn: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_train_writes_metrics_and_is_deterministic(tmp_path, capsys):
    rc, out, _ = run_cli(capsys, "train", "--out", str(tmp_path / "a"), "--ec", "0.25", *QUICK)
    assert rc == 0 and "test accuracy" in out
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    for key in ("test_accuracy", "sparsity", "layers", "epochs", "wall_time_s"):
        assert key in m
    assert m["epochs"] == 2 and m["test_samples"] == 359
    assert m["test_accuracy"] > 0.5, "2 epochs on digits learn something"
    assert len(m["layers"]) == 3
    for layer in m["layers"]:
        assert {"alpha", "beta", "sparsity"} <= set(layer)
    for layer in m["layers"][:-1]:
        assert layer["sparsity"] == pytest.approx(0.75, abs=0.01)
    head = m["layers"][-1]
    assert head["alpha"] == pytest.approx(-head["beta"]), "dense +-1 classifier by default"
    run_cli(capsys, "train", "--out", str(tmp_path / "b"), "--ec", "0.25", *QUICK)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed, same weights"


def test_interrupted_run_resumes_to_the_same_result(tmp_path, capsys, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    run_cli(capsys, "train", "--out", str(full), *QUICK)

    import sbnn.training.trainer as trainer
    real_save = trainer.save_checkpoint

    def save_then_interrupt(path, payload):   # Ctrl-C right after epoch 1 was checkpointed
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_interrupt)
    rc, _, err = run_cli(capsys, "train", "--out", str(part), *QUICK)
    assert rc == 130 and "interrupted" in err
    assert torch.load(part / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert not (part / "metrics.json").exists(), "an interrupted run must not look finished"
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)

    rc, _, err = run_cli(capsys, "train", "--out", str(part), "--resume", *QUICK)
    assert rc == 0, err
    a = torch.load(full / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(part / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed training is bit-identical to an uninterrupted run"
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((part / "metrics.json").read_text())
    assert ma["test_accuracy"] == mb["test_accuracy"]


def test_pruned_bipolar_run(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "p"), "--domain", "bipolar", "--prune", "global",
                         "--prune-target", "0.8", "--prune-end", "0.5", *QUICK)
    assert rc == 0, err
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    hidden, head = m["layers"][:-1], m["layers"][-1]
    kept = sum(l["weights"] * (1 - l["pruned"]) for l in hidden) / sum(l["weights"] for l in hidden)
    assert kept == pytest.approx(0.2, abs=0.01), "global pruning of the hidden layers to 80 %"
    assert head["pruned"] == 0.0, "the classifier stays dense"


@pytest.mark.parametrize("args,needles", [
    (["--dataset", "imagenet"], ["unknown", "imagenet", "fashion-mnist"]),
    (["--model", "vgg"], ["unknown model 'vgg'", "sfc"]),
    (["--ec", "1.5"], ["(0, 1)"]),
    (["--ec", "0"], ["(0, 1)"]),
    (["--domain", "ternary"], ["unknown weight domain"]),
    (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent/fmnist"], ["/nonexistent/fmnist"]),
])
def test_bad_input_gives_one_line_error(tmp_path, capsys, args, needles):
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, "train", "--out", str(out), *QUICK, *args)
    assert_one_line_error(rc, err, *needles)
    assert not (out / "metrics.json").exists() and not (out / "checkpoint.pt").exists()


def test_corrupt_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    rc, _, err = run_cli(capsys, "train", "--out", str(out), "--resume", *QUICK)
    assert_one_line_error(rc, err, "corrupt", "checkpoint.pt")
    assert (out / "checkpoint.pt").read_bytes() == b"not a checkpoint at all", "user's file left untouched"


def test_mismatched_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    run_cli(capsys, "train", "--out", str(out), *QUICK)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    ckpt["model"]["features.0.weight"] = torch.zeros(5, 5)     # weights of another model
    torch.save(ckpt, out / "checkpoint.pt")
    rc, _, err = run_cli(capsys, "train", "--out", str(out), "--resume", *QUICK)
    assert_one_line_error(rc, err, "does not match")


def test_resume_with_different_hyperparameters(tmp_path, capsys):
    out = tmp_path / "run"
    run_cli(capsys, "train", "--out", str(out), *QUICK)
    before = (out / "checkpoint.pt").read_bytes()
    rc, _, err = run_cli(capsys, "train", "--out", str(out), "--resume", *QUICK, "--lr", "0.01")
    assert_one_line_error(rc, err, "different hyperparameters", "lr")
    assert (out / "checkpoint.pt").read_bytes() == before


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    run_cli(capsys, "train", "--out", str(out), *QUICK)
    rc, _, err = run_cli(capsys, "train", "--out", str(out), *QUICK)
    assert_one_line_error(rc, err, "--resume")


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dataset": "digits", "model": "mlp", "hidden": "16", "epochs": 1, "ec": 0.5}))
    rc, _, err = run_cli(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--ec", "0.25",
                         "--quiet")
    assert rc == 0, err
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["config"]["ec"] == 0.25 and m["config"]["hidden"] == "16"
    cfg.write_text(json.dumps({"learning_rate": 1}))
    rc, _, err = run_cli(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "s"))
    assert_one_line_error(rc, err, "unknown key", "learning_rate")


def test_entry_point_exit_code_and_no_traceback(tmp_path):
    """The installed `sbnn` script itself: status 2, one line, no traceback."""
    exe = [sys.executable, "-m", "sbnn.cli"]
    p = subprocess.run(exe + ["train", "--out", str(tmp_path / "x"), "--model", "nope"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in p.stderr
