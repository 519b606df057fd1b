"""The wire format as plain functions: canonical JSON, signatures, limits, strict parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.attest import wire
from testkit.verifier import report


def request(key: ec.EllipticCurvePrivateKey, **change: Any) -> wire.AttestRequest:
    fields: dict[str, Any] = {
        "nonce": "n" * 43, "report": report(), "policy_id": "demo-verifier", "policy_serial": 2,
        "agent_version": "0.1.0", "target": "office", "public_key_pem":
        wire.public_key_pem(key.public_key())}
    fields.update(change)
    return wire.AttestRequest(**fields).sign(key)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert wire.canonical_json({"b": 1, "a": ["日本", 2.5]}) == \
        '{"a":["日本",2.5],"b":1}'.encode()
    with pytest.raises(ValueError):
        wire.canonical_json({"x": float("nan")})


def test_signature_verifies_and_any_change_breaks_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    req = request(key)
    req.verify(key.public_key())
    parsed = wire.AttestRequest.parse(json.loads(wire.canonical_json(req.to_json())))
    parsed.verify(key.public_key())  # the consumer's parse of the producer's bytes
    tampered = dict(req.to_json())
    tampered["report"] = {**req.report, "compliant": False}
    with pytest.raises(wire.WireError) as exc:
        wire.AttestRequest.parse(tampered).verify(key.public_key())
    assert exc.value.code == "bad_signature"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(wire.WireError):
        req.verify(other.public_key())


def test_signature_not_base64_is_a_bad_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    doc = request(key).to_json()
    doc["signature"] = "not base64!"
    with pytest.raises(wire.WireError) as exc:
        wire.AttestRequest.parse(doc).verify(key.public_key())
    assert exc.value.code == "bad_signature"


@pytest.mark.parametrize(("raw", "code"), [
    (b"x" * (wire.MAX_BODY_BYTES + 1), "too_large"),
    (b"[" * 50 + b"]" * 50, "too_deep"),
    (b'{"a":' * 20 + b"1" + b"}" * 20, "too_deep"),
    (b"\xff\xfe", "bad_json"),
    (b"{not json", "bad_json"),
    (b'{"a": NaN}', "bad_json"),
    (b"[1, 2]", "bad_request"),
])
def test_hostile_bodies_are_refused_with_a_code(raw: bytes, code: str) -> None:
    with pytest.raises(wire.WireError) as exc:
        wire.parse_body(raw)
    assert exc.value.code == code


def test_deep_nesting_is_measured_without_recursion() -> None:
    doc: Any = 1
    for _ in range(100_000):
        doc = [doc]
    assert wire.depth(doc, limit=12) == 13  # stops early, no RecursionError


@pytest.mark.parametrize(("change", "code"), [
    ({"v": 2}, "bad_version"),
    ({"policy": {"id": "x"}}, "bad_request"),
    ({"policy": {"id": "x", "serial": True}}, "bad_request"),
    ({"policy": {"id": "x", "serial": -1}}, "bad_request"),
    ({"nonce": ""}, "bad_request"),
    ({"report": []}, "bad_request"),
    ({"extra": 1}, "bad_request"),
])
def test_fields_are_strict(change: dict[str, Any], code: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    doc = {**request(key).to_json(), **change}
    with pytest.raises(wire.WireError) as exc:
        wire.AttestRequest.parse(doc)
    assert exc.value.code == code


def test_credential_and_nonce_round_trip() -> None:
    cred = wire.Credential("PEM", 1.5, "userA", "pcA", "ABCDEFGH", 60)
    assert wire.Credential.parse(json.loads(json.dumps(cred.to_json()))) == cred
    nonce = wire.NonceResponse("abc", 10.0)
    assert wire.NonceResponse.parse(nonce.to_json()) == nonce
    with pytest.raises(wire.WireError):
        wire.NonceResponse.parse({"v": 1, "nonce": 1, "expires": 2})
