"""Owner-only files written atomically: a temp file in the same directory, then os.replace.

POSIX: directory 0700, files 0600 from the moment they exist (os.open with the mode, never chmod
after writing). Windows ignores those modes, so the directory and each file get an explicit ACL
that grants only the current user's SID full control, with inheritance removed (icacls).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

_IS_WINDOWS = sys.platform == "win32"


def _run(argv: list[str]) -> str:
    # No shell; C-locale-independent output only (whoami CSV columns, icacls exit status).
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=True)
    return proc.stdout


def _current_sid() -> str:
    row = next(csv.reader(io.StringIO(_run(["whoami", "/user", "/fo", "csv", "/nh"]))))
    sid = row[-1].strip()
    if not sid.startswith("S-1-"):
        raise OSError("whoami /user did not print a SID")
    return sid


def restrict_to_owner(path: Path, *, directory: bool = False) -> None:
    """Owner-only access. Raises OSError when it cannot be guaranteed."""
    if not _IS_WINDOWS:
        path.chmod(0o700 if directory else 0o600)
        return
    grant = f"*{_current_sid()}:(OI)(CI)F" if directory else f"*{_current_sid()}:F"
    try:
        _run(["icacls", str(path), "/inheritance:r", "/grant:r", grant])
    except (subprocess.SubprocessError, FileNotFoundError) as exc:
        raise OSError(f"icacls failed on {path}") from exc


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    restrict_to_owner(path, directory=True)
    return path


@contextlib.contextmanager
def staged(directory: Path, files: Mapping[str, bytes]) -> Iterator[dict[str, Path]]:
    """Write every file to a private temp name; the caller commits with :func:`commit`.

    When the block raises, every temp file is removed and no final name was touched.
    """
    temps: dict[str, Path] = {}
    try:
        for name, data in files.items():
            temp = directory / f".{name}.{os.getpid()}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o600)
            temps[name] = temp
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            restrict_to_owner(temp)
        yield temps
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _put(directory: Path, name: str, data: bytes) -> None:
    with staged(directory, {name: data}) as temps:
        os.replace(temps[name], directory / name)


def commit(directory: Path, temps: Mapping[str, Path]) -> None:
    """Move every staged file to its final name; on a failure, put the earlier ones back.

    Several files cannot be replaced in one atomic step, so the previous contents (an encrypted
    key, public certificates) are kept in memory until the last rename succeeded.
    """
    done: list[tuple[str, bytes | None]] = []
    try:
        for name, temp in temps.items():
            final = directory / name
            previous = final.read_bytes() if final.is_file() else None
            os.replace(temp, final)
            done.append((name, previous))
    except OSError:
        for name, previous in reversed(done):
            with contextlib.suppress(OSError):
                if previous is None:
                    (directory / name).unlink()
                else:
                    _put(directory, name, previous)
        raise


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
