"""verifier/tpm.py on recorded evidence, and the Windows/macOS providers' pure halves on
constructed inputs (issue 22). The swtpm fixture's origin is in its ``_source``."""

from __future__ import annotations

import base64
import copy
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from agent.keystore.providers import csr, macos_se, windows_pcp
from verifier import tpm

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/tpm/swtpm_certify_quote.json")
                     .read_text())
NONCE = bytes.fromhex(FIXTURE["nonce_hex"])


def _doc() -> dict[str, Any]:
    return copy.deepcopy(FIXTURE["key_attestation"])


def _enrolled(doc: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    return tpm.parse_ecc_public(base64.b64decode(doc["key_public"])).key


def test_recorded_evidence_is_hardware() -> None:
    doc = _doc()
    found = tpm.check_key_attestation(doc, _enrolled(doc), NONCE)
    assert found.level == "hardware" and found.pcrs is not None and set(found.pcrs) == {"0", "7"}
    assert tpm.check_key_attestation(None, _enrolled(doc), NONCE).level == "software"


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(("change", "detail"), [
    (lambda d: d["certify"].update(attest=_flip(d["certify"]["attest"], 40)), "signature"),
    (lambda d: d["quote"].update(attest=_flip(d["quote"]["attest"], 40)), "signature"),
    (lambda d: d["quote"]["pcrs"].update({"7": "11" * 32}), "PCR digest"),
    (lambda d: d["quote"]["pcrs"].pop("0"), "PCRs the quote covers"),
    (lambda d: d.update(ak_public=d["key_public"]), "restricted"),
    (lambda d: d.update(provider="pcp"), "provider"),
    (lambda d: d.update(extra=1), "fields"),
    (lambda d: d["certify"].update(attest="!!"), "base64"),
    (lambda d: d["certify"].update(attest=base64.b64encode(
        base64.b64decode(d["certify"]["attest"])[:20]).decode()), "signature"),
])
def test_tampered_evidence_is_refused(change: Any, detail: str) -> None:
    doc = _doc()
    enrolled = _enrolled(doc)
    change(doc)
    with pytest.raises(tpm.TpmEvidenceError) as err:
        tpm.check_key_attestation(doc, enrolled, NONCE)
    assert detail in err.value.detail


def test_another_nonce_or_another_key_is_refused() -> None:
    doc = _doc()
    with pytest.raises(tpm.TpmEvidenceError, match="nonce"):
        tpm.check_key_attestation(doc, _enrolled(doc), b"\0" * 32)
    with pytest.raises(tpm.TpmEvidenceError, match="not the enrolled key"):
        tpm.check_key_attestation(doc, ec.generate_private_key(ec.SECP256R1()).public_key(),
                                  NONCE)


def test_truncated_structures_never_crash() -> None:
    raw = base64.b64decode(FIXTURE["key_attestation"]["certify"]["attest"])
    for n in range(len(raw)):
        with pytest.raises(tpm.TpmEvidenceError):
            tpm.parse_attest(raw[:n])
    pub = base64.b64decode(FIXTURE["key_attestation"]["key_public"])
    for n in range(len(pub)):
        with pytest.raises(tpm.TpmEvidenceError):
            tpm.parse_ecc_public(pub[:n])


def test_csr_signed_by_any_signer_parses_and_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = csr.build_csr(x509.Name.from_rfc4514_string("CN=山田 太郎,O=Example City"), key)
    req = x509.load_pem_x509_csr(pem)
    assert req.is_signature_valid and req.public_key() == key.public_key()
    assert req.subject.rfc4514_string() == "CN=山田 太郎,O=Example City"


# -- Windows Platform Crypto Provider, pure half (constructed inputs, bcrypt.h layout) ----------

def test_windows_plan_makes_a_non_exportable_silent_key() -> None:
    plan = windows_pcp.create_plan("byod-device")
    assert plan[0].args[0] == "Microsoft Platform Crypto Provider"
    export = next(c for c in plan if c.function == "NCryptSetProperty")
    assert export.args[:2] == ("Export Policy", b"\0\0\0\0")
    with pytest.raises(ValueError):
        windows_pcp.create_plan('x"; del')


def test_windows_blob_and_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.public_key().public_numbers()
    blob = struct.pack("<II", 0x31534345, 32) + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
    assert windows_pcp.parse_ecc_public_blob(blob) == key.public_key()
    with pytest.raises(ValueError):
        windows_pcp.parse_ecc_public_blob(struct.pack("<II", 0x31534345, 48) + blob[8:])
    der = key.sign(b"m", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    key.public_key().verify(windows_pcp.p1363_to_der(raw), b"m", ec.ECDSA(hashes.SHA256()))
    assert windows_pcp.parse_platform_type(
        "TPM-Version:2.0 -Level:0-Revision:1.38-VendorId:0x4e544300-Firmware:") == "2.0"
    assert windows_pcp.parse_platform_type("Software") is None


# -- macOS Secure Enclave, pure half ------------------------------------------------------------

def test_macos_attributes_and_public_key() -> None:
    attrs = macos_se.key_attributes("jp.city.byod.device")
    assert attrs["kSecAttrTokenID"] == "kSecAttrTokenIDSecureEnclave"
    assert attrs["kSecPrivateKeyAttrs"]["kSecAttrAccessControl"][0].endswith("ThisDeviceOnly")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    from cryptography.hazmat.primitives import serialization
    x963 = key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)
    assert macos_se.parse_x963_public(x963) == key
    with pytest.raises(ValueError):
        macos_se.parse_x963_public(x963[:-1])
