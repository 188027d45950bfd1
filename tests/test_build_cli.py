"""`sbnn build`: board validation, clear errors, and the embedded-default main job's report."""

import json

import pytest

from sbnn.bitstreams.boards import BOARDS, get_board
from sbnn.cli import main
from sbnn.errors import UserError


def test_board_catalog():
    assert {"pynq-z1", "pynq-z2", "ultra96-v2", "zcu104", "kv260"} <= set(BOARDS)
    z2 = get_board("PYNQ-Z2")
    assert z2.part.startswith("xc7z020") and z2.ps == "ps7" and z2.fclk_mhz == 100.0
    assert get_board("kv260").ps == "ps8"
    with pytest.raises(UserError, match="unknown board 'de10'.*pynq-z2"):
        get_board("de10")


def test_unknown_board_is_one_line_error(tmp_path, capsys):
    rc = main(["build", "--board", "de10", "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "unknown board 'de10'" in err
    assert not (tmp_path / "b").exists(), "nothing is created for invalid input"


def test_missing_model_is_one_line_error(tmp_path, capsys):
    rc = main(["build", str(tmp_path / "nope.pt"), "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.pt not found" in err and "Traceback" not in err


def test_embedded_default_trains_and_reports(tmp_path, capsys):
    build = tmp_path / "b"
    rc = main(["build", "--build-dir", str(build), "--quiet"])
    assert rc == 0
    report = json.loads((build / "report.json").read_text())
    assert report["board"] == "pynq-z2" and report["part"].startswith("xc7z020")
    assert report["accuracy_pytorch"] > 0.8, "TFC on the bundled MNIST subset"
    assert report["weight_sparsity"] == pytest.approx(0.9, abs=0.01)
    assert (build / "train" / ".done").exists()
    # a second run resumes: the finished training stage is not repeated
    before = (build / "train" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["build", "--build-dir", str(build), "--quiet"]) == 0
    assert (build / "train" / "checkpoint.pt").stat().st_mtime_ns == before
