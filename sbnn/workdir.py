"""Directories that sbnn writes into: ownership, safe cleaning and one writer at a time.

Rules (every command that writes a build, compile, stage or stitch directory follows them):

* **Ownership.** sbnn owns a directory when it holds the marker ``.sbnn-owned.json``,
  written when sbnn first claims the directory (new, or empty). The marker
  names the directory's kind (``build``, ``compile``, ``stitch``, ...) and lists
  the top-level entries sbnn wrote there (its *artifacts*).
* **Refusal.** A non-empty directory without the marker, or one owned for
  another kind, is refused with a one-line :class:`UserError`; nothing in it is
  touched.
* **Cleaning** removes the listed artifacts and nothing else: a file the user
  put into an owned directory stays. An input of the run that lies inside
  what is about to be removed stops the run before anything is deleted.
* **One writer.** :class:`DirLock` holds an OS-level lock (``fcntl.flock`` on
  ``.sbnn.lock``) for the whole run. A second process gets a one-line "in use
  by PID ..." error. The OS drops the lock when its process dies, so a lock
  file left by a dead process is taken over (and its PID replaced) silently.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path

from sbnn.errors import UserError

MARKER = ".sbnn-owned.json"
LOCK = ".sbnn.lock"
OWNER = "sbnn"
FORMAT = 1
_OURS = {MARKER, LOCK}


def _entries(path: Path) -> set[str]:
    """Top-level names in ``path`` other than the marker and the lock file."""
    return {p.name for p in path.iterdir()} - _OURS if path.is_dir() else set()


def read_marker(path: str | Path) -> dict | None:
    """The marker of an sbnn-owned directory, or None (no marker, unreadable, or not sbnn's)."""
    p = Path(path) / MARKER
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("owner") != OWNER or not isinstance(data.get("artifacts"), list):
        return None
    return data


def _write_marker(path: Path, data: dict) -> None:
    tmp = path / (MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path / MARKER)


def owner_kind(path: str | Path) -> str | None:
    """The kind sbnn recorded for ``path``, or None when sbnn does not own it."""
    m = read_marker(path)
    return m.get("kind") if m else None


def check_claimable(path: str | Path, kind: str, what: str = "directory") -> None:
    """Raise :class:`UserError` when sbnn may not write ``path`` as ``kind`` (changes nothing).

    Claimable: missing, empty, owned by sbnn for ``kind``, or owned for another
    kind with nothing listed and nothing else in it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a directory; pass a new or empty directory")
    entries = _entries(path)
    marker = read_marker(path)
    if marker is None:
        if entries:
            raise UserError(f"{what} {path} is not empty and was not created by sbnn (no {MARKER}); "
                            "pass a new or empty directory, or move its files away")
        return
    if marker.get("kind") != kind and (entries or marker["artifacts"]):
        raise UserError(f"{what} {path} holds sbnn's {marker.get('kind')} output, not a {kind} directory; "
                        "pass another directory")


def claim(path: str | Path, kind: str, what: str = "directory") -> Path:
    """Create or adopt ``path`` as an sbnn-owned directory of ``kind``; refuse (one line) what is not ours."""
    path = Path(path)
    check_claimable(path, kind, what)
    path.mkdir(parents=True, exist_ok=True)
    marker = read_marker(path)
    if marker is None or marker.get("kind") != kind:
        _write_marker(path, {"owner": OWNER, "format": FORMAT, "kind": kind, "artifacts": []})
    return path


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and name not in _OURS


def artifacts(path: str | Path) -> list[str]:
    """What sbnn lists as written by itself in ``path`` (empty when it does not own it)."""
    m = read_marker(path)
    return [a for a in m["artifacts"] if isinstance(a, str) and _plain_name(a)] if m else []


def record(path: str | Path, names) -> None:
    """Add top-level names to the artifact list of the owned directory ``path`` (before writing them)."""
    path = Path(path)
    m = read_marker(path)
    if m is None:
        raise UserError(f"{path} is not owned by sbnn; cannot record {sorted(names)} there")  # a bug, not user input
    listed = [a for a in m["artifacts"] if isinstance(a, str)]
    new = [n for n in names if _plain_name(n) and n not in listed]
    if new:
        m["artifacts"] = listed + sorted(new)
        _write_marker(path, m)


def check_inputs_outside(inputs, targets, what: str = "run") -> None:
    """One-line error when an input path lies inside (or is) one of the ``targets`` about to be removed."""
    resolved = [Path(t).resolve() for t in targets]
    for inp in inputs:
        if inp is None:
            continue
        ip = Path(inp).resolve()
        for t in resolved:
            if ip == t or ip.is_relative_to(t):
                raise UserError(f"input {inp} lies inside {t}, which this {what} would remove; move the input "
                                "out of the build directory (or pass another --build-dir)")


def clear(path: str | Path, kind: str, *, inputs=(), what: str = "directory") -> Path:
    """Claim ``path`` and remove the artifacts sbnn listed there (only those); returns the path.

    ``inputs``: files the run reads; one of them inside a listed artifact stops
    the run with a one-line error before anything is removed.
    """
    path = Path(path)
    check_claimable(path, kind, what)
    listed = [path / a for a in artifacts(path)]
    check_inputs_outside(inputs, listed, what=f"clean-up of {path}")
    claim(path, kind, what)
    for p in listed:
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
    m = read_marker(path)
    m["artifacts"] = []
    _write_marker(path, m)
    return path


class Writing:
    """Context manager around a step that writes into the owned directory ``path``.

    ``declared`` names are listed before the step runs (so that a crash leaves
    them removable) and must not already exist unlisted (a user's file of the
    same name is never overwritten). Whatever new entries appear while the step
    runs are listed on exit, failure included.
    """

    def __init__(self, path: str | Path, kind: str, declared=(), what: str = "directory"):
        self.path, self.kind, self.declared, self.what = Path(path), kind, list(declared), what

    def __enter__(self) -> Path:
        claim(self.path, self.kind, self.what)
        listed = set(artifacts(self.path))
        for name in self.declared:
            if name not in listed and (self.path / name).exists():
                raise UserError(f"{self.path / name} exists and was not written by sbnn; move it away, "
                                "sbnn writes a file of that name there")
        self.before = _entries(self.path) - set(self.declared)
        record(self.path, self.declared)
        return self.path

    def __exit__(self, *exc) -> bool:
        if self.path.is_dir() and read_marker(self.path) is not None:
            record(self.path, _entries(self.path) - self.before)
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DirLock:
    """Exclusive ``fcntl.flock`` on ``<path>/.sbnn.lock`` for one run (a context manager).

    The lock file holds the owner's PID. A second process fails at once with a
    one-line :class:`UserError` naming that PID; a lock file whose process has
    died holds no lock (the OS released it), so the next run takes it over and
    records ``stale_pid``.
    """

    def __init__(self, path: str | Path, what: str = "build directory", hint: str = "pass another --build-dir"):
        self.path, self.what, self.hint = Path(path), what, hint
        self.fd: int | None = None
        self.stale_pid: int | None = None

    def _read_pid(self, fd: int) -> int | None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text.split()[0]) if text else None
        except (OSError, ValueError, IndexError):
            return None

    def acquire(self) -> DirLock:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = self._read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            who = f"PID {pid}" if pid else "another process"
            raise UserError(f"{self.what} {self.path} is in use by {who}; wait for it to finish or "
                            f"{self.hint}") from None
        old = self._read_pid(fd)
        if old is not None and old != os.getpid():
            self.stale_pid = old if not _pid_alive(old) else None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> DirLock:
        return self if self.fd is not None else self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def locked_claim(path: str | Path, kind: str, what: str = "directory",
                 hint: str = "pass another --build-dir") -> DirLock:
    """Check ``path`` is ours (or new/empty) before touching it, lock it, re-check under the lock, claim it.

    Returns the held :class:`DirLock` (release it, or use it as a context manager).
    """
    path = Path(path)
    check_claimable(path, kind, what)   # refuse a foreign directory before creating anything in it
    created = not path.exists()
    lock_existed = (path / LOCK).exists()
    lock = DirLock(path, what, hint).acquire()
    try:
        claim(path, kind, what)
    except BaseException:
        lock.release()
        if not lock_existed and not created:
            (path / LOCK).unlink(missing_ok=True)   # leave a directory that is not ours as we found it
        raise
    return lock
