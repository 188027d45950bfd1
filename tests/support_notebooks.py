"""Shared by the notebook tests: the stored-notebook check and a small-settings execution in a kernel that
runs this interpreter (``SBNN_NOTEBOOK_SMALL=1``, work folder under the test's tmp_path)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbclient
import nbformat


def assert_stored_without_outputs(notebook: Path, generator: str) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{notebook.name} has code cells"
    assert all(not c.outputs and c.execution_count is None for c in code), \
        f"commit the notebook with outputs cleared (python {generator})"


def execute_small(notebook: Path, work: Path) -> tuple[dict, object]:
    """Run ``notebook`` with its small settings; (its results.json, the executed notebook)."""
    nb = nbformat.read(notebook, as_version=4)
    env = dict(os.environ, SBNN_NOTEBOOK_SMALL="1", SBNN_NOTEBOOK_WORK=str(work),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    # jupyter_client starts the "python3" kernelspec (argv "python -m ipykernel_launcher") with sys.executable
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(notebook.parent)}})
    client.execute(env=env)
    res = json.loads((work / "results.json").read_text())
    assert Path(res["python"]).resolve() == Path(sys.executable).resolve(), "the kernel runs this interpreter"
    assert res["small"] is True
    return res, nb


def inline_images(nb) -> int:
    """How many plots the executed notebook rendered inline (not only saved)."""
    return len([o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})])
