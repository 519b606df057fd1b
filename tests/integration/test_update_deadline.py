"""A slow-loris update server: every download has a wall-clock deadline enforced inside the read.

The server is the real TUF repository of test_tuf_update.py (made by ``byod-admin update-repo``,
served over HTTPS on loopback), except that the release archive is sent one byte every 0.5 s:
each byte arrives well inside the fetcher's 15 s socket timeout, so only the deadline (agent/core/
netdeadline.py, shared with the policy fetch) can end it. Before, the fetcher looked at the clock
only between 256 KiB chunks and this download would have run for hours.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from admin import update_repo
from admin.update_repo import signer_for
from agent.core import i18n
from agent.update.client import run_check
from agent.update.model import Outcome
from testkit import pki
from tests.integration.test_tuf_update import NOW, World, said

pytestmark = [pytest.mark.real]

TRICKLE_S = 0.5
DEADLINE_S = 3.0


class _Trickle(http.server.SimpleHTTPRequestHandler):
    """Serves the repository; the files whose name contains ``slow`` one byte at a time."""

    slow: str = "\0"  # a substring of the paths to trickle; set per server
    stop: threading.Event

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.slow not in self.path:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        for i in range(len(data)):
            if self.stop.wait(TRICKLE_S):
                return
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:  # the client cut the connection: what the test wants
                return


@contextlib.contextmanager
def trickling_server(root: Path, ca: pki.Pair, slow: str) -> Iterator[int]:
    pair = pki.server_pair(ca, "localhost")
    cert = root.parent / "server.pem"
    cert.write_bytes(pair.cert_pem + pair.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert)
    stop = threading.Event()
    handler = type("H", (_Trickle,), {"slow": slow, "stop": stop})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def slow_world(tmp_path: Path) -> Iterator[World]:
    served = tmp_path / "www"
    roots = [signer_for(Ed25519PrivateKey.generate())]
    online = {r: signer_for(Ed25519PrivateKey.generate()) for r in update_repo.ONLINE}
    repo = update_repo.init(served, roots, 1, dict(online), now=NOW)
    ca = pki.make_ca("Update Test CA")
    with trickling_server(served, ca, slow="1.2.0-linux.tar.gz") as port:
        yield World(tmp_path, ca, port, [], Ed25519PrivateKey.generate(), roots, online,
                    repo, (served / "metadata" / "1.root.json").read_bytes(),
                    tmp_path / "state" / "session.lock")


def test_a_trickled_download_is_cut_at_the_deadline_and_the_running_version_stays(
        slow_world: World) -> None:
    world = slow_world
    world.publish("1.1.0")  # served at full speed: installs, the "running" version
    first = run_check(world.config("1.0.0"))
    assert first.outcome is Outcome.INSTALLED, first.detail
    world.publish("1.2.0")  # its archive (about 200 bytes) comes one byte every 0.5 s
    cfg = world.config("1.1.0")
    cfg.deadline_s = DEADLINE_S
    started = time.monotonic()
    result = run_check(cfg)
    took = time.monotonic() - started
    assert result.outcome is Outcome.TOO_SLOW, result.detail
    # The metadata before it came fast; the archive alone had the whole deadline. Cut at the
    # deadline (plus the fast metadata and a loaded 2-core machine), not after ~100 s of bytes.
    assert DEADLINE_S <= took < DEADLINE_S + 5, took
    assert "SlowRetrievalError" in result.detail and "3 s" in result.detail
    assert world.current() == "1.1.0"  # the running version stays
    said(result.outcome, result.message)
    for lang in i18n.LANGS:
        assert "3" in i18n.render(result.message, lang)  # says how long it waited
    en = i18n.render(result.message, "en")
    assert "too slowly" in en and "current version keeps running" in en


def test_a_trickled_metadata_file_is_cut_too(tmp_path: Path) -> None:
    """The deadline covers metadata the same way: timestamp.json trickled, the check ends."""
    served = tmp_path / "www"
    roots = [signer_for(Ed25519PrivateKey.generate())]
    online = {r: signer_for(Ed25519PrivateKey.generate()) for r in update_repo.ONLINE}
    repo = update_repo.init(served, roots, 1, dict(online), now=NOW)
    ca = pki.make_ca("Update Test CA")
    with trickling_server(served, ca, slow="timestamp.json") as port:
        world = World(tmp_path, ca, port, [], Ed25519PrivateKey.generate(), roots, online,
                      repo, (served / "metadata" / "1.root.json").read_bytes(),
                      tmp_path / "state" / "session.lock")
        world.publish("1.1.0")
        cfg = world.config("1.0.0")
        cfg.deadline_s = 2.0
        started = time.monotonic()
        result = run_check(cfg)
        took = time.monotonic() - started
    assert result.outcome is Outcome.TOO_SLOW, result.detail
    assert 2.0 <= took < 2.0 + 5, took
    assert world.current() is None
