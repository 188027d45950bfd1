"""The Python API of ``sbnn build``: ``sbnn.build(model, board=..., ...)`` runs the same build as the
command line and returns report.json's content.

Options have the names of a build config file (FINN's ``DataflowBuildConfig`` names where they mean the
same, :mod:`sbnn.flow.config_file`); ``config=`` reads such a file and keyword arguments override it.
"""

from __future__ import annotations

from sbnn.flow.build import run_build
from sbnn.flow.config_file import build_config_from, load_build_config


def build(model: str | None = None, *, config: str | None = None, **options) -> dict:
    """Run (or resume) a build; ``model``: checkpoint.pt or QONNX .onnx, None = the embedded default.

    Returns report.json's content, or, for a build stopped by ``stop_step``, ``{"stopped_after": stage,
    "complete": False, ...}``. Bad options raise :class:`sbnn.errors.UserError` before any work starts.
    """
    values = {"model": model, **options}
    cfg = load_build_config(config, values) if config is not None else build_config_from(values)
    return run_build(cfg)
