"""End to end with real parts: byod-verifier (subprocess, mTLS), HAProxy 2.6 from the shipped
installer/gateway/haproxy.cfg, office-PC stand-ins, the agent's own attest client. On SQLite and
on PostgreSQL. Intervals are seconds here (recheck 3 s + grace 2 s, enforcement tick 0.5 s).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.attest import (
    Credential,
    VerifierEndpoint,
    VerifierError,
    credential_files,
    gateway_context,
    obtain_credential,
    wire,
)
from agent.keystore.tls import client_context
from testkit.verifier import User, load_user, report
from tests.conftest import require
from verifier import demo, pki

pytestmark = pytest.mark.real
RECHECK, GRACE, TICK = 3, 2, 0.5


@dataclass
class City:
    demo: demo.Demo
    a: User
    b: User

    @property
    def lay(self) -> demo.Layout:
        return self.demo.layout

    @property
    def endpoint(self) -> VerifierEndpoint:
        return VerifierEndpoint(f"https://127.0.0.1:{self.lay.verifier_port}",
                                (self.lay.dir / "city-ca.pem").read_text())

    def log(self) -> str:
        return (self.lay.dir / "verifier.log").read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 5.0) -> None:
        """The verifier logs a decision right after acting on it: wait for the line, bounded."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                pytest.fail(f"not in the verifier log after {timeout} s: {text!r}\n"
                            + self.log()[-2000:])
            time.sleep(0.05)

    def credential(self, user: User, **kw: Any) -> Credential:
        args: dict[str, Any] = {"policy_id": demo.POLICY_ID, "policy_serial": demo.POLICY_SERIAL,
                                "agent_version": "0.1.0", "target": "office"}
        rep = kw.pop("rep", None) or report()
        args.update(kw)
        return obtain_credential(self.endpoint, user.identity, rep, **args)


@pytest.fixture
def city(tmp_path: Path, database_url: str) -> Iterator[City]:
    require(shutil.which("haproxy") is not None, "haproxy (apt haproxy)")
    lay = demo.layout(tmp_path / "city", database_url=database_url, recheck_seconds=RECHECK,
                      grace_seconds=GRACE, enforce_tick_seconds=TICK)
    running = demo.start(lay)
    try:
        yield City(running, load_user(lay, "userA", tmp_path), load_user(lay, "userB", tmp_path))
    finally:
        running.stop()


def open_session(c: City, user: User, cred_pem: str, *, sni: str = "localhost",
                 ) -> ssl.SSLSocket:
    """TLS to HAProxy with the posture credential; returns after the PC's greeting line."""
    cred = wire.Credential(cred_pem, 0, user.name, "", "", 0)
    with credential_files(cred) as path:
        ctx = gateway_context(path, user.identity, (c.lay.dir / "city-ca.pem").read_text())
    ctx.check_hostname = sni == "localhost"
    raw = socket.create_connection(("127.0.0.1", c.lay.gateway_port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=sni)


def greeting(s: ssl.SSLSocket) -> bytes:
    s.settimeout(5)
    return s.recv(100)


def refused_at_gateway(make: Any) -> str:
    """A refused TLS session: the handshake or the first read fails, or EOF. Returns why."""
    try:
        s = make()
        with s:
            s.settimeout(5)
            data = s.recv(100)
            return "eof" if data == b"" else f"DATA {data!r}"
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except (ConnectionResetError, BrokenPipeError) as exc:
        return type(exc).__name__


def wait_closed(s: ssl.SSLSocket, timeout: float) -> float:
    """Seconds until the gateway ends the session (EOF or reset) while we only read."""
    start = time.monotonic()
    s.settimeout(timeout)
    try:
        while s.recv(100):
            pass
    except (ssl.SSLError, ConnectionResetError):
        pass
    except TimeoutError:
        pytest.fail(f"session still open after {timeout} s")
    return time.monotonic() - start


def test_compliant_agent_reaches_its_own_office_pc(city: City) -> None:
    cred = city.credential(city.a)
    assert (cred.user, cred.pc, cred.recheck_seconds) == ("userA", "pcA", RECHECK)
    with open_session(city, city.a, cred.certificate_pem) as s:
        assert greeting(s) == b"pcA\n"
        s.sendall(b"ping")
        assert s.recv(100) == b"ping"
    assert city.demo.pcs["pcB"].count("open") == 0
    city.wait_log(f"attest allowed {cred.correlation_id} user=userA pc=pcA")


def test_the_user_certificate_alone_opens_nothing(city: City) -> None:
    ca = (city.lay.dir / "city-ca.pem").read_text()

    def plain_tls() -> ssl.SSLSocket:  # what a bare stunnel with the user certificate does
        ctx = client_context(ca, city.a.identity)
        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", city.lay.gateway_port),
                                                        timeout=5), server_hostname="localhost")

    why = refused_at_gateway(plain_tls)
    assert "UNKNOWN_CA" in why.upper() or why == "eof", why
    city.credential(city.a)  # even while A is admitted with a credential
    why = refused_at_gateway(plain_tls)
    assert "UNKNOWN_CA" in why.upper() or why == "eof", why
    assert city.demo.pcs["pcA"].count("open") == 0


