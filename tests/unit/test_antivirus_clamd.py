"""clamd: config, VERSION answers recorded from a real clamd, the socket client on real sockets."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from agent.core.errors import ParseError, ProbeTimeout, SourceMissing
from agent.posture.checks.antivirus import clamd
from tests.conftest import FIXTURES

LINUX = FIXTURES / "antivirus" / "linux"


def test_fresh_answer_recorded_from_real_clamd() -> None:
    text = (LINUX / "clamd_version_fresh.bin").read_bytes().decode()
    v = clamd.parse_version_reply(text)
    assert v == clamd.ClamdVersion("1.4.6", 27500, datetime(2026, 11, 27, 12, 38, 16))


@pytest.mark.parametrize("name", ["clamd_version_no_cvd.bin", "clamdscan_version_no_daemon.txt"])
def test_engine_only_answer_has_no_database(name: str) -> None:
    v = clamd.parse_version_reply((LINUX / name).read_bytes().decode())
    assert v.engine == "1.4.6" and v.db_version is None and v.db_date is None


def test_ctime_pads_single_digit_days_with_a_space() -> None:
    v = clamd.parse_version_reply("ClamAV 1.0.7/27500/Wed Nov  5 09:27:03 2026\n")
    assert v.db_date == datetime(2026, 11, 5, 9, 27, 3)


@pytest.mark.parametrize("text", [
    "", "PONG", "ClamAV", "ClamAV 1.0.7/27500/", "ClamAV 1.0.7/27500/Mi Nov 26 09:27:03 2026",
    "ClamAV 1.0.7/27500/Wed 11月 26 09:27:03 2026", "ClamAV 1.0.7/27500/Wed Feb 30 09:27:03 2026",
    "\x00\xff garbage"])
def test_bad_answers_are_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        clamd.parse_version_reply(text)


@pytest.mark.parametrize(("cmdline", "want"), [
    (("clamd",), None),
    (("/usr/sbin/clamd", "-c", "/tmp/x.conf"), "/tmp/x.conf"),
    (("clamd", "-c/tmp/x.conf"), "/tmp/x.conf"),
    (("clamd", "--config-file=/etc/c.conf", "--foreground"), "/etc/c.conf"),
    (("clamd", "--foreground", "--config-file", "/etc/c.conf"), "/etc/c.conf"),
    (("clamd", "-c"), None),
])
def test_config_from_cmdline(cmdline: tuple[str, ...], want: str | None) -> None:
    assert clamd.config_path_from_cmdline(cmdline) == want


def test_debian_default_config_uses_the_local_socket() -> None:
    text = (LINUX / "clamd.conf.debian12").read_text()
    assert clamd.parse_config(text) == clamd.ClamdAddress("unix", path="/var/run/clamav/clamd.ctl")


@pytest.mark.parametrize(("text", "want"), [
    ("TCPSocket 3310\n", clamd.ClamdAddress("tcp", host="127.0.0.1", port=3310)),
    ("TCPSocket 3310\nTCPAddr 192.0.2.7\nTCPAddr ::1\n", clamd.ClamdAddress("tcp", host="::1",
                                                                         port=3310)),
    ("TCPAddr localhost\nTCPSocket 3311\n", clamd.ClamdAddress("tcp", host="localhost",
                                                               port=3311)),
    ("TCPSocket 3310\nLocalSocket /run/c.sock\n", clamd.ClamdAddress("unix", path="/run/c.sock")),
])
def test_socket_choice(text: str, want: clamd.ClamdAddress) -> None:
    assert clamd.parse_config(text) == want


def test_tcp_on_a_public_address_only_is_not_asked() -> None:
    with pytest.raises(SourceMissing):
        clamd.parse_config("TCPSocket 3310\nTCPAddr 192.0.2.7\n")


@pytest.mark.parametrize("text", ["", "# LocalSocket /x\n", "TCPSocket many\n",
                                  "LocalSocket run/c.sock\n", "\x00\xff garbage {[\n"])
def test_config_without_usable_socket(text: str) -> None:
    with pytest.raises(ParseError):
        clamd.parse_config(text)


# The socket client against real UNIX sockets served by a thread.

Handler = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], clamd.ClamdAddress]]:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no UNIX sockets on this OS (clamd there listens on TCP)")
    servers: list[socket.socket] = []
    # A short directory: macOS limits a socket path to 104 bytes, pytest's tmp_path is long.
    short = Path(tempfile.mkdtemp(prefix="clamd-", dir="/tmp"))

    def start(handler: Handler) -> clamd.ClamdAddress:
        path = str(short / "clamd.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        servers.append(srv)

        def loop() -> None:
            conn, _ = srv.accept()
            with conn, contextlib.suppress(OSError):  # the client may hang up first
                handler(conn)

        threading.Thread(target=loop, daemon=True).start()
        return clamd.ClamdAddress("unix", path=path)

    yield start
    for s in servers:
        s.close()
    shutil.rmtree(short, ignore_errors=True)


def test_query_reads_until_nul(serve: Callable[[Handler], clamd.ClamdAddress]) -> None:
    def handler(conn: socket.socket) -> None:
        assert conn.recv(64) == b"zVERSION\0"
        conn.sendall(b"ClamAV 1.4.6/27500/")  # split answers are joined
        time.sleep(0.05)
        conn.sendall(b"Fri Nov 27 12:38:16 2026\0")
        time.sleep(0.5)  # keeps the connection open: the NUL ends the answer

    address = serve(handler)
    assert clamd.query_version(address, 2.0) == "ClamAV 1.4.6/27500/Fri Nov 27 12:38:16 2026"


def test_silent_daemon_times_out(serve: Callable[[Handler], clamd.ClamdAddress]) -> None:
    address = serve(lambda conn: time.sleep(1.5))
    start = time.monotonic()
    with pytest.raises(ProbeTimeout):
        clamd.query_version(address, 0.3)
    assert time.monotonic() - start < 1.0


def test_trickling_daemon_still_ends_at_the_deadline(
        serve: Callable[[Handler], clamd.ClamdAddress]) -> None:
    def handler(conn: socket.socket) -> None:
        for _ in range(20):
            conn.sendall(b"x")
            time.sleep(0.1)

    address = serve(handler)
    start = time.monotonic()
    with pytest.raises(ProbeTimeout):
        clamd.query_version(address, 0.5)
    assert time.monotonic() - start < 1.2


@pytest.mark.skipif(sys.platform == "win32", reason="no UNIX sockets on Windows")
def test_missing_socket_is_source_missing(tmp_path: Path) -> None:
    with pytest.raises(SourceMissing):
        clamd.query_version(clamd.ClamdAddress("unix", path=str(tmp_path / "none.sock")), 1.0)


def test_refused_tcp_is_source_missing() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(SourceMissing):
        clamd.query_version(clamd.ClamdAddress("tcp", host="127.0.0.1", port=port), 1.0)
