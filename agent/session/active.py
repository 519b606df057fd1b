"""Is a remote session running? A lock file the session runner holds while it runs.

The session runner (``Session.run``) takes an exclusive, non-blocking OS lock on
``<state dir>/session.lock`` for as long as the session lasts; the self-updater (agent/update)
asks ``session_active()`` before it starts and again right before it installs. An OS lock, not a
PID file: it is released by the kernel when the process ends, however it ends (crash, kill -9,
power loss), so a stale file never blocks updates forever. POSIX ``fcntl.flock``; Windows
``msvcrt.locking`` on the first byte.

Fail closed for the updater: when the state cannot be read (the directory is unwritable, the lock
call fails for another reason), ``session_active`` says True and no update starts. Fail open for
the session: when the lock cannot be taken, the session still runs (a remote session matters more
than an update) and the reason is logged.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from agent.core.paths import state_dir

log = logging.getLogger("agent.session")
LOCK_NAME = "session.lock"
_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK)


def lock_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / LOCK_NAME


def _try_lock(fd: int) -> bool:
    """True when this process now holds the lock; False when another one does."""
    if os.name == "nt":
        msvcrt = importlib.import_module("msvcrt")
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
        return True
    fcntl = importlib.import_module("fcntl")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if os.name == "nt":
        msvcrt = importlib.import_module("msvcrt")
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl = importlib.import_module("fcntl")
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, 0o600)


@contextlib.contextmanager
def hold(path: Path | None = None) -> Iterator[bool]:
    """Hold the session lock while the block runs; yields whether it was taken."""
    target = path or lock_path()
    fd: int | None = None
    taken = False
    try:
        fd = _open(target)
        taken = _try_lock(fd)
        if not taken:
            log.info("session lock %s already held (another session runs)", target)
    except OSError as exc:
        log.warning("session lock %s not taken (%s): the session runs anyway", target, exc)
    try:
        yield taken
    finally:
        if fd is not None:
            if taken:
                _unlock(fd)
            os.close(fd)


def session_active(path: Path | None = None) -> bool:
    """True while a session runner holds the lock, or when that cannot be told (fail closed)."""
    target = path or lock_path()
    try:
        fd = _open(target)
    except OSError as exc:
        log.warning("session lock %s unreadable (%s): treated as a running session", target, exc)
        return True
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    except OSError as exc:
        log.warning("session lock %s: %s: treated as a running session", target, exc)
        return True
    finally:
        os.close(fd)
