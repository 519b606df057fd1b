"""A device key that cannot leave the PC (issue 22), against a real software TPM (swtpm behind
tpm2-abrmd, fresh state per test): EST enrollment with a TPM key, mutual TLS with it (EST
renewal and the verifier), attestation with TPM2_Certify and a boot-PCR quote, and the refusals.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.attest import wire
from agent.keystore import store
from agent.keystore.providers import tpm2
from testkit.pki import Pair
from testkit.verifier import load_user, report
from tests.conftest import REPO, require
from tests.integration import swtpm
from tests.integration.est_server import EstState, serving
from verifier import db, demo, pki
from verifier.assign import parse_csv
from verifier.config import load_config
from verifier.gateway import Gateway
from verifier.service import Verifier

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require(swtpm.available(), "swtpm, tpm2-abrmd, dbus-daemon and tpm2-pytss (extra 'tpm')")
    with swtpm.session_bus(tmp_path_factory.mktemp("tpmbus")) as address:
        yield address


@pytest.fixture
def tpm(tmp_path: Path, bus: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[swtpm.Tpm]:
    with swtpm.running(tmp_path / "tpm", bus) as t:  # a fresh --tpmstate per test
        for k, v in t.env().items():
            monkeypatch.setenv(k, v)
        yield t


def _city(tmp_path: Path, *, hardware: bool) -> demo.Layout:
    lay = demo.layout(tmp_path / "city", recheck_seconds=600, grace_seconds=10)
    text = demo.policy_text(demo.POLICY_SERIAL, verifier_url=f"https://127.0.0.1:{lay.verifier_port}",
                            verifier_ca_pem=(lay.dir / "city-ca.pem").read_text())
    if hardware:  # [verifier] is the last table of the demo policy
        text += 'key_protection = "hardware"\n'
    demo.sign_policy(lay.dir, text)
    return lay


def _city_ca(lay: demo.Layout) -> Pair:
    cert = x509.load_pem_x509_certificate((lay.dir / "city-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((lay.dir / "city-ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Pair(cert, key)


def _issue(ca: Pair, user: str, public: ec.EllipticCurvePublicKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name.from_rfc4514_string(f"CN={user}"))
            .issuer_name(ca.cert.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca.key, hashes.SHA256()))


def _verifier(lay: demo.Layout) -> tuple[Verifier, db.Store]:
    cfg = load_config(lay.config)
    db.upgrade(cfg.database_url)
    st = db.Store(db.make_engine(cfg.database_url))
    for a in parse_csv((lay.dir / "users.csv").read_text()):
        st.set_assignment(a)
    return Verifier(cfg, st, Gateway(cfg.gateway)), st


def _key_record(st: db.Store, user: str) -> dict[str, Any]:
    last = st.attestations_for(user)[-1]  # ordered by id: the newest
    entries = [c for c in json.loads(last["checks"]) if c["id"] == "key_protection"]
    assert len(entries) == 1, last["checks"]
    entry: dict[str, Any] = entries[0]
    return entry


def _attest(v: Verifier, der: bytes, signer: Any, public: ec.EllipticCurvePublicKey,
            evidence: Any = None) -> Any:
    out = v.nonce(der, b'{"v":1}')
    assert out.status == 200, out.body
    n = out.body["nonce"]
    ev = evidence(wire.nonce_bytes(n)) if evidence is not None else None
    req = wire.AttestRequest(n, report(), demo.POLICY_ID, demo.POLICY_SERIAL, "0.1.0", "office",
                             wire.public_key_pem(public), key_attestation=ev).sign(signer)
    return v.attest(der, wire.canonical_json(req.to_json()))


def test_enroll_mutual_tls_and_attest_with_a_tpm_key(tpm: swtpm.Tpm, tmp_path: Path) -> None:
    lay = _city(tmp_path, hardware=True)
    ca = _city_ca(lay)
    state = EstState(ca, codes={"7KQ2-PX4M"})
    (tmp_path / "est").mkdir()
    server = pki.issue_leaf(ca.cert, ca.key, "localhost", now=dt.datetime.now(dt.UTC),  # type: ignore[arg-type]
                            server=True)
    verifier = demo.start_verifier(lay)
    try:
        with serving(state, Pair(*server), tmp_path / "est") as url:
            args = {"keystore": str(tmp_path / "home" / "keystore"), "est_url": url,
                    "anchor": ca.cert_pem.decode(), "code": "7KQ2-PX4M", "subject": "CN=userA",
                    "verifier_url": f"https://127.0.0.1:{lay.verifier_port}",
                    "verifier_ca": ca.cert_pem.decode(), "report": report(),
                    "policy_id": demo.POLICY_ID, "policy_serial": demo.POLICY_SERIAL}
            env = {**demo.python_env(), **tpm.env()}
            done = subprocess.run([sys.executable, str(REPO / "tests/integration/tpm_agent.py")],
                                  input=json.dumps(args), capture_output=True, text=True,
                                  env=env, timeout=120, check=False, cwd=REPO)
    finally:
        demo.stop_process(verifier)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"]["key_protection"] == "hardware" and out["status"]["state"] == "ok"
    assert out["protection"] == "hardware"
    # EST: enrolled with the code, then renewed over mutual TLS authenticated by the TPM key
    assert [(p.rsplit("/", 1)[1], s) for p, s, _ in state.log] == [
        ("cacerts", 200), ("simpleenroll", 200), ("cacerts", 200), ("simplereenroll", 200)]
    assert state.log[-1][2] == "CN=userA"
    assert out["renewed_serial"] != out["enrolled_serial"]
    # the verifier (its own process, mutual TLS with the TPM key) admitted the hardware key
    assert out.get("refused") is None and out["credential_pc"] == "pcA", out
    keydir = tmp_path / "home" / "keystore"
    blob = (keydir / store.HW_KEY_FILE).read_text()
    assert blob.startswith("-----BEGIN TSS2 PRIVATE KEY-----")
    assert not (keydir / store.KEY_FILE).exists()  # no software key beside it
    cert = x509.load_pem_x509_certificate((keydir / store.CERT_FILE).read_bytes())
    cred = x509.load_pem_x509_certificate(out["credential"].encode())
    assert cred.public_key() == cert.public_key() == tpm2.TpmKey(blob.encode()).public_key()
    cfg = load_config(lay.config)
    entry = _key_record(db.Store(db.make_engine(cfg.database_url)), "userA")
    assert entry["status"] == "pass" and entry["evidence"]["key_protection"] == "hardware"
    assert entry["evidence"]["ak_name"].startswith("000b")
    assert set(entry["evidence"]["boot_pcrs"]) == {"0", "7"}
    assert "プロセッサ" not in entry["reason"]["ja"] and "TPM" in entry["reason"]["ja"]


def test_the_tpm_refuses_to_export_the_key_and_another_tpm_cannot_load_it(
        tpm: swtpm.Tpm, tmp_path: Path) -> None:
    from tpm2_pytss import (  # type: ignore[import-untyped, unused-ignore]
        ESAPI,
        ESYS_TR,
        TPM2_ALG,
        TPM2_CC,
        TPM2_SE,
        TPMT_SYM_DEF,
        TPMT_SYM_DEF_OBJECT,
        TSS2_Exception,
    )
    from tpm2_pytss.tsskey import TSSPrivKey  # type: ignore[import-untyped, unused-ignore]
    blob = tpm2.create_key()
    key = tpm2.TpmKey(blob)
    ctx = ESAPI(tpm.tcti)

    def duplicate_session(trial: bool) -> Any:
        sess = ctx.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE,
                                      TPM2_SE.TRIAL if trial else TPM2_SE.POLICY,
                                      TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256)
        ctx.policy_command_code(sess, TPM2_CC.Duplicate)
        return sess

    def try_duplicate(k: Any) -> str:
        handle = k.load(ctx)
        sess = duplicate_session(False)
        try:
            ctx.duplicate(handle, ESYS_TR.NULL, None,
                          TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.NULL), session1=sess)
        except TSS2_Exception as exc:
            return str(exc)
        finally:
            ctx.flush_context(sess)
            ctx.flush_context(handle)
        return "duplicated"

    try:
        # our device key: no duplication policy at all
        assert try_duplicate(key._key) != "duplicated"
        # the same attributes with a policy that *allows* TPM2_Duplicate: fixedParent still wins
        trial = duplicate_session(True)
        digest = ctx.policy_get_digest(trial)
        ctx.flush_context(trial)
        template = tpm2._key_template()
        template.authPolicy = digest
        allowing = TSSPrivKey.create(ctx, template)
        refused = try_duplicate(allowing)
    finally:
        ctx.close()
    assert "attributes" in refused.lower(), refused  # TPM_RC_ATTRIBUTES: fixedParent is set
    # the blob copied to another PC: a second TPM (other seeds) cannot load it
    with swtpm.running(tmp_path / "other", tpm.bus_address) as other:
        os.environ["BYOD_TPM_TCTI"] = other.tcti
        try:
            with pytest.raises(Exception) as elsewhere:
                key.sign(b"x", ec.ECDSA(hashes.SHA256()))
        finally:
            os.environ["BYOD_TPM_TCTI"] = tpm.tcti
    text = str(getattr(elsewhere.value, "detail", elsewhere.value))
    assert "cert.error.tpm" in text and "no TPM" not in text, text  # reached it; it said no
    sig = key.sign(b"x", ec.ECDSA(hashes.SHA256()))  # at home it still works
    key.public_key().verify(sig, b"x", ec.ECDSA(hashes.SHA256()))


def test_a_software_key_copied_from_the_store_is_refused_when_hardware_is_required(
        tmp_path: Path) -> None:
    lay = _city(tmp_path, hardware=True)
    v, st = _verifier(lay)
    user = load_user(lay, "userA", tmp_path)  # the encrypted file + passphrase anyone can copy
    out = _attest(v, user.der, user.key, user.key.public_key())
    assert (out.status, out.body["error"]) == (403, "key_not_hardware"), out.body
    assert "TPM" in out.body["message_ja"] and "TPM" in out.body["message_en"]
    entry = _key_record(st, "userA")
    assert (entry["status"], entry["outcome"]) == ("fail", "block")
    assert entry["evidence"]["key_protection"] == "software"


def test_a_software_key_is_admitted_and_recorded_when_the_policy_allows_it(
        tmp_path: Path) -> None:
    lay = _city(tmp_path, hardware=False)
    v, st = _verifier(lay)
    user = load_user(lay, "userA", tmp_path)
    out = _attest(v, user.der, user.key, user.key.public_key())
    assert out.status == 200, out.body
    entry = _key_record(st, "userA")
    assert (entry["status"], entry["outcome"]) == ("warn", "report")
    assert entry["evidence"]["key_protection"] == "software"


def test_stale_nonce_and_borrowed_evidence_are_refused(tpm: swtpm.Tpm, tmp_path: Path) -> None:
    lay = _city(tmp_path, hardware=True)
    v, st = _verifier(lay)
    ca = _city_ca(lay)
    key = tpm2.TpmKey(tpm2.create_key())
    der = _issue(ca, "userA", key.public_key()).public_bytes(serialization.Encoding.DER)

    ok = _attest(v, der, key, key.public_key(), key.key_evidence)
    assert ok.status == 200, ok.body
    assert _key_record(st, "userA")["evidence"]["key_protection"] == "hardware"

    old = wire.nonce_bytes(v.nonce(der, b'{"v":1}').body["nonce"])  # issued, never used here
    stale = key.key_evidence(old)
    out = _attest(v, der, key, key.public_key(), lambda _fresh: stale)
    assert (out.status, out.body["error"]) == (403, "key_attestation_invalid"), out.body
    assert "nonce" in _key_record(st, "userA")["evidence"]["detail"]

    quote_only_stale = key.key_evidence(b"")  # certify fresh, quote stale: each is checked
    def mixed(fresh: bytes) -> dict[str, Any]:
        ev = key.key_evidence(fresh)
        ev["quote"] = quote_only_stale["quote"]
        return ev
    out = _attest(v, der, key, key.public_key(), mixed)
    assert out.body["error"] == "key_attestation_invalid"
    assert "quote is not over this nonce" in _key_record(st, "userA")["evidence"]["detail"]

    # a software key (copied) with a genuine TPM's evidence for another key: refused
    user = load_user(lay, "userA", tmp_path)
    out = _attest(v, user.der, user.key, user.key.public_key(), key.key_evidence)
    assert out.body["error"] == "key_attestation_invalid"
    assert "not the enrolled key" in _key_record(st, "userA")["evidence"]["detail"]
