"""cached_build: a build is reused by key, lands under an absolute path (the simulators run it from other
working directories), a failed build leaves nothing that looks finished, and no temporary folder outlives
the call (failed or interrupted)."""

from __future__ import annotations

import sys

import pytest

from sbnn.hls.build_cache import BUILD_LOG, cached_build, failed_log


def _populate(work):
    (work / "src.txt").write_text("hello")


def _error(log, res):
    return RuntimeError(f"build failed ({res.returncode}), output in {log}")


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k3.failed.log"], "the temporary build folder is removed"


def test_interrupted_build_leaves_no_temporary_folder(tmp_path):
    def interrupted(work):
        (work / "src.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_build(tmp_path, "k6", "product", interrupted, COPY, _error)
    assert list(tmp_path.iterdir()) == []


def test_build_output_goes_to_the_log_not_the_console(tmp_path, capfd):
    noisy = [sys.executable, "-c", "import sys; print('compiler chatter'); sys.stderr.write('a warning'); "
             "open('product', 'w').close()"]
    path, _ = cached_build(tmp_path, "k4", "product", _populate, noisy, _error)
    assert capfd.readouterr() == ("", "")
    assert (path.parent / BUILD_LOG).read_text() == "compiler chatter\na warning"
    with pytest.raises(RuntimeError):
        cached_build(tmp_path, "k5", "product", _populate, [sys.executable, "-c", "print('why'); raise SystemExit(2)"],
                     _error)
    assert failed_log(tmp_path, "k5").read_text() == "why\n", "a failed build keeps its whole output"
    assert not list(tmp_path.glob("k5.tmp*"))
    cached_build(tmp_path, "k5", "product", _populate, COPY, _error)
    assert not failed_log(tmp_path, "k5").exists(), "a later successful build removes the old failure's log"


def test_finished_build_keeps_product_and_sources_but_not_intermediates(tmp_path):
    """Object files and precompiled headers go once the product is linked (a Verilated model's headers alone are
    ~145 MB); the product, the sources and the log stay, even when the product's own name looks like one."""
    objects = [sys.executable, "-c", "import pathlib, shutil; pathlib.Path('obj').mkdir(); "
               "[pathlib.Path('obj', n).write_text('x') for n in ('a.o', 'm.h.gch', 'lib.a')]; "
               "shutil.copy('src.txt', 'obj/tb.o')"]
    path, built = cached_build(tmp_path, "k7", "obj/tb.o", _populate, objects, _error)
    assert built and path.read_text() == "hello"
    left = sorted(p.relative_to(path.parents[1]).as_posix() for p in path.parents[1].rglob("*") if p.is_file())
    assert left == [BUILD_LOG, "obj/tb.o", "src.txt"]
