"""The dense +-1 baseline of a sparse run: the same architecture, data, schedule and seed with classic
bipolar weights (no {alpha, beta}, no mask, no pruning). A build report puts its accuracy next to the
sparse model's, so the cost of sparsity is in plain sight.

Baselines are recorded runs (``training/baselines/recorded.json``), each with the exact config that was
trained, the command that recorded it and the date; ``bench/dense_baseline.py`` measures and records
them. A report quotes a record only when the run's dense twin equals the recorded config field by field.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sbnn.training.config import TrainConfig

RECORDED = Path(__file__).resolve().parent / "baselines" / "recorded.json"
RECORDED_NAME = "training/baselines/recorded.json"   # as the report names it


def dense_twin(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with dense +-1 weights: what the sparse model gives up accuracy against."""
    return replace(cfg, domain="bipolar", ec=None, per_channel=False, block=None, gamma=0.0, ec_ramp_end=0.0,
                   prune="none", prune_target=0.0)


def recorded_baselines(path: Path = RECORDED) -> list[dict]:
    if not path.is_file():
        return []
    return json.loads(path.read_text())


def recorded_baseline(cfg: TrainConfig, path: Path = RECORDED) -> dict | None:
    """The recorded dense baseline of ``cfg``'s twin, or None when none was recorded for exactly it."""
    twin = dense_twin(cfg).to_dict()
    for rec in recorded_baselines(path):
        if rec["config"] == twin:
            return rec
    return None


def baseline_summary(train_config: dict | None) -> dict:
    """The report's ``dense_baseline`` entry for a checkpoint's config (None: a model from elsewhere)."""
    if train_config is None:
        return {"accuracy": None, "source": None,
                "why": "the model was not trained by sbnn, so its dense twin is not known"}
    rec = recorded_baseline(TrainConfig.from_dict(train_config, where="checkpoint config"))
    if rec is None:
        return {"accuracy": None, "source": None,
                "why": "no recorded dense +-1 run of this architecture, data and schedule; record one with "
                       "`python bench/dense_baseline.py CHECKPOINT`"}
    return {"accuracy": rec["test_accuracy"], "test_samples": rec["test_samples"],
            "source": f"recorded run ({RECORDED_NAME}, {rec['recorded']}: {rec['command']})", "why": None}
