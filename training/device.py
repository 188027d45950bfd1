"""``--device auto|cpu|cuda[:N]``: where training runs. Not a hyperparameter: a run resumes on any device."""

from __future__ import annotations

import torch

from sbnn.errors import UserError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(spec: str | None = "auto") -> torch.device:
    """auto: the first CUDA device when torch sees one, else the CPU; cuda / cuda:N must exist."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise UserError(f"--device {spec}: expected {DEVICE_CHOICES}")
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: torch sees no CUDA device (CPU-only torch or no GPU); "
                            "use --device cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise UserError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible "
                            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return torch.device(spec)
    raise UserError(f"unknown --device '{spec}'; expected {DEVICE_CHOICES}")
