"""OCSP for the user certificate against a real OpenSSL responder (verifier/ocsp.py).

The responder is OpenSSL's own (``openssl ocsp -index ... -rsigner ... -rkey ... -CA ...``),
answering each request the test's HTTP front on 127.0.0.1 receives with ``-reqin``/``-respout``.
Why not ``openssl ocsp -port``: OpenSSL 3.0.19 (installed) takes only a number there ("Can't
parse "127.0.0.1:P" as a number") and then listens on the wildcard address (recorded with
``ss -ltn``: ``*:P``), which the tests' loopback-only rule forbids; ``-url http://127.0.0.1:P``
binds the wildcard as well. The responder logic (index lookup, signing, nonce copy, nextUpdate)
is the same code either way.

The index lines follow OpenSSL's ``ca`` database format (V/R, expiry, revocation time, serial in
upper-case hex, file, subject), reconstructed from the ``openssl-ca(1)`` manual.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from testkit.verifier import load_user
from tests.conftest import require_tool
from tests.verifier.test_service import City, Clock, attest, body, nonce, refused
from verifier import db, demo, ocsp, pki
from verifier.assign import parse_csv
from verifier.config import ConfigError, load_config
from verifier.gateway import Gateway
from verifier.service import Verifier

pytestmark = pytest.mark.timeout(120)


def _openssl_time(t: dt.datetime) -> str:
    return t.strftime("%y%m%d%H%M%SZ")


def _serial(n: int) -> str:
    s = f"{n:X}"
    return s if len(s) % 2 == 0 else "0" + s


@dataclass
class Responder:
    """``openssl ocsp`` as a responder behind a 127.0.0.1 HTTP front; ``mode`` = openssl|silent."""

    root: Path
    signer: Path
    signer_key: Path
    ca: Path
    nmin: int | None = 5
    key_id: bool = False
    mode: str = "openssl"
    requests: int = 0
    last: bytes = b""
    server: http.server.ThreadingHTTPServer | None = None
    entries: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def add(self, cert: x509.Certificate, revoked_at: dt.datetime | None = None) -> None:
        subject = "/" + "/".join(a.rfc4514_string() for a in reversed(list(cert.subject)))
        if revoked_at is None:
            line = f"V\t{_openssl_time(cert.not_valid_after_utc)}\t\t"
        else:
            line = (f"R\t{_openssl_time(cert.not_valid_after_utc)}\t"
                    f"{_openssl_time(revoked_at)}\t")
        self.entries.append(f"{line}{_serial(cert.serial_number)}\tunknown\t{subject}")
        (self.root / "index.txt").write_text("\n".join(self.entries) + "\n", encoding="ascii")

    def answer(self, request_der: bytes) -> bytes:
        self.requests += 1
        with tempfile.TemporaryDirectory(dir=self.root) as work:
            req, resp = Path(work) / "req.der", Path(work) / "resp.der"
            req.write_bytes(request_der)
            cmd = ["openssl", "ocsp", "-index", str(self.root / "index.txt"),
                   "-rsigner", str(self.signer), "-rkey", str(self.signer_key),
                   "-CA", str(self.ca), "-reqin", str(req), "-respout", str(resp)]
            if self.nmin is not None:
                cmd += ["-nmin", str(self.nmin)]
            if self.key_id:
                cmd.append("-resp_key_id")
            subprocess.run(cmd, check=True, capture_output=True, timeout=20)
            self.last = resp.read_bytes()
            return self.last

    def start(self) -> Responder:
        (self.root / "index.txt").touch()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(min(length, 65536))
                if outer.mode == "silent":  # accepts, reads, never answers
                    time.sleep(15)
                    return
                out = outer.answer(data)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _responder_cert(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime,
                    *, ocsp_eku: bool = True) -> tuple[x509.Certificate,
                                                       ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_eku else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "DEMO OCSP")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


@dataclass
class OcspCity:
    city: City
    responder: Responder
    ca: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey


def _city_with_ocsp(tmp_path: Path, database_url: str, ocsp_toml: str,
                    clock: Clock | None = None) -> City:
    lay = demo.layout(tmp_path / "city", database_url=database_url, recheck_seconds=60,
                      grace_seconds=10)
    with lay.config.open("a", encoding="utf-8") as fh:
        fh.write("\n[ocsp]\n" + ocsp_toml + "\n")
    cfg = load_config(lay.config)
    db.upgrade(cfg.database_url)
    store = db.Store(db.make_engine(cfg.database_url))
    for a in parse_csv((lay.dir / "users.csv").read_text()):
        store.set_assignment(a)
    clock = clock or Clock(dt.datetime.now(dt.UTC))
    v = Verifier(cfg, store, Gateway(cfg.gateway), clock=clock)
    return City(lay, v, store, clock, load_user(lay, "userA", tmp_path),
                load_user(lay, "userB", tmp_path))


def _ca(lay_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca = x509.load_pem_x509_certificate((lay_dir / "city-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((lay_dir / "city-ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return ca, key


def _make(tmp_path: Path, database_url: str, *, ocsp_eku: bool = True, nmin: int | None = 5,
          key_id: bool = False, extra: str = "") -> Iterator[OcspCity]:
    require_tool("openssl")
    root = tmp_path / "ocsp"
    root.mkdir()
    responder = Responder(root, root / "signer.pem", root / "signer.key", root / "ca.pem",
                          nmin=nmin, key_id=key_id).start()
    try:
        city = _city_with_ocsp(tmp_path, database_url,
                               f'url = "{responder.url}"\ntimeout_seconds = 2\n' + extra)
        ca, ca_key = _ca(city.lay.dir)
        cert, key = _responder_cert(ca, ca_key, city.clock.now, ocsp_eku=ocsp_eku)
        responder.signer.write_bytes(pki.pem(cert))
        pki.write_private(responder.signer_key, pki.key_pem(key))
        responder.ca.write_bytes(pki.pem(ca))
        yield OcspCity(city, responder, ca, ca_key)
    finally:
        responder.stop()


@pytest.fixture
def oc(tmp_path: Path, database_url: str) -> Iterator[OcspCity]:
    yield from _make(tmp_path, database_url)


def test_good_answers_admit_and_are_cached_until_next_update(oc: OcspCity) -> None:
    c = oc.city
    oc.responder.add(c.a.cert)
    assert attest(c, c.a).status == 200
    asked = oc.responder.requests
    assert asked == 1  # nonce asked once; the attest used the cached good answer
    answer = x509_ocsp.load_der_ocsp_response(oc.responder.last)  # OpenSSL echoed our nonce
    assert len(answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce) == 16
    oc.responder.stop()  # nothing answers any more: the cache carries until nextUpdate
    assert attest(c, c.a).status == 200
    c.clock.now += dt.timedelta(minutes=6)  # past -nmin 5: the cache is dropped, fail closed
    out = c.verifier.nonce(c.a.der, b'{"v":1}')
    refused(out, "ocsp_unreachable", 503)


def test_revoked_is_refused_and_cuts(oc: OcspCity) -> None:
    c = oc.city
    oc.responder.add(c.b.cert)
    oc.responder.add(c.a.cert, revoked_at=c.clock.now - dt.timedelta(minutes=1))
    refused(c.verifier.nonce(c.a.der, b'{"v":1}'), "cert_revoked", 403)
    assert attest(c, c.b).status == 200  # B is good
    rows = c.store.live_sessions()
    assert [s.user for s in rows] == ["userB"]


def test_a_certificate_the_responder_does_not_know(oc: OcspCity) -> None:
    c = oc.city
    oc.responder.add(c.b.cert)  # A is not in the index: OpenSSL answers "unknown"
    refused(c.verifier.nonce(c.a.der, b'{"v":1}'), "ocsp_unknown", 403)


def test_a_stale_answer_is_refused(tmp_path: Path, database_url: str) -> None:
    for o in _make(tmp_path, database_url, nmin=1):
        c = o.city
        o.responder.add(c.a.cert)
        c.clock.now += dt.timedelta(minutes=2)  # the responder's nextUpdate (now + 1 min) passed
        refused(c.verifier.nonce(c.a.der, b'{"v":1}'), "ocsp_stale", 403)


def test_without_next_update_the_max_age_applies(tmp_path: Path, database_url: str) -> None:
    for o in _make(tmp_path, database_url, nmin=None, key_id=True, extra="max_age_seconds = 60\n"):
        c = o.city
        o.responder.add(c.a.cert)
        assert attest(c, c.a).status == 200  # byKey responder id, no nextUpdate: fresh enough
        assert o.responder.requests == 2  # nothing cached without nextUpdate
        c.clock.now += dt.timedelta(minutes=10)
        refused(c.verifier.nonce(c.a.der, b'{"v":1}'), "ocsp_stale", 403)


def test_a_responder_without_the_ocsp_signing_eku_is_not_trusted(tmp_path: Path,
                                                                  database_url: str) -> None:
    for o in _make(tmp_path, database_url, ocsp_eku=False):
        o.responder.add(o.city.a.cert)
        refused(o.city.verifier.nonce(o.city.a.der, b'{"v":1}'), "ocsp_invalid", 403)


def test_unreachable_fails_closed_within_the_deadline(oc: OcspCity) -> None:
    c = oc.city
    oc.responder.mode = "silent"  # accepts and reads, never answers
    t0 = time.monotonic()
    refused(c.verifier.nonce(c.a.der, b'{"v":1}'), "ocsp_unreachable", 503)
    assert time.monotonic() - t0 < 6  # timeout_seconds = 2 (+ slack on a busy machine)


def test_nothing_listening_with_soft_fail_falls_back_to_the_crl(tmp_path: Path,
                                                                 database_url: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = _city_with_ocsp(tmp_path, database_url, f'url = "http://127.0.0.1:{port}/"\n'
                        "timeout_seconds = 1\nsoft_fail = true\n")
    assert attest(c, c.a).status == 200  # soft fail: logged, the CRL still applies
    ca, ca_key = _ca(c.lay.dir)
    n = nonce(c, c.a)
    (c.lay.dir / "city-crl.pem").write_bytes(pki.crl_pem(
        pki.make_crl(ca, ca_key, [c.a.cert.serial_number], c.clock.now)))
    refused(c.verifier.attest(c.a.der, body(c.a, n)), "cert_revoked", 403)


# -- the pure checker on reconstructed responses (cryptography's OCSPResponseBuilder) ----------

def _built(cert: x509.Certificate, ca: x509.Certificate, key: ec.EllipticCurvePrivateKey,
           now: dt.datetime, *, nonce_value: bytes | None,
           signer: x509.Certificate | None = None) -> bytes:
    b = (x509_ocsp.OCSPResponseBuilder()
         .add_response(cert=cert, issuer=ca, algorithm=hashes.SHA1(),  # noqa: S303 - CertID
                       cert_status=x509_ocsp.OCSPCertStatus.GOOD, this_update=now,
                       next_update=now + dt.timedelta(minutes=5), revocation_time=None,
                       revocation_reason=None)
         .responder_id(x509_ocsp.OCSPResponderEncoding.HASH, signer or ca))
    if nonce_value is not None:
        b = b.add_extension(x509.OCSPNonce(nonce_value), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_pure_checks_on_built_responses(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = pki.make_ca("CA", now)
    cert, _ = pki.issue_leaf(ca, ca_key, "userA", now=now)
    other, _ = pki.issue_leaf(ca, ca_key, "userB", now=now)
    foreign, foreign_key = pki.make_ca("CA", now)  # same name, other key
    ok = ocsp.check_response(_built(cert, ca, ca_key, now, nonce_value=b"n" * 16), cert, ca,
                             nonce=b"n" * 16, now=now, max_age_seconds=60)
    assert ok.status == "good"
    cases = {
        "nonce": (_built(cert, ca, ca_key, now, nonce_value=b"x" * 16), cert),
        "other cert": (_built(other, ca, ca_key, now, nonce_value=None), cert),
        "foreign signer": (_built(cert, ca, foreign_key, now, nonce_value=None,
                                  signer=foreign), cert),
        "garbage": (b"\x30\x03\x0a\x01\x00", cert),
    }
    for name, (der, subject) in cases.items():
        with pytest.raises(ocsp.OcspError) as exc:
            ocsp.check_response(der, subject, ca, nonce=b"n" * 16, now=now, max_age_seconds=60)
        assert exc.value.code == "ocsp_invalid", name
    try_later = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(
        x509_ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER)
    with pytest.raises(ocsp.OcspError) as exc:
        ocsp.check_response(try_later, cert, ca, nonce=None, now=now, max_age_seconds=60)
    assert exc.value.code == "ocsp_unreachable"


def test_config_refuses_bad_ocsp_tables(tmp_path: Path) -> None:
    lay = demo.layout(tmp_path / "city")
    base = lay.config.read_text(encoding="utf-8")
    for bad in ('url = "ftp://x/"', 'url = "http://a b/"', 'url = "http://x/"\nsoft_fail = 1',
                'url = "http://x/"\nsurprise = true', 'timeout_seconds = 1'):
        lay.config.write_text(base + "\n[ocsp]\n" + bad + "\n", encoding="utf-8")
        with pytest.raises(ConfigError):
            load_config(lay.config)
    lay.config.write_text(base + '\n[ocsp]\nurl = "https://ocsp.city.example/ca"\n',
                          encoding="utf-8")
    cfg = load_config(lay.config).ocsp
    assert cfg is not None and not cfg.soft_fail and cfg.nonce and cfg.timeout_seconds == 3.0
