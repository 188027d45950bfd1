"""Typed training configuration: flags, a JSON/YAML file, or both (flags win)."""

from __future__ import annotations

import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from sbnn.errors import UserError

from .blocks import parse_block
from .datasets import dataset_key
from .domains import WeightDomain
from .zoo import MODELS, parse_hidden


@dataclass
class TrainConfig:
    """Every hyperparameter of a run. Resuming requires an identical config."""

    dataset: str = "fashion-mnist"
    model: str = "sfc"
    hidden: str | None = None          # MLP widths, e.g. "256,256,256" (overrides the preset)
    width: float | None = None         # CNV channel multiplier / ResNet base width
    depth: int = 1                     # ResNet blocks per stage
    domain: str = "alpha-beta"         # alpha-beta | alpha-beta-learned | zero-beta | bipolar
    ec: float | None = 0.1             # expected connections (share of b = 1)
    per_channel: bool = False          # one (alpha, beta) per output channel
    block: str | None = None           # block-structured mask "RxC": R output neurons x C inputs (blocks.py)
    dense_classifier: bool = True      # classifier keeps dense +-1 weights (bnn_pynq; the reference never sparsifies it)
    gamma: float = 0.0                 # EC budget penalty strength (learned domain)
    ec_ramp_end: float = 0.0           # closed form: EC falls from 0.5 to `ec` by this fraction of training (0 = fixed)
    prune: str = "none"                # none | layer | global magnitude pruning
    prune_target: float = 0.0          # final pruned share
    prune_start: float = 0.0           # schedule start / end, as fractions of training
    prune_end: float = 0.6
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3                   # Adam, cosine schedule, as the reference code
    weight_decay: float = 0.0
    latent_clamp: float = 1.5          # latent weights clamped to [-c, c] after each step
    dropout: float = 0.0
    train_subset: int | None = None    # use only the first N training samples (quick runs)
    seed: int = 0

    def __post_init__(self):
        if self.ec is not None and not 0.0 < float(self.ec) < 1.0:
            raise UserError(f"expected connections (EC) must be in (0, 1), got {self.ec}; e.g. --ec 0.1")
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError(f"epochs and batch size must be positive, got {self.epochs} and {self.batch_size}")
        if not 0.0 <= self.gamma < 1.0:
            raise UserError(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 <= self.ec_ramp_end <= 1.0:
            raise UserError(f"--ec-ramp-end is a fraction of training in [0, 1], got {self.ec_ramp_end}")
        if self.prune not in ("none", "layer", "global"):
            raise UserError(f"unknown --prune '{self.prune}'; use none, layer or global")
        self._check_optimizer_values()
        self._check_model_values()
        parse_block(self.block)

    def _check_optimizer_values(self) -> None:
        """What torch would reject (or silently train nonsense with) only once training starts."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a positive finite learning rate, got {self.lr}; e.g. --lr 1e-3")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UserError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"--dropout is a probability in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.latent_clamp) and self.latent_clamp > 0):
            raise UserError(f"--latent-clamp must be a positive finite bound, got {self.latent_clamp}")
        if not 0.0 <= self.prune_target < 1.0:
            raise UserError(f"--prune-target is the final pruned share in [0, 1), got {self.prune_target}")
        if self.prune != "none" and not 0.0 <= self.prune_start < self.prune_end <= 1.0:
            raise UserError(f"--prune-start and --prune-end are fractions of training with 0 <= start < end <= 1, "
                            f"got {self.prune_start} and {self.prune_end}")
        if self.train_subset is not None and self.train_subset < 1:
            raise UserError(f"--train-subset must be a positive number of samples, got {self.train_subset} "
                            "(leave it out to train on the whole set)")

    def _check_model_values(self) -> None:
        """The model's shape options, checked before any data is loaded."""
        if self.model not in MODELS:
            raise UserError(f"unknown model '{self.model}'; choose one of: {', '.join(MODELS)}")
        dataset_key(self.dataset)
        if self.hidden is not None:
            parse_hidden(self.hidden)
        if self.width is not None and not (math.isfinite(self.width) and self.width > 0):
            raise UserError(f"--width must be a positive finite channel multiplier / base width, got {self.width}")
        if self.depth < 1:
            raise UserError(f"--depth must be at least 1 block per stage, got {self.depth}")

    def weight_domain(self) -> WeightDomain:
        return WeightDomain(self.domain, None if self.domain == "bipolar" else self.ec, self.per_channel,
                            parse_block(self.block))

    def to_dict(self) -> dict:
        return asdict(self)

    def differences(self, old: dict) -> list[tuple[str, object, object]]:
        """``(key, old value, new value)`` for every setting where a stored config ``old`` differs from this one.

        Keys the stored config predates count as their defaults, so adding an
        option does not orphan earlier runs and checkpoints.
        """
        old = {**TrainConfig().to_dict(), **old}
        return [(k, old.get(k), v) for k, v in self.to_dict().items() if old.get(k) != v]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrainConfig":
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(cls.field_names())}")
        hints = typing.get_type_hints(cls)
        d = {key: _yaml_number(value, hints[key]) for key, value in d.items()}
        for key, value in d.items():
            _check_number_or_flag(key, value, hints[key], where)
        return cls(**d)


_SCALARS = (int, float, bool, type(None))
# YAML 1.1 (PyYAML) reads 1e-3 and 5E-4, written without a dot, as strings: they are numbers to the user
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _yaml_number(value: object, hint: object) -> object:
    """``value`` as a float when the setting takes floats and the file wrote it as YAML's 1e-3 string."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if float in allowed and isinstance(value, str) and _EXPONENT_NUMBER.match(value.strip()):
        return float(value)
    return value


def _check_number_or_flag(key: str, value: object, hint: object, where: str) -> None:
    """A numeric or boolean setting must hold that type (e.g. not the string "3" from a config file),
    or the range checks in ``__post_init__`` would fail with a TypeError. Text settings are checked where
    they are used (unknown model, domain, hidden widths)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if not all(t in _SCALARS for t in allowed):
        return
    ok = ((value is None and type(None) in allowed)
          or (isinstance(value, bool) and bool in allowed)
          or (isinstance(value, int) and not isinstance(value, bool) and (int in allowed or float in allowed))
          or (isinstance(value, float) and float in allowed))
    if not ok:
        expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise UserError(f"{where}: '{key}' must be {expected}, got {value!r}; fix that value")


def load_config_file(path: str | Path) -> dict:
    """Read a JSON or YAML config file into a dict (validated later by TrainConfig)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {p} not found; pass an existing .json or .yaml file")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # parse errors of either format
        raise UserError(f"config file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must hold a mapping of hyperparameters")
    return data
