"""Content-addressed build folders for simulators (Verilator models, g++ testbenches).

A build goes into ``base/<key>.tmpXXXX`` and is renamed to ``base/<key>`` only
once it succeeded, so an interrupted or failed build never looks finished and
two processes building the same key at once both end with a usable result.
The temporary folder never outlives the call: a failed build's whole output
is kept as ``base/<key>.failed.log`` (its sources and objects are removed).
A finished build keeps its sources, log and product but not its intermediates
(object files, precompiled headers): a Verilated model's precompiled headers
alone take ~145 MB, and a test run builds dozens of models.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

BUILD_LOG = "build.log"   # the build command's whole output, kept in the build folder
FAILED_LOG = ".failed.log"  # base/<key>.failed.log: the last failed build's whole output
INTERMEDIATES = ("*.gch", "*.o", "*.a")   # what only a rebuild would read; the linked product needs none


def failed_log(base: str | Path, key: str) -> Path:
    """Where the output of a failed build of ``key`` is kept."""
    return Path(base).resolve() / f"{key}{FAILED_LOG}"


def cached_build(base: str | Path, key: str, product: str, populate: Callable[[Path], None], cmd: list[str],
                 error: Callable[[Path, subprocess.CompletedProcess], Exception],
                 env: dict | None = None) -> tuple[Path, bool]:
    """``base/key/product``, built when missing: ``populate(work)`` writes the sources, ``cmd`` runs in
    ``work`` with its output in ``work/BUILD_LOG``, not on the console; a non-zero exit raises
    ``error(log, result)``, ``log`` holding the whole output. Returns (path, built now)."""
    base = Path(base).resolve()   # callers run the product from other working directories
    final = base / key
    if (final / product).is_file():
        return final / product, False
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.tmp", dir=base))
    try:
        populate(work)
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        (work / BUILD_LOG).write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            log = failed_log(base, key)
            os.replace(work / BUILD_LOG, log)
            raise error(log, res)
        drop_intermediates(work, keep=work / product)
        try:
            work.rename(final)
        except OSError:  # a concurrent build of the same key won the race: use its result
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)   # gone after a rename; after a failure or an interrupt, removed
    failed_log(base, key).unlink(missing_ok=True)
    return final / product, True


def drop_intermediates(work: Path, keep: Path) -> None:
    """Remove the object files and precompiled headers under ``work`` (never ``keep``, the product)."""
    for pattern in INTERMEDIATES:
        for f in work.rglob(pattern):
            if f.is_file() and f != keep:
                f.unlink()
