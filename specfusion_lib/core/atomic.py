"""Atomic file writes: the one helper every module uses so nothing half-written stays on disk.

A file is written to a temporary sibling (``.<name>.<random>.tmp``, same folder so the rename
stays on one file system), flushed and fsync'ed, made world-readable (``mkstemp`` creates
0600 files; our outputs are shared data) and renamed over the target with :func:`os.replace`.
An exception (or Ctrl-C) during the write removes the temporary file and leaves any previous
version of the target untouched. Stale temporary files of a killed process match
``.*`` + :data:`TEMP_SUFFIX` and may be removed by the caller.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["TEMP_SUFFIX", "atomic_write", "atomic_write_bytes", "atomic_write_text"]

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically through ``write(handle)`` on a binary handle.

    Args:
        path: Final path; its folder is created if needed.
        write: Called once with the open binary handle of the temporary file.

    Returns:
        The final path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
