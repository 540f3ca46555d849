"""Atomic writes: a reader (or a run resumed after a crash) sees the old file or folder or the new
one, never a half-written one. Every file and folder this package writes goes through here.

A file is written to a temporary name in the same folder, flushed and fsync'ed, then renamed over
the target (os.replace is atomic on POSIX). A folder is built under a temporary name; the old one
(if any) is renamed aside, the new one renamed into place, then the old one deleted: a crash in
between leaves the old folder as `.<name>.old`, the new one complete, or both.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    with suppress(OSError):  # (not every file system lets a folder be opened)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, **kwargs))


@contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it becomes `path`.

    replace=False: if `path` exists by then (another process built the same thing first), the
    new folder is discarded and the existing one kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if not replace:
            with suppress(OSError):  # (another process stored the same folder first: keep it)
                tmp.rename(path)
            return
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        _fsync_dir(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
