"""Policy updates and the clock reference against a real local HTTPS server (Python ssl).

PKI made with ``cryptography`` per test module: a CA, a server certificate for localhost and
127.0.0.1, and a foreign CA that must be rejected. The server runs in a thread on 127.0.0.1.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.core.errors import SourceMissing
from agent.policy import clock
from agent.policy.errors import FetchFailed, PolicyRefused
from agent.policy.fetch import fetch_update
from agent.policy.loader import resolve_active
from agent.policy.model import UpdateSource
from tests.unit.test_policy_support import NOW, Signer, policy_text, state_in

SIGNER = Signer()
OTHER = Signer("other")


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                 tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = tmp / "server.pem", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)  # a throwaway test key in the test's own tmp dir
    return cert_file, key_file


class Site:
    """What the server answers, per path; tests change it between requests."""

    def __init__(self) -> None:
        self.body = policy_text(2).encode()
        self.sig = SIGNER.sign(self.body)
        self.etag = '"v2"'
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.release = threading.Event()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def _send(self, code: int, body: bytes, length: bool = True,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._send(200, b"", extra={"Date": self.date_time_string()})

        def do_GET(self) -> None:
            site.requests.append((self.command, self.path, dict(self.headers)))
            path = self.path
            if path.startswith("/500/"):
                self._send(500, b"oops")
            elif path.startswith("/stall/"):
                self.send_response(200)
                self.send_header("Content-Length", "5000")
                self.end_headers()
                self.wfile.write(b"id = ")
                self.wfile.flush()
                site.release.wait(10)
            elif path == "/big/policy.toml":  # no Content-Length: the cap must hold while reading
                self._send(200, b"#" * (2 << 20), length=False)
            elif path == "/bigdeclared/policy.toml":
                self._send(200, b"#" * ((1 << 20) + 1))
            elif path.endswith("/policy.toml.sig"):
                sig = OTHER.sign(site.body) if path.startswith("/badsig/") else site.sig
                self._send(200, sig)
            elif path.endswith("/policy.toml"):
                if self.headers.get("If-None-Match") == site.etag:
                    self._send(304, b"", extra={"ETag": site.etag})
                else:
                    self._send(200, site.body, extra={
                        "ETag": site.etag, "Last-Modified": "Fri, 27 Nov 2026 00:00:00 GMT"})
            else:
                self._send(404, b"")

    return Handler


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("Test policy server CA")
    _, foreign = _ca("Foreign CA")
    cert, key = _server_cert(ca_key, ca, tmp)
    return {"ca_pem": ca.public_bytes(serialization.Encoding.PEM).decode(),
            "foreign_pem": foreign.public_bytes(serialization.Encoding.PEM).decode(),
            "cert": cert, "key": key}


@pytest.fixture
def server(pki: dict[str, object]) -> Iterator[tuple[str, Site]]:
    site = Site()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    httpd.daemon_threads = True
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}", site
    finally:
        site.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _update(base: str, pki: dict[str, object], prefix: str = "", ca: str = "ca_pem"
            ) -> UpdateSource:
    return UpdateSource(f"{base}/{prefix}policy.toml", str(pki[ca]))


def test_success_then_not_modified_then_offline_uses_cache(
        server: tuple[str, Site], pki: dict[str, object], tmp_path: Path) -> None:
    base, site = server
    state = state_in(tmp_path)
    result = fetch_update(_update(base, pki), state, [SIGNER.anchor], now=NOW)
    assert result.changed and result.loaded is not None
    assert (result.loaded.source, result.loaded.policy.serial) == ("update", 2)
    assert state.cache_policy(SIGNER.anchor.key_id, "test-city").read_bytes() == site.body
    # conditional request: the server answers 304 and nothing changes
    again = fetch_update(_update(base, pki), state, [SIGNER.anchor], now=NOW)
    assert not again.changed
    assert site.requests[-1][2].get("If-None-Match") == '"v2"'
    assert site.requests[-1][2].get("If-Modified-Since") == "Fri, 27 Nov 2026 00:00:00 GMT"
    # offline (nothing installed here): the cached copy stays in force until it expires
    empty = tmp_path / "installed"
    empty.mkdir()
    res = resolve_active(state, [SIGNER.anchor], now=NOW, installed=empty)
    assert res.loaded is not None and res.loaded.source == "cache"
    expired = resolve_active(state, [SIGNER.anchor], now=datetime(2027, 1, 2, tzinfo=UTC),
                             installed=empty)
    assert expired.loaded is None and expired.refused[0].message.key == "policy.refused.expired"


def test_wrong_ca_is_refused_by_tls(server: tuple[str, Site], pki: dict[str, object],
                                   tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(FetchFailed) as info:
        fetch_update(_update(base, pki, ca="foreign_pem"), state_in(tmp_path), [SIGNER.anchor],
                     now=NOW)
    assert info.value.message.key == "policy.fetch.tls"


def test_http_500(server: tuple[str, Site], pki: dict[str, object], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(FetchFailed) as info:
        fetch_update(_update(base, pki, "500/"), state_in(tmp_path), [SIGNER.anchor], now=NOW)
    assert info.value.message.key == "policy.fetch.http_status"
    assert info.value.message.params["status"] == 500


def test_stalled_server_times_out(server: tuple[str, Site], pki: dict[str, object],
                                  tmp_path: Path) -> None:
    base, _ = server
    start = datetime.now(UTC)
    with pytest.raises(FetchFailed) as info:
        fetch_update(_update(base, pki, "stall/"), state_in(tmp_path), [SIGNER.anchor], now=NOW,
                     timeouts=(2.0, 0.5))
    assert info.value.message.key == "policy.fetch.timeout"
    assert datetime.now(UTC) - start < timedelta(seconds=5)


@pytest.mark.parametrize("prefix", ["big/", "bigdeclared/"])
def test_oversized_body_is_refused(server: tuple[str, Site], pki: dict[str, object],
                                   tmp_path: Path, prefix: str) -> None:
    base, _ = server
    state = state_in(tmp_path)
    with pytest.raises(PolicyRefused) as info:
        fetch_update(_update(base, pki, prefix), state, [SIGNER.anchor], now=NOW)
    assert info.value.reason == "too_large"
    assert not state.cache_policy(SIGNER.anchor.key_id, "test-city").exists()
    assert state.refusals()[0].source == "update"


def test_valid_body_with_bad_signature_keeps_last_good(
        server: tuple[str, Site], pki: dict[str, object], tmp_path: Path) -> None:
    base, site = server
    state = state_in(tmp_path)
    fetch_update(_update(base, pki), state, [SIGNER.anchor], now=NOW)
    good = state.cache_policy(SIGNER.anchor.key_id, "test-city").read_bytes()
    site.body = policy_text(3).encode()
    with pytest.raises(PolicyRefused) as info:
        fetch_update(_update(base, pki, "badsig/"), state, [SIGNER.anchor], now=NOW)
    assert info.value.reason == "unknown_signer"
    assert state.cache_policy(SIGNER.anchor.key_id, "test-city").read_bytes() == good
    assert state.refusals()[0].message.key == "policy.refused.unknown_signer"


def test_unreachable_server(pki: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(FetchFailed) as info:
        fetch_update(UpdateSource("https://127.0.0.1:9/policy.toml", str(pki["ca_pem"])),
                     state_in(tmp_path), [SIGNER.anchor], now=NOW, timeouts=(1.0, 1.0))
    assert info.value.message.key in ("policy.fetch.unreachable", "policy.fetch.timeout")


def test_clock_reference_over_real_tls(server: tuple[str, Site],
                                       pki: dict[str, object]) -> None:
    base, _ = server
    server_date, local = clock.https_date(base + "/", str(pki["ca_pem"]), 3.0)
    assert abs((local - server_date).total_seconds()) < 2.5
    with pytest.raises(SourceMissing):
        clock.https_date(base + "/", str(pki["foreign_pem"]), 3.0)


def test_scheduler_fetches_serial_n_plus_1_within_the_interval(
        server: tuple[str, Site], pki: dict[str, object], tmp_path: Path) -> None:
    """What `byod-agent check` and the tray call before every check (agent.policy.evaluate),
    with an injected clock, against the real HTTPS server: serial 2 at the first chance, then
    nothing until due, then serial 3 within one interval (24 h) of the last attempt."""
    from agent.policy.evaluate import policy_for_checks

    base, site = server
    update = (f'[update]\nurl = "{base}/policy.toml"\nca = """\n{pki["ca_pem"]}"""\n'
              "interval_hours = 24\n")
    installed = tmp_path / "installed"
    installed.mkdir()
    SIGNER.write(installed / "city.toml", policy_text(1, extra=update))
    site.body = policy_text(2, extra=update).encode()
    site.sig = SIGNER.sign(site.body)
    state = state_in(tmp_path)
    loaded, refreshed, _ = policy_for_checks(state, [SIGNER.anchor], NOW, installed=installed)
    assert refreshed is not None and refreshed.result == "updated"
    assert loaded.policy.serial == 2
    site.body, site.etag = policy_text(3, extra=update).encode(), '"v3"'
    site.sig = SIGNER.sign(site.body)
    count = len(site.requests)
    for hours in (1, 12, 17):  # before the earliest jittered due time (18 h)
        loaded, refreshed, _ = policy_for_checks(state, [SIGNER.anchor],
                                                 NOW + timedelta(hours=hours),
                                                 installed=installed)
        assert refreshed is not None and not refreshed.attempted
        assert loaded.policy.serial == 2
    assert len(site.requests) == count  # no request at all while not due
    loaded, refreshed, _ = policy_for_checks(state, [SIGNER.anchor],
                                             NOW + timedelta(hours=24), installed=installed)
    assert refreshed is not None and refreshed.result == "updated"
    assert loaded.policy.serial == 3
    assert site.requests[-2][2].get("If-None-Match") == '"v2"'  # conditional request
    # the next day the server has nothing new: 304, the contact is recorded
    loaded, refreshed, _ = policy_for_checks(state, [SIGNER.anchor],
                                             NOW + timedelta(hours=48), installed=installed)
    assert refreshed is not None and refreshed.result == "not_modified"
    assert refreshed.status.last_contact == NOW + timedelta(hours=48)
