"""whoami/icacls from the tray: no console window, and output decoded without ever raising
(issue 17, finding 6). The bytes are what a Japanese Windows prints in its OEM code page (cp932)
for ``whoami /user /fo csv /nh``: reconstructed from the documented CSV shape ("DOMAIN\\user","SID")
with a Japanese user name; a real recording is not in any public source we found."""

from __future__ import annotations

import subprocess
from typing import Any

from agent.keystore import files

WHOAMI_CP932 = '"DESKTOP-1\\\\山田太郎","S-1-5-21-1004336348-1177238915-682003330-1001"\r\n'.encode(
    "cp932")


class _Recorder:
    def __init__(self, stdout: bytes) -> None:
        self.stdout = stdout
        self.kwargs: dict[str, Any] = {}

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.kwargs = kwargs
        return subprocess.CompletedProcess(argv, 0, self.stdout, b"")


def test_no_console_window_and_bytes_not_text_mode() -> None:
    run = _Recorder(WHOAMI_CP932)
    out = files._run(["whoami", "/user", "/fo", "csv", "/nh"], run=run, windows=True,
                     encoding="cp932")
    assert run.kwargs["creationflags"] & files.CREATE_NO_WINDOW
    assert "text" not in run.kwargs and "encoding" not in run.kwargs
    assert "山田太郎" in out and "S-1-5-21-" in out


def test_wrong_code_page_never_raises() -> None:
    # UTF-8 mode used to decode cp932 strictly: UnicodeDecodeError escaped the OSError handling.
    out = files._run(["whoami"], run=_Recorder(WHOAMI_CP932), windows=True, encoding="utf-8")
    assert "S-1-5-21-1004336348" in out and "\ufffd" in out
    assert files.decode_console(b"\xff\xfe", "no-such-codec") == "\ufffd\ufffd"


def test_console_encoding_is_oem_on_windows_only() -> None:
    import sys
    assert files.console_encoding() == ("oem" if sys.platform == "win32" else "utf-8")
