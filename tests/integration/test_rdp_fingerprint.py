"""``byod-admin rdp-fingerprint HOST:PORT`` against a real xrdp (tests/integration/xrdp_server.py).

The fingerprint printed must be the SHA-256 of the certificate xrdp is configured with, as
``openssl x509 -fingerprint -sha256`` reads it from that file; a port that is not RDP (a real
HTTP server), a listener that never answers, and a closed port each end with exit 1 and one line
on stderr naming the address and the reason; a malformed address is exit 2. No traceback.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, require_tool
from tests.integration import xrdp_server

pytestmark = [pytest.mark.real]


def _admin(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-c", "import sys; from admin.cli import main; "
                          "sys.exit(main())", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=timeout, check=False, env={"PATH": "/usr/bin:/bin",
                                                            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                                                            "BYOD_AGENT_LANG": "en"})
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    return res


def _openssl_sha256(cert: Path) -> str:
    require_tool("openssl")
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint",
                          "-sha256"], capture_output=True, text=True, timeout=30, check=True)
    # "sha256 Fingerprint=AB:CD:..." (OpenSSL 3; 1.1 wrote "SHA256 Fingerprint=")
    return out.stdout.strip().split("=", 1)[1].lower()


def test_the_fingerprint_is_the_certificate_xrdp_is_configured_with(tmp_path: Path) -> None:
    with xrdp_server.running(tmp_path) as rdp:
        res = _admin("rdp-fingerprint", f"127.0.0.1:{rdp.port}")
    assert res.returncode == 0, res.stdout + res.stderr
    printed = res.stdout.splitlines()[0]
    expected = _openssl_sha256(tmp_path / "cert.pem")
    assert printed == expected
    assert printed.replace(":", "") == rdp.cert_sha256  # the same, from the test PKI
    assert "server_cert_sha256" in res.stdout  # the hint says where it goes


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@contextlib.contextmanager
def _banner_server(banner: bytes) -> Iterator[int]:
    """A service that speaks first, as SSH does (the banner shape of Debian 12's OpenSSH)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(banner)
                conn.settimeout(2)
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_port_that_is_not_rdp_says_so_with_exit_1() -> None:
    with _banner_server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n") as port:
        res = _admin("rdp-fingerprint", f"127.0.0.1:{port}")
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout == ""
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1
    assert f"Could not read the RDP certificate of 127.0.0.1:{port}" in line
    assert "does not answer as an RDP server" in line


def test_an_http_port_waits_for_a_line_and_is_bounded_by_the_timeout() -> None:
    """A real HTTP server waits for a request line the X.224 request never ends: --timeout."""
    with _http_server() as port:
        started = time.monotonic()
        res = _admin("rdp-fingerprint", f"127.0.0.1:{port}", "--timeout", "1.5")
        took = time.monotonic() - started
    assert res.returncode == 1, res.stdout + res.stderr
    assert took < 15, took
    assert f"127.0.0.1:{port}: timed out" in res.stderr, res.stderr


def test_a_closed_port_and_a_bad_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: refused
        port = s.getsockname()[1]
        res = _admin("rdp-fingerprint", f"127.0.0.1:{port}")
    assert res.returncode == 1 and "refused" in res.stderr.lower(), res.stderr
    bad = _admin("rdp-fingerprint", "no-port-here")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert bad.stderr.strip() and bad.stdout == ""
