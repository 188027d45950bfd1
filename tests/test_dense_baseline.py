"""The dense +-1 baseline a build report quotes: the twin of a sparse config, the recorded run of the
embedded default, and (slow) that the record reproduces when retrained."""

from __future__ import annotations

import tempfile

import pytest

from sbnn.bitstreams.report_md import _baseline_lines
from sbnn.training.baseline import baseline_summary, dense_twin, recorded_baseline
from sbnn.training.config import TrainConfig

EMBEDDED = TrainConfig(dataset="mnist-5k", model="tfc", domain="alpha-beta", ec=0.1, epochs=10, batch_size=64)


def test_dense_twin_keeps_architecture_data_and_schedule():
    sparse = TrainConfig(dataset="mnist-5k", model="tfc", domain="alpha-beta-learned", ec=0.05, gamma=0.5,
                         block="4x4", prune="layer", prune_target=0.5, epochs=3, seed=7)
    twin = dense_twin(sparse)
    assert (twin.domain, twin.ec, twin.block, twin.prune, twin.gamma) == ("bipolar", None, None, "none", 0.0)
    assert (twin.model, twin.dataset, twin.epochs, twin.seed, twin.batch_size) == ("tfc", "mnist-5k", 3, 7, 256)


def test_embedded_default_has_a_recorded_baseline():
    from sbnn.flow.build import embedded_default_config

    assert embedded_default_config() == EMBEDDED, "the record below is for this config"
    rec = recorded_baseline(EMBEDDED)
    assert rec is not None and 0.5 < rec["test_accuracy"] < 1.0 and rec["test_samples"] == 1000
    summary = baseline_summary(EMBEDDED.to_dict())
    assert summary["accuracy"] == rec["test_accuracy"] and "bench/dense_baseline.py" in summary["source"]


def test_no_record_no_number():
    other = TrainConfig(dataset="mnist-5k", model="tfc", epochs=2)
    assert recorded_baseline(other) is None
    summary = baseline_summary(other.to_dict())
    assert summary["accuracy"] is None and "bench/dense_baseline.py CHECKPOINT" in summary["why"]
    assert baseline_summary(None)["accuracy"] is None


def test_report_lines_state_the_cost_and_the_source():
    base = baseline_summary(EMBEDDED.to_dict())
    lines = _baseline_lines({"dense_baseline": base, "accuracy_pytorch": base["accuracy"] - 0.05})
    text = "\n".join(lines)
    assert "sparsity costs 5.0 points" in text and "recorded run" in text
    assert "not available" in "\n".join(_baseline_lines({"dense_baseline": baseline_summary(None)}))


@pytest.mark.slow
def test_recorded_baseline_reproduces():
    from sbnn.training.trainer import train

    rec = recorded_baseline(EMBEDDED)
    with tempfile.TemporaryDirectory() as out:
        metrics = train(dense_twin(EMBEDDED), out, progress=False, device="cpu")
    assert metrics["test_accuracy"] == pytest.approx(rec["test_accuracy"], abs=0.02)