def test_a_credential_of_A_never_reaches_B(city: City) -> None:
    cred_a = city.credential(city.a)
    city.credential(city.b)  # B is admitted too: the map has both
    for sni in ("pcB", "office-pc-b.example", "localhost"):
        with open_session(city, city.a, cred_a.certificate_pem, sni=sni) as s:
            assert greeting(s) == b"pcA\n", sni
    assert city.demo.pcs["pcB"].count("open") == 0


def test_an_expired_credential_is_refused_by_the_gateway(city: City) -> None:
    city.credential(city.a)  # admitted in the map: only the expiry can refuse it
    passphrase = (city.lay.dir / "posture-ca.pass").read_text().strip().encode()
    ca = pki.PostureCA.load(city.lay.dir / "posture-ca.pem", city.lay.dir / "posture-ca.key",
                            passphrase)
    now = dt.datetime.now(dt.UTC)
    expired = (x509.CertificateBuilder().subject_name(x509.Name([
        x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "userA")]))
        .issuer_name(ca.cert.subject).public_key(city.a.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=20))
        .not_valid_after(now - dt.timedelta(minutes=10))
        .sign(ca.key, hashes.SHA256()))
    why = refused_at_gateway(lambda: open_session(city, city.a, pki.pem(expired).decode()))
    assert "EXPIRED" in why.upper(), why
    assert city.demo.pcs["pcA"].count("open") == 0


def _post(c: City, user: User, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    ctx = client_context((c.lay.dir / "city-ca.pem").read_text(), user.identity)
    conn = http.client.HTTPSConnection("127.0.0.1", c.lay.verifier_port, context=ctx,
                                       timeout=10)
    try:
        conn.request("POST", path, body=body)
        resp = conn.getresponse()
        doc: dict[str, Any] = json.loads(resp.read())
        return resp.status, doc
    finally:
        conn.close()


def test_a_replayed_nonce_is_refused(city: City) -> None:
    _, n = _post(city, city.a, wire.NONCE_PATH, b"{}")
    req = wire.AttestRequest(n["nonce"], report(), demo.POLICY_ID, demo.POLICY_SERIAL, "0.1.0",
                             "office", wire.public_key_pem(city.a.key.public_key()))
    body = wire.canonical_json(req.sign(city.a.key).to_json())
    assert _post(city, city.a, wire.ATTEST_PATH, body)[0] == 200
    status, doc = _post(city, city.a, wire.ATTEST_PATH, body)
    assert (status, doc["error"]) == (409, "nonce_replayed")
    assert "ワンタイム番号" in doc["message_ja"]
    city.wait_log("code=nonce_replayed")


def test_a_report_signed_by_another_key_is_refused(city: City) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerifierError) as exc:
        city.credential(city.a, key=other)
    assert (exc.value.status, exc.value.code) == (403, "bad_signature")
    assert exc.value.message_ja and exc.value.message_en
    city.wait_log("code=bad_signature")


def test_a_report_under_an_older_policy_serial_is_refused(city: City) -> None:
    with pytest.raises(VerifierError) as exc:
        city.credential(city.a, policy_serial=demo.POLICY_SERIAL - 1)
    assert (exc.value.status, exc.value.code) == (409, "stale_serial")
    city.wait_log("code=stale_serial")


