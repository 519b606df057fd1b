"""Open files without following links, and only when they are what we expect.

The export reads the agent's own logs; the log writer appends to them. Both must refuse a file
someone swapped for a symlink (to a private file, to /etc/passwd), a hard link to someone else's
file, a FIFO (which blocks ``open`` and ``read`` forever) or a device, and a log directory that
is itself a link:

- POSIX: ``O_NOFOLLOW`` (a link as the last component fails with ELOOP), ``O_NONBLOCK`` at open
  (a FIFO opens without waiting for a writer; cleared again for regular files), then ``fstat`` on
  the open descriptor: a regular file, one link, owned by us. The directory is opened with
  ``O_DIRECTORY | O_NOFOLLOW`` and files are opened relative to it (``dir_fd``), so a directory
  swapped for a link after the check is not followed either.
- Windows: no ``O_NOFOLLOW``; ``os.lstat`` must show no ``FILE_ATTRIBUTE_REPARSE_POINT``
  (symlinks and junctions) and a regular file, and the opened file's ``fstat`` must be the same
  file (same index and volume) as the one checked.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_IS_WINDOWS = sys.platform == "win32"
_REPARSE = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)


class NotARegularFile(OSError):
    """A link, FIFO, device, directory, a file with other links, or a file someone else owns."""


def _is_reparse(st: os.stat_result) -> bool:
    return bool(getattr(st, "st_file_attributes", 0) & _REPARSE)


def _check_regular(st: os.stat_result, path: object, *, owner: bool) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(f"not a regular file: {path}")
    if st.st_nlink > 1:
        raise NotARegularFile(f"a file with {st.st_nlink} links: {path}")
    if owner and hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise NotARegularFile(f"not owned by this user: {path}")


def check_directory(path: Path) -> None:
    """A real directory (not a link or junction). Raises OSError otherwise."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or _is_reparse(st) or not stat.S_ISDIR(st.st_mode):
        raise NotARegularFile(f"not a real directory: {path}")


@contextlib.contextmanager
def directory(path: Path) -> Iterator[int | None]:
    """A descriptor of ``path`` opened without following a link (None on Windows)."""
    check_directory(path)
    if _IS_WINDOWS or not hasattr(os, "O_DIRECTORY"):
        yield None
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def open_fd(path: Path, flags: int, mode: int = 0o600, *, dir_fd: int | None = None,
            owner: bool = True) -> int:
    """``os.open`` that refuses links and anything but a regular file (see the module doc)."""
    target: str | Path = path.name if dir_fd is not None else path
    if _IS_WINDOWS:
        try:
            before = os.lstat(path)
        except FileNotFoundError:
            before = None
        if before is not None:
            if _is_reparse(before) or stat.S_ISLNK(before.st_mode):
                raise NotARegularFile(f"a link: {path}")
            _check_regular(before, path, owner=False)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0),
                     mode)
        try:
            after = os.fstat(fd)
            if before is not None and (after.st_ino, after.st_dev) != (before.st_ino,
                                                                        before.st_dev):
                raise NotARegularFile(f"replaced while opening: {path}")
            _check_regular(after, path, owner=False)
        except BaseException:
            os.close(fd)
            raise
        return fd
    fd = os.open(target, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                 mode, dir_fd=dir_fd)
    try:
        _check_regular(os.fstat(fd), path, owner=owner)
        os.set_blocking(fd, True)  # O_NONBLOCK was only for the open itself
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a regular file we own, in a real directory (links, FIFOs and
    devices refused: NotARegularFile, an OSError)."""
    with directory(path.parent) as dir_fd:
        fd = open_fd(path, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - limit))
        data = fh.read(limit)
    if size > limit:  # drop the partial first line
        data = data[data.find(b"\n") + 1:]
    return data


def open_append(path: Path, encoding: str = "utf-8") -> IO[str]:
    """Append to ``path`` (created 0600 when missing), never through a link."""
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding=encoding)
