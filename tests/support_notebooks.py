"""Shared by the notebook tests. Each notebook is a jupytext pair: ``notebooks/NAME.py`` (percent format, the
source) and ``notebooks/NAME.ipynb`` (the same cells with their outputs, committed executed so that a reader
sees the plots without running it). Default tier: the pair has not drifted and the stored outputs are
rendered. Slow tier: a small-settings execution of the source in a kernel that runs this interpreter
(``SBNN_NOTEBOOK_SMALL=1``, work folder under the test's tmp_path)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FORMATS = "ipynb,py:percent"


def source_of(notebook: Path) -> Path:
    return notebook.with_suffix(".py")


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def assert_paired(notebook: Path) -> None:
    """``NAME.ipynb`` holds exactly the cells of its jupytext source ``NAME.py``, and both name the pairing."""
    import jupytext

    source = source_of(notebook)
    py, ipynb = jupytext.read(source), jupytext.read(notebook)
    hint = (f"edit {source.name}, then `.venv/bin/jupytext --sync notebooks/{source.name}` "
            "(and re-execute, notebooks/README.md)")
    for name, nb in ((source.name, py), (notebook.name, ipynb)):
        assert nb.metadata.get("jupytext", {}).get("formats") == FORMATS, \
            f"{name} is paired as {FORMATS!r} (jupytext formats metadata)"
    code = [s for t, s in _cells(py) if t == "code"]
    assert code, f"{source.name} has code cells"
    assert code == [s for t, s in _cells(ipynb) if t == "code"], f"the code cells of {notebook.name} differ: {hint}"
    assert _cells(py) == _cells(ipynb), f"the markdown cells of {notebook.name} differ: {hint}"


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return "".join(v if isinstance(v, str) else "" for k, v in output.get("data", {}).items() if k.startswith("text/"))


def assert_rendered(notebook: Path, min_images: int) -> dict:
    """The stored notebook was executed top to bottom without an error and shows at least ``min_images`` inline
    plots; its outputs print no machine-specific temporary paths. Returns {"small": bool} (the settings the
    outputs come from, as the settings cell printed them)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    hint = f"re-execute {notebook.name} and store it with its outputs (notebooks/README.md)"
    assert all(c.execution_count is not None for c in code), f"every code cell of {notebook.name} ran: {hint}"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{notebook.name} was run top to bottom in one kernel: {hint}"
    outputs = [o for c in code for o in c.outputs]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{notebook.name} stores an error output ({errors[0].get('ename')}): {hint}"
    text = "\n".join(_output_text(o) for o in outputs)
    assert "Traceback (most recent call last)" not in text, f"{notebook.name} stores a traceback: {hint}"
    assert "/tmp/" not in text, f"{notebook.name}'s outputs print a temporary path: {hint}"
    assert inline_images(nb) >= min_images, f"{notebook.name} stores its plots as inline PNGs: {hint}"
    settings = "".join(o.get("text", "") for o in code[0].outputs if o.get("name") == "stdout")
    assert settings.startswith(("full settings", "small settings")), \
        f"the first code cell of {notebook.name} prints its settings"
    small = settings.startswith("small settings")
    first_md = next(c.source for c in nb.cells if c.cell_type == "markdown")
    if small:
        assert "small settings" in first_md, \
            f"{notebook.name} stores outputs of its small settings: its first markdown cell says so"
    return {"small": small}


def execute_small(notebook: Path, work: Path) -> tuple[dict, object]:
    """Run the source of ``notebook`` (NAME.py) with its small settings; (its results.json, the executed
    notebook)."""
    import jupytext
    import nbclient

    nb = jupytext.read(source_of(notebook))
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
