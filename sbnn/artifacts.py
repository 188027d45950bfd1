"""Reading sbnn's own files back, and checking output paths, with one-line errors instead of tracebacks.

A build or compile directory can hold a file cut short (a full disk, a copy interrupted, an edit by hand);
reading it must name the file and say what to do, never show a JSON or protobuf traceback. Output paths are
checked before any work starts, so a run does not fail at its very end on a path it could never write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx

from sbnn.errors import UserError


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and ``os.replace``: a reader (or a run
    interrupted half-way) sees the old file or the whole new one, never a file cut short."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_json_artifact(path, what: str, fix: str):
    """The JSON in ``path`` (an artifact sbnn wrote); a missing, truncated or non-JSON file is a UserError
    naming ``what`` and ``path`` and saying ``fix`` (e.g. "rerun with --start-step compile")."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {p} is missing; {fix}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{what} {p} is truncated or corrupt ({_reason(exc)}); {fix}") from None


def read_json_object(path, what: str, fix: str) -> dict:
    """:func:`read_json_artifact` of a file that must hold a JSON object."""
    data = read_json_artifact(path, what, fix)
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} holds {type(data).__name__}, not a JSON object; {fix}")
    return data


def check_onnx_artifact(path, what: str, fix: str) -> None:
    """``path`` parses as an ONNX model (a truncated or empty file does not); a UserError otherwise."""
    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except FileNotFoundError:
        raise UserError(f"{what} {p} not found; {fix}") from None
    except Exception as exc:  # noqa: BLE001  (protobuf raises several types for a file cut short)
        raise UserError(f"{what} {p} is truncated or not an ONNX model ({_reason(exc)}); {fix}") from None
    if not model.graph.node:
        raise UserError(f"{what} {p} holds no graph (empty or truncated file); {fix}")


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path, flag: str) -> None:
    """``path`` can be a directory sbnn writes into: it is one (or can be made) and is writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p} is a file, not a directory; pass a directory path (nothing was changed)")
    _check_ancestor_writable(p, flag)


def check_output_file(path, flag: str, *, makes_folder: bool = False) -> None:
    """``path`` can be written as a file: it is not a directory and its folder exists (or, ``makes_folder``:
    can be made) and is writable."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {p} is a directory; pass the path of a file to write (nothing was changed)")
    if not makes_folder and not p.parent.is_dir():
        raise UserError(f"{flag} {p}: folder {p.parent} does not exist; create it or pass another path")
    _check_ancestor_writable(p, flag)


def _check_ancestor_writable(p: Path, flag: str) -> None:
    if p.exists():   # an existing file or directory: written in place
        target = p
    else:            # a new path: made under its first existing ancestor, which must be a writable directory
        target = _first_existing(p.resolve() if p.is_absolute() else Path.cwd() / p)
        if not target.is_dir():
            raise UserError(f"{flag} {p}: {target} is a file, so no directory can be made there; pass another path")
    if not os.access(target, os.W_OK | os.X_OK if target.is_dir() else os.W_OK):
        raise UserError(f"{flag} {p}: no permission to write {target}; pass a path you can write")
