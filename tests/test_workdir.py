"""sbnn.workdir: ownership marker, refusal of foreign directories, cleaning only listed artifacts, the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from sbnn import workdir
from sbnn.errors import UserError


def test_claim_new_and_empty_dirs(tmp_path):
    d = workdir.claim(tmp_path / "new" / "b", "compile")
    assert workdir.owner_kind(d) == "compile" and workdir.artifacts(d) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    workdir.claim(empty, "build")
    assert workdir.owner_kind(empty) == "build"


def test_foreign_non_empty_dir_is_refused_untouched(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("user data")
    with pytest.raises(UserError) as e:
        workdir.claim(d, "compile")
    assert "\n" not in str(e.value) and "not created by sbnn" in str(e.value)
    with pytest.raises(UserError):
        workdir.clear(d, "compile")
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"], "nothing written into a foreign directory"


def test_other_kind_is_refused(tmp_path):
    d = workdir.claim(tmp_path / "b", "build")
    workdir.record(d, ["options.json"])
    (d / "options.json").write_text("{}")
    with pytest.raises(UserError, match="holds sbnn's build output, not a compile directory"):
        workdir.claim(d, "compile")


def test_clear_removes_only_listed_artifacts(tmp_path):
    d = workdir.claim(tmp_path / "b", "compile")
    with workdir.Writing(d, "compile", declared=["step_01_a.onnx"]):
        (d / "step_01_a.onnx").write_text("x")
        (d / "partitions").mkdir()
        (d / "partitions" / "p.onnx").write_text("y")
    assert set(workdir.artifacts(d)) == {"step_01_a.onnx", "partitions"}
    (d / "user.txt").write_text("keep me")   # put there by hand after the run
    workdir.clear(d, "compile")
    assert sorted(p.name for p in d.iterdir() if p.name != workdir.MARKER) == ["user.txt"]
    assert workdir.artifacts(d) == []


def test_writing_lists_partial_output_of_a_failed_step(tmp_path):
    d = workdir.claim(tmp_path / "b", "stitch")
    with pytest.raises(RuntimeError):
        with workdir.Writing(d, "stitch", declared=["stitch.json"]):
            (d / "rtl").mkdir()
            raise RuntimeError("crash mid-step")
    assert set(workdir.artifacts(d)) == {"stitch.json", "rtl"}
    workdir.clear(d, "stitch")
    assert not (d / "rtl").exists()


def test_declared_name_that_is_a_user_file_is_refused(tmp_path):
    d = workdir.claim(tmp_path / "b", "rtlsim")
    (d / "rtlsim.json").write_text("the user's own file")
    with pytest.raises(UserError, match="was not written by sbnn"):
        with workdir.Writing(d, "rtlsim", declared=["rtlsim.json"]):
            pass
    assert (d / "rtlsim.json").read_text() == "the user's own file"


def test_input_inside_what_would_be_removed_stops_before_removal(tmp_path):
    d = workdir.claim(tmp_path / "b", "compile")
    with workdir.Writing(d, "compile", declared=["step_01_a.onnx", "sub"]):
        (d / "step_01_a.onnx").write_text("x")
        (d / "sub").mkdir()
        (d / "sub" / "model.onnx").write_text("input")
    with pytest.raises(UserError) as e:
        workdir.clear(d, "compile", inputs=[d / "sub" / "model.onnx"])
    assert "lies inside" in str(e.value) and "\n" not in str(e.value)
    assert (d / "step_01_a.onnx").exists() and (d / "sub" / "model.onnx").exists(), "nothing removed"


def test_marker_with_bad_names_never_escapes_the_directory(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    d = workdir.claim(tmp_path / "b", "compile")
    (d / workdir.MARKER).write_text('{"owner": "sbnn", "format": 1, "kind": "compile", '
                                    '"artifacts": ["../outside.txt", "/etc", ".."]}')
    workdir.clear(d, "compile")
    assert outside.read_text() == "keep"


_HOLDER = textwrap.dedent("""
    import sys, time
    from sbnn.workdir import DirLock
    lock = DirLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _holder(path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_lock_second_process_gets_in_use_error(tmp_path):
    d = tmp_path / "b"
    holder = _holder(d, 60)
    try:
        with pytest.raises(UserError) as e:
            workdir.DirLock(d).acquire()
        msg = str(e.value)
        assert f"in use by PID {holder.pid}" in msg and "\n" not in msg
    finally:
        holder.kill()
        holder.wait()
    # the OS released the dead holder's lock: the next run takes it over and notes the stale PID
    with workdir.DirLock(d) as lock:
        assert lock.stale_pid == holder.pid
        assert (d / workdir.LOCK).read_text().strip() == str(os.getpid())


def test_stale_lock_file_from_dead_process_is_taken_over(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (d / workdir.LOCK).write_text(f"{dead.pid}\n")
    with workdir.DirLock(d) as lock:
        assert lock.stale_pid == dead.pid
    with workdir.DirLock(d):   # released again after use
        pass


def test_lock_is_released_after_the_holder_ends(tmp_path):
    d = tmp_path / "b"
    holder = _holder(d, 0.5)
    holder.wait(timeout=30)
    t0 = time.time()
    with workdir.DirLock(d):
        pass
    assert time.time() - t0 < 5


def test_locked_claim_leaves_a_foreign_dir_as_found(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "data.csv").write_text("1,2")
    with pytest.raises(UserError):
        workdir.locked_claim(d, "build")
    assert sorted(p.name for p in d.iterdir()) == ["data.csv"]


def test_locked_claim_as_context_manager_holds_one_lock(tmp_path):
    with workdir.locked_claim(tmp_path / "b", "build") as lock:
        assert lock.fd is not None and workdir.owner_kind(tmp_path / "b") == "build"
        with pytest.raises(UserError, match="in use by PID"):
            workdir.DirLock(tmp_path / "b").acquire()
    with workdir.DirLock(tmp_path / "b"):
        pass