def test_a_revoked_user_certificate_is_refused(city: City) -> None:
    d = city.lay.dir
    ca = x509.load_pem_x509_certificate((d / "city-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((d / "city-ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    crl = pki.make_crl(ca, key, [city.a.cert.serial_number], dt.datetime.now(dt.UTC))
    (d / "city-crl.pem").write_bytes(pki.crl_pem(crl))
    with pytest.raises(VerifierError) as exc:
        city.credential(city.a)
    assert (exc.value.status, exc.value.code) == (403, "cert_revoked")
    city.wait_log("code=cert_revoked")
    assert city.credential(city.b).pc == "pcB"


def test_no_verifier_is_a_clear_localized_error(city: City) -> None:
    city.demo.verifier.terminate()
    city.demo.verifier.wait(10)
    with pytest.raises(VerifierError) as exc:
        city.credential(city.a)
    assert exc.value.code == "unreachable"
    assert "検証サーバー" in exc.value.message_ja and "cannot be reached" in exc.value.message_en


def test_a_pc_falling_out_of_compliance_loses_its_live_session(city: City) -> None:
    cred = city.credential(city.a)
    cred_b = city.credential(city.b)
    with open_session(city, city.a, cred.certificate_pem) as s, \
            open_session(city, city.b, cred_b.certificate_pem) as other:
        assert greeting(s) == b"pcA\n" and greeting(other) == b"pcB\n"
        with pytest.raises(VerifierError) as exc:
            city.credential(city.a, rep=report({"disk_encryption": "fail"}))
        assert exc.value.code == "not_compliant"
        assert wait_closed(s, 5) < 2
        other.sendall(b"still here")  # B's session is not touched
        assert other.recv(100) == b"still here"
    deadline = time.monotonic() + 5
    while city.demo.pcs["pcA"].count("closed") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert city.demo.pcs["pcA"].count("closed") == 1  # the office PC saw it end
    city.wait_log("session cut user=userA pc=pcA reason=not_compliant")
    why = refused_at_gateway(lambda: open_session(city, city.a, cred.certificate_pem))
    assert why == "eof", why  # the credential is still valid, but admission is withdrawn


def test_an_agent_that_stops_reattesting_loses_its_session(city: City) -> None:
    cred = city.credential(city.a)
    started = time.monotonic()
    with open_session(city, city.a, cred.certificate_pem) as s:
        assert greeting(s) == b"pcA\n"
        wait_closed(s, RECHECK + GRACE + 10)
    elapsed = time.monotonic() - started
    assert RECHECK + GRACE - 0.5 <= elapsed <= RECHECK + GRACE + 3, elapsed
    city.wait_log("session cut user=userA pc=pcA reason=no_reattest")


def test_an_agent_that_reattests_keeps_its_session(city: City) -> None:
    """Positive control for the test above: the same session outlives recheck + grace."""
    cred = city.credential(city.a)
    with open_session(city, city.a, cred.certificate_pem) as s:
        assert greeting(s) == b"pcA\n"
        end = time.monotonic() + RECHECK + GRACE + 2
        while time.monotonic() < end:
            city.credential(city.a)
            time.sleep(1)
        s.sendall(b"alive")
        assert s.recv(100) == b"alive"


def test_the_session_attester_refreshes_the_tunnel_context_in_place(city: City) -> None:
    from agent.attest.session import SessionAttester
    from agent.policy.model import VerifierRef

    ca = (city.lay.dir / "city-ca.pem").read_text()
    att = SessionAttester(VerifierRef(city.endpoint.url, ca), city.a.identity, ca,
                          policy_id=demo.POLICY_ID, policy_serial=demo.POLICY_SERIAL,
                          target_id="office")
    ctx = att.attest(report())
    first = att.credential

    def through(context: ssl.SSLContext) -> bytes:
        raw = socket.create_connection(("127.0.0.1", city.lay.gateway_port), timeout=5)
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            return greeting(s)

    assert through(ctx) == b"pcA\n"
    assert att.attest(report()) is ctx  # same context, new certificate
    assert att.credential is not None and first is not None
    assert att.credential.certificate_pem != first.certificate_pem
    assert through(ctx) == b"pcA\n"
    with pytest.raises(VerifierError):
        att.attest(report({"screen_lock": "fail"}))
    why = refused_at_gateway(lambda: ctx.wrap_socket(socket.create_connection(
        ("127.0.0.1", city.lay.gateway_port), timeout=5), server_hostname="localhost"))
    assert why == "eof", why


def test_a_sigstopped_agent_loses_the_session_its_client_still_holds(city: City,
                                                                     tmp_path: Path) -> None:
    """The issue's scenario: the agent process (which also holds the gateway connection, as the
    RDP client would) is frozen with SIGSTOP; the office PC sees the session end anyway."""
    work = tmp_path / "agent"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "testkit.attest_agent", str(city.lay.dir),
                             "userA", str(work), "--every", "1"], stdout=subprocess.PIPE,
                            env=demo.python_env())
    pc = city.demo.pcs["pcA"]
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"open"
        time.sleep(RECHECK + GRACE + 1)  # re-attesting: the session outlives recheck + grace
        assert (pc.count("open"), pc.count("closed")) == (1, 0)
        os.kill(proc.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        deadline = frozen + RECHECK + GRACE + 5
        while pc.count("closed") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - frozen
        assert pc.count("closed") == 1, "the office PC still has the session"
        assert took <= RECHECK + GRACE + 2, took
        assert proc.poll() is None  # the agent did not end it: the gateway did
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)
    city.wait_log("session cut user=userA pc=pcA reason=no_reattest")
