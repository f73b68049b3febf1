"""Files that hold finished work: checked for writing before the work, written whole, verified on read.

A run that trains for an hour and then finds its output folder read-only has
lost an hour.  So every writer in course_lib first calls
:func:`check_writable` (before the work), writes through :func:`write_safely`
(a temporary file renamed into place, so a reader never sees half a file; if
even that fails, the work is kept in the temporary folder and the warning
names where), and a file of tensors carries a SHA-256 of its contents
(:func:`save_verified` / :func:`load_verified`), so that a flipped bit is
refused with the file's name instead of loading as a slightly different model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from course_lib.engine._checks import check_type, shown
from course_lib.engine.data import tensor_digest

__all__ = ["check_path", "check_writable", "write_safely", "content_digest", "save_verified", "load_verified", "DIGEST_KEY"]

_SCALARS = (str, int, float, bool, type(None))  # what JSON writes exactly
DIGEST_KEY = "sha256"  # the key under which save_verified stores the digest of everything else in the file


def check_writable(path, name: str = "path") -> Path:
    """``path`` as a Path, once it is sure a file can be written there; else a ValueError naming ``name`` and the reason.

    Creates the missing folders and writes (then removes) a probe file in the
    folder, so a read-only folder, a file where a folder should be, or a
    folder where the file should be is found before any work, not after.
    """
    check_path(path, name)
    if str(path) in ("", ".") or str(path).endswith(("/", os.sep)):
        raise ValueError(f"{name} must name a file, got {str(path)!r} (a folder)")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder: pass the path of a file inside it")
    folder = path.parent
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{name} {str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe", delete=True)
        probe.close()
    except OSError as error:
        raise ValueError(f"{name} {str(path)!r} cannot be written ({error.strerror or error}): choose another place") from None
    return path


def check_path(path, name: str = "path") -> None:
    """TypeError unless ``path`` is a str or a path-like object (the one type check of every file argument)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or pathlib.Path), got {shown(path)}")


def write_safely(path, write: Callable[[Path], None], what: str = "the results") -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``; return the path written.

    If the folder went away, became read-only or filled up during the work,
    the work is not lost: it is written to the system's temporary folder
    instead (one file per target, replaced by the next save) and a warning
    names that file.  Temporary files left beside ``path`` by a killed process
    are removed.
    """
    check_path(path)
    if not callable(write):
        raise TypeError(f"write must be a function that writes a file at the path it is given, got {shown(write)}")
    path = Path(path)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(part)
        os.replace(part, path)  # atomic: a reader never sees half a file
    except OSError as error:
        failed = error
    else:
        _remove_parts_of_dead_processes(path)
        return path
    finally:
        if part.parent.is_dir():
            part.unlink(missing_ok=True)
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    kept = Path(tempfile.gettempdir()) / "course_lib-kept" / f"{path.stem}-{where}{path.suffix}"
    kept.parent.mkdir(exist_ok=True)
    write(kept)
    warnings.warn(f"could not write {what} to {str(path)!r} ({failed.strerror or failed}); they are kept in {kept}", stacklevel=2)
    return kept


def _remove_parts_of_dead_processes(path: Path) -> None:
    """Remove ``.<name>.<pid>.part`` files beside ``path`` whose process is gone (killed mid-write): each may be a whole checkpoint."""
    for part in path.parent.glob(f".{path.name}.*.part"):
        pid = part.name[len(path.name) + 2:-len(".part")]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def content_digest(value) -> str:
    """SHA-256 over a nest of dicts, lists, tensors, strings and numbers: the same contents, the same digest, bit for bit."""
    digest = hashlib.sha256()

    def feed(item) -> None:
        if isinstance(item, torch.Tensor):
            tensor_digest(item, digest)
        elif isinstance(item, dict):
            digest.update(b"{%d" % len(item))
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode() + b":")
                feed(item[key])
        elif isinstance(item, (list, tuple)) and all(type(e) in _SCALARS for e in item):
            # one call for a history's long lists; JSON keeps 1, 1.0 and true apart and floats exact
            digest.update(f"{type(item).__name__}=".encode() + json.dumps(item).encode())
        elif isinstance(item, (list, tuple)):
            digest.update(b"[%d" % len(item))
            for element in item:
                feed(element)
        elif isinstance(item, (str, bytes, int, float, bool, type(None))):
            digest.update(f"{type(item).__name__}:{item!r};".encode())
        else:  # an object's repr may hold its address: the same contents would not give the same digest
            raise TypeError(f"content_digest takes tensors, dicts, lists, strings, bytes and numbers, got {shown(item)}")

    feed(value)
    return digest.hexdigest()


def save_verified(content: dict, path, what: str = "the checkpoint") -> Path:
    """``torch.save`` of ``content`` plus the SHA-256 of its contents under ``"sha256"``, written through :func:`write_safely`."""
    check_type("content", content, dict, "a dict of what the file holds")
    if DIGEST_KEY in content:
        raise ValueError(f"content must not hold the key {DIGEST_KEY!r}: the file's own digest is stored under it")
    stored = {**content, DIGEST_KEY: content_digest(content)}
    def write(file: Path) -> None:
        with open(file, "wb") as handle:  # through Python's file: a full disk or a lost folder is an OSError, which write_safely handles
            torch.save(stored, handle)

    return write_safely(path, write, what)


def load_verified(path, what: str = "checkpoint") -> dict:
    """The contents saved by :func:`save_verified`, once their SHA-256 matches; else a ValueError naming the file.

    A file that torch cannot read, that holds no digest (written by another
    version), or whose contents changed since they were written (a flipped
    bit, a truncated copy) is refused with the reason.
    """
    check_path(path)
    path = Path(path)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ValueError(
            f"{what} {str(path)!r} cannot be read ({type(error).__name__}: {' '.join(str(error).split())[:200]}): the file "
            "is empty, truncated, damaged or not a course_lib file"
        ) from None
    if not isinstance(stored, dict) or DIGEST_KEY not in stored:
        format_ = f" (format {stored['format']})" if isinstance(stored, dict) and "format" in stored else ""
        raise ValueError(f"{what} {str(path)!r} carries no SHA-256 of its contents: it was written by an older "
                         f"course_lib{format_} or by something else. Delete it to start afresh, or pass another path")
    content = {key: value for key, value in stored.items() if key != DIGEST_KEY}
    if content_digest(content) != stored[DIGEST_KEY]:
        raise ValueError(
            f"{what} {str(path)!r} is damaged: its contents no longer match the SHA-256 written with them "
            "(a flipped bit or a bad copy); delete it and run again"
        )
    return content
