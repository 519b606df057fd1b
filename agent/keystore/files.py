"""Owner-only files written atomically: a temp file in the same directory, then os.replace.

POSIX: directory 0700, files 0600 from the moment they exist (os.open with the mode, never chmod
after writing). Windows ignores those modes, so the directory and each file get an explicit ACL
that grants only the current user's SID full control, with inheritance removed (icacls).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

_IS_WINDOWS = sys.platform == "win32"


# CREATE_NO_WINDOW: a console program started from the tray (no console of its own) would
# otherwise flash a console window. The constant exists only in Windows builds of Python.
CREATE_NO_WINDOW = 0x08000000


def console_encoding() -> str:
    """whoami and icacls write in the console's OEM code page (cp932 on Japanese Windows), not in
    the locale encoding Python's text mode (UTF-8 mode) would assume; Python names it "oem"."""
    try:
        codecs.lookup("oem")
    except LookupError:  # not Windows
        return "utf-8"
    return "oem"


def decode_console(data: bytes, encoding: str) -> str:
    """Never raises: a user name the code page cannot express becomes U+FFFD, not an error."""
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _run(argv: list[str], *, run: Any = subprocess.run, windows: bool = _IS_WINDOWS,
         encoding: str | None = None) -> str:
    # No shell; C-locale-independent output only (whoami CSV columns, icacls exit status).
    flags = CREATE_NO_WINDOW if windows else 0
    proc = run(argv, capture_output=True, timeout=15, check=True, creationflags=flags,
               stdin=subprocess.DEVNULL)
    return decode_console(proc.stdout, encoding or console_encoding())


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
            # A random name, created with O_EXCL: nothing planted in advance can be opened or
            # block the write (a predictable name could be pre-created as a link; issue 18).
            temp = directory / f".{name}.{secrets.token_hex(8)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
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
