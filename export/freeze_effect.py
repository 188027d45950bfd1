"""What freezing at ``--frac-bits k`` does to the model's test predictions, and a warning when it costs accuracy.

Freezing (freeze.py) snaps ``alpha/(beta-alpha)`` to ``R / 2**k``; too few fraction bits move every
weight level and the model's accuracy collapses (an MLP at 85 % drops to 21 % at ``k = 0``). The
other freezing steps (the float32-exact quantum, the centred thresholds) move only inputs that sit
on a decision boundary: they change a few per cent of the individual predictions (measured: 1.5 %
of an MLP's at ``k`` = 10..12, 10 % of a small CNV's at the default) without costing accuracy. So
the verdict is on the accuracy, not on the share of changed predictions: a setting is *lossy* when
the frozen model's test accuracy is more than :data:`LOSSY_POINTS` percentage points below the
float model's. The changed predictions are reported alongside.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sbnn.errors import UserError

from .freeze import freeze_model

LOSSY_POINTS = 0.5        # accuracy drop (percentage points) that makes a --frac-bits setting lossy
SEARCH_FRAMES = 1000      # test images the search for a lossless --frac-bits evaluates per candidate
MAX_FRAC_BITS = 16        # freeze_model's upper limit
BATCH = 1000


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(xb).argmax(1) for xb in x.split(BATCH)])


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    # a count over a count in double precision: the trainer's figure for the same predictions, to the last bit
    return int((pred == y).sum()) / int(y.numel())


def is_lossy(accuracy_float: float, accuracy_fixed: float) -> bool:
    return 100 * (accuracy_float - accuracy_fixed) > LOSSY_POINTS


def smallest_lossless_frac_bits(original: nn.Module, x: torch.Tensor, y: torch.Tensor, above: int) -> int | None:
    """The smallest ``k > above`` whose frozen model is not lossy on the first :data:`SEARCH_FRAMES` test images;
    None when no ``k`` up to the limit is (or freezing refuses a larger ``k``: float32 could not hold it)."""
    xs, ys = x[:SEARCH_FRAMES], y[:SEARCH_FRAMES]
    acc_float = accuracy(predictions(original, xs), ys)
    for k in range(above + 1, MAX_FRAC_BITS + 1):
        candidate = copy.deepcopy(original)
        try:
            freeze_model(candidate, k)
        except UserError:
            return None
        if not is_lossy(acc_float, accuracy(predictions(candidate, xs), ys)):
            return k
    return None


def frac_bits_effect(original: nn.Module, frozen: nn.Module, frac_bits: int, x: torch.Tensor,
                     y: torch.Tensor) -> dict:
    """Float vs frozen predictions on the test images ``x`` (labels ``y``); with a lossless ``k`` when lossy."""
    p_float, p_fixed = predictions(original, x), predictions(frozen, x)
    effect = {"frac_bits": frac_bits, "frames": int(x.shape[0]), "changed_predictions": int((p_float != p_fixed).sum()),
              "accuracy_float": accuracy(p_float, y), "accuracy_fixed": accuracy(p_fixed, y),
              "lossy_above_points": LOSSY_POINTS}
    effect["lossy"] = is_lossy(effect["accuracy_float"], effect["accuracy_fixed"])
    effect["suggested_frac_bits"] = (smallest_lossless_frac_bits(original, x, y, frac_bits) if effect["lossy"]
                                     else None)
    return effect


def warning_line(effect: dict) -> str:
    """One line for stderr: the measured effect of a lossy ``--frac-bits`` and what to use instead."""
    k = effect["frac_bits"]
    measured = (f"--frac-bits {k} changes {effect['changed_predictions']:,} of {effect['frames']:,} test predictions "
                f"(accuracy {100 * effect['accuracy_float']:.1f} % -> {100 * effect['accuracy_fixed']:.1f} %)")
    better = effect.get("suggested_frac_bits")
    if better is not None:
        return f"{measured}; use --frac-bits {better} or more"
    return (f"{measured}; no --frac-bits up to {MAX_FRAC_BITS} keeps the accuracy within {LOSSY_POINTS} points on "
            f"{SEARCH_FRAMES:,} test images: the loss comes from freezing itself; retrain or check the model")
