"""notebooks/walkthrough: the jupytext source walkthrough.py runs end to end with its small settings
(SBNN_NOTEBOOK_SMALL=1): train -> accuracy vs sparsity -> export + compile -> Yosys resources vs sparsity ->
pynq-z2 build with rtlsim -> the deploy package's driver over the rtlsim. A few minutes on a loaded 2-core
machine, hence slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_notebooks import execute_small, inline_images

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_notebook_runs_small(tmp_path):
    pytest.importorskip("finn")
    pytest.importorskip("nbclient")
    pytest.importorskip("jupytext")
    from support_rtl import require_verilator

    require_verilator()
    work = tmp_path / "work"
    res, nb = execute_small(NOTEBOOK, work)
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
    assert inline_images(nb) >= 4
