"""The verifier's decisions as plain functions (no network), on SQLite and on PostgreSQL.

Each refusal has its code, HTTP status, ja/en text and a stored attestation record.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.attest import wire
from testkit.verifier import User, load_user, report
from verifier import db, demo, pki
from verifier.assign import parse_csv
from verifier.config import load_config
from verifier.gateway import Gateway
from verifier.service import Outcome, Verifier


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class City:
    lay: demo.Layout
    verifier: Verifier
    store: db.Store
    clock: Clock
    a: User
    b: User


@pytest.fixture
def city(tmp_path: Path, database_url: str) -> City:
    lay = demo.layout(tmp_path / "city", database_url=database_url, recheck_seconds=60,
                      grace_seconds=10)
    cfg = load_config(lay.config)
    db.upgrade(cfg.database_url)
    store = db.Store(db.make_engine(cfg.database_url))
    for a in parse_csv((lay.dir / "users.csv").read_text()):
        store.set_assignment(a)
    clock = Clock(dt.datetime.now(dt.UTC))
    v = Verifier(cfg, store, Gateway(cfg.gateway), clock=clock)
    return City(lay, v, store, clock, load_user(lay, "userA", tmp_path),
                load_user(lay, "userB", tmp_path))


def nonce(c: City, user: User) -> str:
    out = c.verifier.nonce(user.der, b'{"v":1}')
    assert out.status == 200, out.body
    value: str = out.body["nonce"]
    return value


def body(user: User, nonce_value: str, *, rep: dict[str, Any] | None = None, serial: int = 2,
         key: ec.EllipticCurvePrivateKey | None = None, policy_id: str = demo.POLICY_ID) -> bytes:
    req = wire.AttestRequest(nonce_value, rep if rep is not None else report(), policy_id, serial,
                             "0.1.0", "office", wire.public_key_pem(user.key.public_key()))
    return wire.canonical_json(req.sign(key or user.key).to_json())


def attest(c: City, user: User, **kw: Any) -> Outcome:
    return c.verifier.attest(user.der, body(user, nonce(c, user), **kw))


def refused(out: Outcome, code: str, status: int) -> None:
    assert (out.status, out.body.get("error")) == (status, code), out.body
    assert out.body["message_ja"] and out.body["message_en"]
    assert "Traceback" not in json.dumps(out.body)


def test_compliant_report_gets_a_credential_for_the_assigned_pc(city: City) -> None:
    out = attest(city, city.a)
    assert out.status == 200, out.body
    cred = x509.load_pem_x509_certificate(out.body["credential"].encode())
    assert pki.common_name(cred) == "userA"
    san = cred.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:byod:pc:pcA"]
    assert cred.issuer == city.verifier.posture_ca.cert.subject
    lifetime = cred.not_valid_after_utc - city.clock.now
    assert dt.timedelta(minutes=9) < lifetime <= dt.timedelta(minutes=10)
    assert cred.public_key() == city.a.key.public_key()  # the device key, nothing new
    rows = city.store.attestations_for("userA")
    assert [r["allowed"] for r in rows] == [True]
    checks = json.loads(rows[0]["checks"])
    assert {c["id"]: c["outcome"] for c in checks}["disk_encryption"] == "ok"
    assert rows[0]["correlation_id"] == out.body["correlation_id"]
    assert "userA be_pcA" in (city.lay.dir / "users.map").read_text()


def test_the_clients_own_verdict_is_ignored(city: City) -> None:
    out = attest(city, city.a, rep=report({"firewall": "fail"}, compliant=True))
    refused(out, "not_compliant", 403)
    row = city.store.attestations_for("userA")[-1]
    assert not row["allowed"] and row["refused_code"] == "not_compliant"
    assert {c["id"]: c["outcome"] for c in json.loads(row["checks"])}["firewall"] == "block"


def test_a_missing_check_is_unknown_and_blocks(city: City) -> None:
    out = attest(city, city.a, rep=report(drop=("disk_encryption",)))
    refused(out, "not_compliant", 403)
    checks = json.loads(city.store.attestations_for("userA")[-1]["checks"])
    assert {c["id"]: (c["status"], c["outcome"]) for c in checks}["disk_encryption"] == \
        ("unknown", "block")


def test_a_nonce_is_single_use(city: City) -> None:
    raw = body(city.a, nonce(city, city.a))
    assert city.verifier.attest(city.a.der, raw).status == 200
    refused(city.verifier.attest(city.a.der, raw), "nonce_replayed", 409)
    assert city.store.attestations_for("userA")[-1]["refused_code"] == "nonce_replayed"


def test_unknown_expired_and_foreign_nonces(city: City) -> None:
    refused(city.verifier.attest(city.a.der, body(city.a, "made-up")), "nonce_unknown", 409)
    b_nonce = nonce(city, city.b)
    refused(city.verifier.attest(city.a.der, body(city.a, b_nonce)), "nonce_unknown", 409)
    n = nonce(city, city.a)
    city.clock.now += dt.timedelta(seconds=city.verifier.cfg.nonce_seconds + 1)
    refused(city.verifier.attest(city.a.der, body(city.a, n, rep=report(
        generated_at=city.clock.now))), "nonce_expired", 409)


def test_a_key_that_is_not_the_enrolled_one(city: City) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    refused(attest(city, city.a, key=other), "bad_signature", 403)
    # Claiming the other key as the credential's key is refused before the signature.
    req = wire.AttestRequest(nonce(city, city.a), report(), demo.POLICY_ID, 2, "0.1.0", "office",
                             wire.public_key_pem(other.public_key())).sign(other)
    refused(city.verifier.attest(city.a.der, wire.canonical_json(req.to_json())),
            "key_not_enrolled", 403)


def test_policy_serials_only_move_forward(city: City) -> None:
    refused(attest(city, city.a, serial=1), "stale_serial", 409)
    refused(attest(city, city.a, serial=3), "policy_newer", 409)
    refused(attest(city, city.a, policy_id="another-policy"), "policy_unknown", 409)
    city.store.raise_serial(demo.POLICY_ID, 5)  # another instance saw a newer policy
    refused(attest(city, city.a, serial=2), "stale_serial", 409)


def test_old_and_future_reports_are_refused(city: City) -> None:
    old = city.clock.now - dt.timedelta(seconds=61)
    refused(attest(city, city.a, rep=report(generated_at=old)), "report_stale", 409)
    future = city.clock.now + dt.timedelta(seconds=121)
    refused(attest(city, city.a, rep=report(generated_at=future)), "report_future", 409)
    assert attest(city, city.a, rep=report(generated_at=city.clock.now - dt.timedelta(
        seconds=30))).status == 200


def test_no_certificate_foreign_ca_and_revoked(city: City) -> None:
    refused(city.verifier.nonce(None, b""), "no_client_cert", 401)
    refused(city.verifier.attest(None, body(city.a, "x")), "no_client_cert", 401)
    foreign, fkey = pki.make_ca("Somebody else", city.clock.now)
    cert, _ = pki.issue_leaf(foreign, fkey, "userA", now=city.clock.now)
    refused(city.verifier.nonce(cert.public_bytes(serialization.Encoding.DER), b""),
            "cert_unknown_ca", 403)
    n = nonce(city, city.a)
    ca = x509.load_pem_x509_certificate((city.lay.dir / "city-ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((city.lay.dir / "city-ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    crl = pki.make_crl(ca, ca_key, [city.a.cert.serial_number], city.clock.now)
    (city.lay.dir / "city-crl.pem").write_bytes(pki.crl_pem(crl))
    refused(city.verifier.attest(city.a.der, body(city.a, n)), "cert_revoked", 403)
    assert attest(city, city.b).status == 200  # B is not revoked


def test_no_assignment_no_credential(city: City) -> None:
    city.store.remove_assignment("userB")
    refused(attest(city, city.b), "no_assignment", 403)


def test_sizes_and_garbage(city: City) -> None:
    refused(city.verifier.attest(city.a.der, b"{" * 300_000), "too_large", 413)
    refused(city.verifier.attest(city.a.der, b"[" * 40 + b"]" * 40), "too_deep", 400)
    refused(city.verifier.attest(city.a.der, b'{"v":1}'), "bad_request", 400)
    rep = report()
    rep["checks"][0]["status"] = "great"
    refused(attest(city, city.a, rep=rep), "bad_report", 400)
    rows = city.store.all_attestations()
    assert len(rows) == 4 and all(not r["allowed"] for r in rows)


def test_enforcement_cuts_after_recheck_plus_grace(city: City) -> None:
    assert attest(city, city.a).status == 200
    city.clock.now += dt.timedelta(seconds=69)
    assert city.verifier.enforce_once() == []
    city.clock.now += dt.timedelta(seconds=2)
    assert city.verifier.enforce_once() == ["userA"]
    assert city.verifier.enforce_once() == []  # once
    s = city.store.session("userA")
    assert s is not None and s.state == "cut"
    assert "userA" not in (city.lay.dir / "users.map").read_text()


def test_a_failing_reattest_cuts_at_once(city: City) -> None:
    assert attest(city, city.a).status == 200
    assert attest(city, city.b).status == 200
    refused(attest(city, city.a, rep=report({"antivirus": "unknown"})), "not_compliant", 403)
    state = {s.user: s.state for s in city.store.live_sessions()}
    assert state == {"userB": "live"}
    assert (city.lay.dir / "users.map").read_text().count("be_pc") == 1


def test_the_demo_policy_names_the_verifier(city: City) -> None:
    ref = city.verifier.policy.policy.verifier
    assert ref is not None and ref.url == f"https://127.0.0.1:{city.lay.verifier_port}"
    assert ref.ca_pem.strip() == (city.lay.dir / "city-ca.pem").read_text().strip()


def test_a_posture_ca_key_others_can_read_stops_the_start(city: City) -> None:
    key = city.lay.dir / "posture-ca.key"
    key.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        Verifier(city.verifier.cfg, city.store, Gateway(city.verifier.cfg.gateway))


def test_an_internal_failure_is_a_json_500_without_traceback(city: City) -> None:
    class Broken(db.Store):
        def use_nonce(self, nonce: str, cert_fp: str, now: float) -> str | None:
            raise RuntimeError("database gone: secret detail")

    v = Verifier(city.verifier.cfg, Broken(city.store.engine), Gateway(city.verifier.cfg.gateway),
                 clock=city.clock)
    out = v.attest(city.a.der, body(city.a, nonce(city, city.a)))
    refused(out, "internal", 500)
    assert "secret detail" not in json.dumps(out.body)
    assert city.store.all_attestations()[-1]["refused_code"] == "internal"


def test_revocation_cuts_a_live_session_but_a_foreign_certificate_cannot(city: City) -> None:
    assert attest(city, city.a).status == 200
    foreign, fkey = pki.make_ca("BYOD DEMO city CA", city.clock.now)  # same name, other key
    fake, _ = pki.issue_leaf(foreign, fkey, "userA", now=city.clock.now)
    refused(city.verifier.nonce(fake.public_bytes(serialization.Encoding.DER), b""),
            "cert_unknown_ca", 403)
    s = city.store.session("userA")
    assert s is not None and s.state == "live"  # a foreign "userA" cut nothing
    ca = x509.load_pem_x509_certificate((city.lay.dir / "city-ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((city.lay.dir / "city-ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    crl = pki.make_crl(ca, ca_key, [city.a.cert.serial_number], city.clock.now)
    (city.lay.dir / "city-crl.pem").write_bytes(pki.crl_pem(crl))
    refused(city.verifier.nonce(city.a.der, b""), "cert_revoked", 403)
    s = city.store.session("userA")
    assert s is not None and s.state == "cut"
