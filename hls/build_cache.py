"""Content-addressed build folders for simulators (Verilator models, g++ testbenches).

A build goes into ``base/<key>.tmpXXXX`` and is renamed to ``base/<key>`` only
once it succeeded, so an interrupted or failed build never looks finished and
two processes building the same key at once both end with a usable result.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

BUILD_LOG = "build.log"   # the build command's whole output, kept in the build folder (failed or not)


def cached_build(base: str | Path, key: str, product: str, populate: Callable[[Path], None], cmd: list[str],
                 error: Callable[[Path, subprocess.CompletedProcess], Exception],
                 env: dict | None = None) -> tuple[Path, bool]:
    """``base/key/product``, built when missing: ``populate(work)`` writes the sources, ``cmd`` runs in
    ``work`` with its output in ``work/BUILD_LOG``, not on the console; a non-zero exit raises
    ``error(work, result)``. Returns (path, built now)."""
    base = Path(base).resolve()   # callers run the product from other working directories
    final = base / key
    if (final / product).is_file():
        return final / product, False
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.tmp", dir=base))
    populate(work)
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    (work / BUILD_LOG).write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise error(work, res)
    try:
        work.rename(final)
    except OSError:  # a concurrent build of the same key won the race: use its result
        shutil.rmtree(work, ignore_errors=True)
    return final / product, True
