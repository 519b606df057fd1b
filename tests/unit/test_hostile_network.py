"""Issue 18 class 5 (network half) and class 8 (hostile EST server): every read has a wall-clock
deadline, every reply a size cap.

A real TLS server on 127.0.0.1 (Python ssl, certificate from testkit.pki) that trickles its
answer one byte at a time (slow-loris) during the headers or the body. Before issue 18
``policy update`` checked its deadline only between 64 KiB chunks and EST read whole replies with
no deadline, so each of these cases hung until the server gave up.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.core import netdeadline
from agent.keystore import est
from agent.keystore import tls as tlsclient
from agent.keystore.errors import KeystoreError
from agent.policy.errors import FetchFailed
from agent.policy.fetch import fetch_update
from agent.policy.model import UpdateSource
from testkit.pki import CA, server_pair
from tests.unit.test_policy_support import NOW, state_in

SERVER = server_pair(CA, "localhost")
Behaviour = Callable[[ssl.SSLSocket], None]


def _trickle(prefix: bytes, forever: bytes, every: float = 0.05) -> Behaviour:
    def run(conn: ssl.SSLSocket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.recv(65536)  # the request
            conn.sendall(prefix)
            for _ in range(100_000):
                conn.sendall(forever)
                time.sleep(every)
    return run


def _answer(status: str, headers: dict[str, str], body: bytes) -> Behaviour:
    def run(conn: ssl.SSLSocket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.recv(65536)
            head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            conn.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            time.sleep(0.2)
    return run


def _serve_one(behaviour: Behaviour, conn: ssl.SSLSocket) -> None:
    try:
        behaviour(conn)
    finally:
        conn.close()


@contextlib.contextmanager
def serving(behaviour: Behaviour, tmp: Path) -> Iterator[int]:
    (tmp / "srv.pem").write_bytes(SERVER.cert_pem + SERVER.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "srv.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            threading.Thread(target=_serve_one, args=(behaviour, conn), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def _bounded(fn: Callable[[], object], limit: float) -> tuple[BaseException | None, float]:
    """Run ``fn`` in a thread; (its exception, seconds). Fails the test if it is still running."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            box[0] = exc

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still waiting after {limit} s: no wall-clock deadline"
    return box[0], time.monotonic() - start


@pytest.mark.parametrize("behaviour", [
    _trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"),  # body
    _trickle(b"HTTP/1.1 200 OK\r\n", b"X"),  # headers that never end
], ids=["slow-body", "slow-headers"])
def test_policy_update_is_cut_at_its_deadline(tmp_path: Path, behaviour: Behaviour) -> None:
    with serving(behaviour, tmp_path) as port:
        source = UpdateSource(f"https://localhost:{port}/policy.toml", CA.cert_pem.decode())
        exc, took = _bounded(lambda: fetch_update(
            source, state_in(tmp_path / "state"), [], now=NOW, timeouts=(2.0, 2.0),
            total_deadline_s=1.0), limit=8.0)
    assert isinstance(exc, FetchFailed), exc
    assert exc.message.key == "policy.fetch.timeout"
    assert took < 4.0


@pytest.mark.parametrize(("behaviour", "key"), [
    (_trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/pkcs7-mime\r\n"
              b"Content-Length: 9000\r\n\r\n", b"A"), "cert.error.est_timeout"),
    (_trickle(b"HTTP/1.1 200 OK\r\n", b"X"), "cert.error.est_timeout"),
    (_answer("200 OK", {"Content-Type": "application/pkcs7-mime"}, b"A" * (300 * 1024)),
     "cert.error.est_bad_reply"),
    (_answer("302 Found", {"Location": "https://evil.example/"}, b""), "cert.error.est_http"),
], ids=["slow-pkcs7", "slow-headers", "oversized-pkcs7", "redirect"])
def test_hostile_est_server(tmp_path: Path, behaviour: Behaviour, key: str,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(est, "TOTAL_DEADLINE_S", 1.0)
    with serving(behaviour, tmp_path) as port:
        sess = tlsclient.session(tlsclient.client_context(CA.cert_pem.decode()))
        exc, took = _bounded(lambda: est.cacerts(sess, f"https://localhost:{port}{est.WELL_KNOWN}"),
                             limit=8.0)
    assert isinstance(exc, KeystoreError), exc
    assert exc.message.key == key
    assert took < 4.0


def test_deadline_cuts_a_plain_socket() -> None:
    a, b = socket.socketpair()
    with a, b, netdeadline.Deadline(0.3) as guard:
        guard.watch(a)
        start = time.monotonic()
        assert a.recv(10) == b""  # the shutdown wakes the blocked recv
        assert guard.fired and time.monotonic() - start < 2.0


@pytest.mark.parametrize("behaviour", [
    _trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n", b"{"),
    _trickle(b"HTTP/1.1 200 OK\r\n", b"X"),
], ids=["slow-body", "slow-headers"])
def test_verifier_client_is_cut_at_its_deadline(tmp_path: Path, behaviour: Behaviour,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.attest import client

    monkeypatch.setattr(client, "TOTAL_DEADLINE_S", 1.0)
    with serving(behaviour, tmp_path) as port:
        endpoint = client.VerifierEndpoint(f"https://localhost:{port}", CA.cert_pem.decode())
        ctx = tlsclient.client_context(CA.cert_pem.decode())
        exc, took = _bounded(lambda: client._post(endpoint, ctx, "/v1/nonce", b"{}"), limit=8.0)
    assert isinstance(exc, client.VerifierError) and exc.code == "unreachable", exc
    assert took < 4.0


def test_clock_reference_is_cut_at_its_deadline(tmp_path: Path) -> None:
    from agent.core.errors import ProbeTimeout
    from agent.policy.clock import https_date

    with serving(_trickle(b"HTTP/1.1 200 OK\r\n", b"X"), tmp_path) as port:
        exc, took = _bounded(lambda: https_date(f"https://localhost:{port}/",
                                                CA.cert_pem.decode(), 0.5), limit=8.0)
    assert isinstance(exc, ProbeTimeout), exc
    assert took < 3.0
