"""notebooks/walkthrough.ipynb runs end to end with its small settings (SBNN_NOTEBOOK_SMALL=1): train ->
accuracy vs sparsity -> export + compile -> Yosys resources vs sparsity -> pynq-z2 build with rtlsim -> the
deploy package's driver over the rtlsim. A few minutes on a loaded 2-core machine, hence slow."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("finn")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def test_stored_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the walkthrough has code cells"
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "commit the notebook with outputs cleared (python notebooks/make_walkthrough.py)"


@pytest.mark.slow
def test_walkthrough_notebook_runs_small(tmp_path):
    from support_rtl import require_verilator

    require_verilator()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path / "work"
    env = dict(os.environ, SBNN_NOTEBOOK_SMALL="1", SBNN_NOTEBOOK_WORK=str(work),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    # jupyter_client starts the "python3" kernelspec (argv "python -m ipykernel_launcher") with sys.executable
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)

    res = json.loads((work / "results.json").read_text())
    assert Path(res["python"]).resolve() == Path(sys.executable).resolve(), "the kernel runs this interpreter"
    assert res["small"] is True
    accs = res["accuracy_vs_sparsity"]
    assert len(accs) == 3 and all(0.0 < r["test_accuracy"] < 1.0 for r in accs)
    hw = res["resources_vs_sparsity"]
    assert len(hw) == 2 and all(r["lut_yosys"] > 0 and r["cycles_per_frame"] > 0 for r in hw)
    b = res["build"]
    assert b["bit_exact"] is True and b["frames_verified"] == 100
    assert b["accuracy_qonnx"] == b["accuracy_rtlsim"] and 0.0 < b["accuracy_rtlsim"] < 1.0
    assert b["LUT"] > 0 and b["cycles_per_frame"] > 0 and b["fps_estimate"] > 0
    assert Path(res["vivado_tcl"]).is_file()
    d = res["driver"]
    assert d["deploy_images_accuracy"] == pytest.approx(b["accuracy_rtlsim"])
    assert sorted(set(d["labels"])) == list(range(10)) and d["predictions"] == d["qonnx_predictions"]
    for png in ("accuracy_vs_sparsity.png", "resources_vs_sparsity.png"):
        assert (work / png).stat().st_size > 1000
    # the plots were rendered inline, not only saved
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4
