"""cached_build: a build is reused by key, lands under an absolute path (the simulators run it from other
working directories), and a failed build leaves nothing that looks finished."""

from __future__ import annotations

import sys

import pytest

from sbnn.hls.build_cache import BUILD_LOG, cached_build


def _populate(work):
    (work / "src.txt").write_text("hello")


def _error(work, res):
    return RuntimeError(f"build failed in {work}: {res.returncode}")


COPY = [sys.executable, "-c", "import shutil; shutil.copy('src.txt', 'product')"]


def test_builds_once_then_reuses(tmp_path):
    path, built = cached_build(tmp_path, "k1", "product", _populate, COPY, _error)
    assert built and path.read_text() == "hello" and path == tmp_path / "k1" / "product"
    path2, built2 = cached_build(tmp_path, "k1", "product", _populate, [sys.executable, "-c", "raise SystemExit(1)"],
                                 _error)
    assert path2 == path and not built2


def test_relative_base_gives_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, _ = cached_build("rel/cache", "k2", "product", _populate, COPY, _error)
    assert path.is_absolute() and path == tmp_path / "rel" / "cache" / "k2" / "product" and path.is_file()


def test_failed_build_leaves_no_finished_folder(tmp_path):
    with pytest.raises(RuntimeError, match="build failed"):
        cached_build(tmp_path, "k3", "product", _populate, [sys.executable, "-c", "raise SystemExit(3)"], _error)
    assert not (tmp_path / "k3").exists()


def test_build_output_goes_to_the_log_not_the_console(tmp_path, capfd):
    noisy = [sys.executable, "-c", "import sys; print('compiler chatter'); sys.stderr.write('a warning'); "
             "open('product', 'w').close()"]
    path, _ = cached_build(tmp_path, "k4", "product", _populate, noisy, _error)
    assert capfd.readouterr() == ("", "")
    assert (path.parent / BUILD_LOG).read_text() == "compiler chatter\na warning"
    with pytest.raises(RuntimeError):
        cached_build(tmp_path, "k5", "product", _populate, [sys.executable, "-c", "print('why'); raise SystemExit(2)"],
                     _error)
    failed = [p for p in tmp_path.glob("k5.tmp*/" + BUILD_LOG)]
    assert len(failed) == 1 and failed[0].read_text() == "why\n", "a failed build keeps its whole output"
