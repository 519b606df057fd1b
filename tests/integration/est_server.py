"""A small RFC 7030 (EST) server over real TLS, as a test peer for the agent's EST client.

Serves ``/.well-known/est/cacerts``, ``/simpleenroll`` (HTTP Basic: a fixed account, or a one-time
code sent as the password and burnt on first use) and ``/simplereenroll`` (the TLS client
certificate must chain to the CA and carry the CSR's subject). Replies are base64 DER PKCS#7
certs-only (RFC 7030 §4.1.3, §4.2.3), built with cryptography's pkcs7.serialize_certificates.
``malformed=True`` answers with base64 of bytes that are not PKCS#7.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from testkit.pki import Pair

PREFIX = "/.well-known/est"


@dataclass
class EstState:
    ca: Pair
    codes: set[str] = field(default_factory=set)
    accounts: dict[str, str] = field(default_factory=dict)
    lifetime: dt.timedelta = dt.timedelta(days=90)
    malformed: bool = False
    log: list[tuple[str, int, str]] = field(default_factory=list)  # (path, status, client subject)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return (x509.CertificateBuilder().subject_name(csr.subject)
                .issuer_name(self.ca.cert.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + self.lifetime)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self.ca.key, hashes.SHA256()))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output quiet
        return

    def _reply(self, status: int, body: bytes = b"", ctype: str = "text/plain",
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _certs(self, certs: list[x509.Certificate]) -> None:
        der = (b"\x30\x03\x02\x01\x00not pkcs7" if self.server.state.malformed
               else pkcs7.serialize_certificates(certs, serialization.Encoding.DER))
        self._reply(200, base64.encodebytes(der), "application/pkcs7-mime; smime-type=certs-only",
                    {"Content-Transfer-Encoding": "base64"})

    def _client_subject(self) -> str:
        der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else ""

    def _log(self, status: int) -> None:
        with self.server.state.lock:
            self.server.state.log.append((self.path, status, self._client_subject()))

    def do_GET(self) -> None:
        if self.path == PREFIX + "/cacerts":
            self._log(200)
            self._certs([self.server.state.ca.cert])
        else:
            self._log(404)
            self._reply(404)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        state = self.server.state
        with state.lock:
            if user in state.accounts and state.accounts[user] == password:
                return True
            if password in state.codes:
                state.codes.discard(password)  # one-time
                return True
        return False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path not in (PREFIX + "/simpleenroll", PREFIX + "/simplereenroll"):
            self._log(404)
            return self._reply(404)
        reenroll = self.path.endswith("/simplereenroll")
        if reenroll and not self._client_subject():
            self._log(401)
            return self._reply(401, b"client certificate required")
        if not reenroll and not self._authorized():
            self._log(401)
            return self._reply(401, b"unauthorized",
                               extra={"WWW-Authenticate": 'Basic realm="est"'})
        try:
            csr = x509.load_der_x509_csr(base64.b64decode(b"".join(body.split())))
        except (binascii.Error, ValueError):
            self._log(400)
            return self._reply(400, b"bad CSR")
        if not csr.is_signature_valid or (
                reenroll and csr.subject.rfc4514_string() != self._client_subject()):
            self._log(400)
            return self._reply(400, b"bad CSR")
        self._log(200)
        return self._certs([self.server.state.issue(csr)])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: EstState, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.socket = context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that refuses our certificate is an expected event in these tests


@contextmanager
def serving(state: EstState, server: Pair, workdir: Path) -> Iterator[str]:
    """Run the server in a thread; yields its base URL (https://localhost:PORT)."""
    (workdir / "est-server.pem").write_bytes(server.cert_pem)
    (workdir / "est-server.key").write_bytes(server.key_pem())  # the peer's own key, not HOME
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(workdir / "est-server.pem", workdir / "est-server.key")
    ctx.verify_mode = ssl.CERT_OPTIONAL  # enroll needs none, reenroll checks it is there
    ctx.load_verify_locations(cadata=state.ca.cert_pem.decode())
    httpd = _Server(state, ctx)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
