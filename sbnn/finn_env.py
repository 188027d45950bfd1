"""FINN's process environment: FINN refuses to run its transformations without ``FINN_BUILD_DIR``."""

from __future__ import annotations

import os
from pathlib import Path


def ensure_finn_env(build_dir: str | Path) -> None:
    """Point ``FINN_BUILD_DIR`` at ``build_dir/finn_tmp`` unless the user set it."""
    if not os.environ.get("FINN_BUILD_DIR"):
        d = Path(build_dir) / "finn_tmp"
        d.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(d.resolve())
