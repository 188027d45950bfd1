"""notebooks/cnv: the jupytext source cnv.py runs end to end with its small settings (SBNN_NOTEBOOK_SMALL=1): train a CNV
at width 0.125 on fashion-mnist-32 -> training curve and sparsity per layer -> pynq-z2 build (sliding windows,
sparse MVAUs, bit max-pools) with a bit-exact rtlsim -> the deploy package's driver over the rtlsim on NHWC
images. A few minutes on a loaded 2-core machine, hence slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_notebooks import execute_small, inline_images

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "cnv.ipynb"


@pytest.mark.slow
def test_cnv_notebook_runs_small(tmp_path):
    pytest.importorskip("finn")
    pytest.importorskip("nbclient")
    pytest.importorskip("jupytext")
    from support_rtl import require_verilator

    require_verilator()
    work = tmp_path / "work"
    res, nb = execute_small(NOTEBOOK, work)
    t = res["train"]
    assert t["epochs"] == 1 and len(t["history"]) == 1 and 0.0 < t["test_accuracy"] < 1.0
    sp = res["sparsity_per_layer"]
    assert len(sp) == 9                                                  # 6 convs + 3 FC
    assert all(abs(r["sparsity"] - 0.9) < 0.02 for r in sp[:-1])        # hidden layers at 1 - EC
    b = res["build"]
    assert b["bit_exact"] is True and b["frames_verified"] == 100
    assert b["accuracy_qonnx"] == b["accuracy_rtlsim"] and 0.0 < b["accuracy_rtlsim"] < 1.0
    assert b["LUT"] > 0 and b["cycles_per_frame"] > 0 and b["fps_estimate"] > 0
    assert abs(res["cycles_vs_estimate"] - 1) <= 0.1
    assert res["layer_counts"] == {"sliding window": 6, "sparse MVAU": 9, "bit max-pool": 2}
    assert Path(res["vivado_tcl"]).is_file()
    d = res["driver"]
    assert d["image_layout"] == "NHWC" and d["deploy_images_shape"] == [100, 32, 32, 1]
    assert d["deploy_images_accuracy"] == pytest.approx(b["accuracy_rtlsim"])
    assert sorted(set(d["labels"])) == list(range(10)) and d["predictions"] == d["qonnx_predictions"]
    for png in ("training_curve.png", "sparsity_per_layer.png", "layers_lut_cycles.png"):
        assert (work / png).stat().st_size > 1000
    # the plots were rendered inline, not only saved
    assert inline_images(nb) >= 4
