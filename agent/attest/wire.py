"""The attestation wire format (docs/verifier-protocol.md), defined once for both sides.

The agent (agent/attest/client.py) produces these messages and the verifier (verifier/) parses
them with the same functions; a test runs the real producer against the real consumer.

Signed bytes are the *canonical JSON* of the request without its ``signature`` member: keys
sorted, UTF-8 (no ASCII escaping), no insignificant whitespace. The signature is ECDSA P-256 with
SHA-256 (DER, base64) by the enrolled device key, the key of the mTLS client certificate.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.core.errors import AgentError
from agent.core.messages import msg
from agent.keystore.providers import Signer

VERSION = 1
MAX_BODY_BYTES = 256 * 1024  # a six-check report is ~6 KiB; evidence lists stay well below this
MAX_DEPTH = 12
NONCE_BYTES = 32
NONCE_PATH = "/v1/nonce"
ATTEST_PATH = "/v1/attest"


class WireError(AgentError, ValueError):
    """A message that does not follow the protocol. ``code`` is the refusal code it maps to."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(msg("verifier.error.protocol", detail=f"{code}: {detail}"[:120]),
                         f"{code}: {detail}")
        self.code = code
        self.detail = detail


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, UTF-8, no spaces; floats that are not finite are refused."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth, without recursion (a hostile document cannot blow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, level + 1) for c in children)
    return deepest


def _reject_constant(name: str) -> Any:
    raise WireError("bad_json", f"constant {name} is not JSON")


def parse_body(raw: bytes) -> dict[str, Any]:
    """Size, UTF-8, JSON, depth: the order in which a hostile body is refused."""
    if len(raw) > MAX_BODY_BYTES:
        raise WireError("too_large", f"{len(raw)} bytes > {MAX_BODY_BYTES}")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise WireError("bad_json", f"not UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise WireError("too_deep", "nesting too deep") from None
    except ValueError as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError("bad_json", str(exc)[:120]) from None
    if depth(doc) > MAX_DEPTH:
        raise WireError("too_deep", f"nesting deeper than {MAX_DEPTH}")
    if not isinstance(doc, dict):
        raise WireError("bad_request", "body is not a JSON object")
    return doc


@dataclass(frozen=True)
class NonceResponse:
    nonce: str
    expires: float  # Unix time

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "nonce": self.nonce, "expires": self.expires}

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> NonceResponse:
        nonce, expires = doc.get("nonce"), doc.get("expires")
        if doc.get("v") != VERSION or not isinstance(nonce, str) or not isinstance(
                expires, int | float) or isinstance(expires, bool):
            raise WireError("bad_response", "nonce response malformed")
        return cls(nonce, float(expires))


@dataclass(frozen=True)
class AttestRequest:
    nonce: str
    report: Mapping[str, Any]  # `byod-agent check --json` (docs/report-schema.md)
    policy_id: str
    policy_serial: int
    agent_version: str
    target: str
    public_key_pem: str  # the key the credential is issued for: must be the enrolled one
    signature: str = ""  # base64 DER ECDSA over canonical_json(payload())
    # Optional (issue 22): proof that the key lives in a TPM (verifier/tpm.py checks it). Absent
    # for a software key; the verifier then records the protection level "software".
    key_attestation: Mapping[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        out = {"v": VERSION, "nonce": self.nonce, "report": self.report,
               "policy": {"id": self.policy_id, "serial": self.policy_serial},
               "agent_version": self.agent_version, "target": self.target,
               "public_key": self.public_key_pem}
        if self.key_attestation is not None:
            out["key_attestation"] = self.key_attestation
        return out

    def signed_bytes(self) -> bytes:
        return canonical_json(self.payload())

    def to_json(self) -> dict[str, Any]:
        return {**self.payload(), "signature": self.signature}

    def sign(self, key: Signer) -> AttestRequest:
        """Signed by a software key or a hardware one (agent.keystore.providers.Signer)."""
        sig = key.sign(self.signed_bytes(), ec.ECDSA(hashes.SHA256()))
        return AttestRequest(self.nonce, self.report, self.policy_id, self.policy_serial,
                             self.agent_version, self.target, self.public_key_pem,
                             base64.b64encode(sig).decode("ascii"), self.key_attestation)

    def verify(self, key: ec.EllipticCurvePublicKey) -> None:
        """Raises WireError("bad_signature") unless ``key`` signed this payload."""
        try:
            sig = base64.b64decode(self.signature, validate=True)
            key.verify(sig, self.signed_bytes(), ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise WireError("bad_signature", "signature does not verify") from None

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> AttestRequest:
        expected = {"v", "nonce", "report", "policy", "agent_version", "target", "public_key",
                    "signature"}
        optional = {"key_attestation"}
        if not expected <= set(doc) <= expected | optional:
            missing, extra = (sorted(expected - set(doc)),
                              sorted(set(doc) - expected - optional))
            raise WireError("bad_request", f"fields: missing {missing[:5]} unknown {extra[:5]}")
        if doc["v"] != VERSION:
            raise WireError("bad_version", f"v={str(doc['v'])[:10]}")
        policy = doc["policy"]
        if not isinstance(policy, dict) or set(policy) != {"id", "serial"}:
            raise WireError("bad_request", "policy must be {id, serial}")
        serial = policy["serial"]
        if not isinstance(serial, int) or isinstance(serial, bool) or not 0 < serial < 2**53:
            raise WireError("bad_request", "policy.serial must be a positive integer")
        for name in ("nonce", "agent_version", "target", "public_key", "signature"):
            if not isinstance(doc[name], str) or not 0 < len(doc[name]) <= 4096:
                raise WireError("bad_request", f"{name} must be a non-empty string")
        if not isinstance(policy["id"], str) or not 0 < len(policy["id"]) <= 64:
            raise WireError("bad_request", "policy.id must be a short string")
        if not isinstance(doc["report"], dict):
            raise WireError("bad_request", "report must be an object")
        evidence = doc.get("key_attestation")
        if "key_attestation" in doc and not isinstance(evidence, dict):
            raise WireError("bad_request", "key_attestation must be an object")
        return cls(doc["nonce"], doc["report"], policy["id"], serial, doc["agent_version"],
                   doc["target"], doc["public_key"], doc["signature"], evidence)


@dataclass(frozen=True)
class Refusal:
    """Every refusal, in both languages, with the HTTP status it is sent with."""

    code: str
    status: int
    message_ja: str
    message_en: str
    correlation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "error": self.code, "message_ja": self.message_ja,
                               "message_en": self.message_en}
        if self.correlation_id:
            out["correlation_id"] = self.correlation_id
        return out


@dataclass(frozen=True)
class Credential:
    """What an allowed attestation returns: the posture certificate for the device key."""

    certificate_pem: str
    not_after: float  # Unix time
    user: str
    pc: str
    correlation_id: str
    recheck_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "credential": self.certificate_pem, "not_after": self.not_after,
                "user": self.user, "pc": self.pc, "correlation_id": self.correlation_id,
                "recheck_seconds": self.recheck_seconds}

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Credential:
        try:
            cred = cls(str(doc["credential"]), float(doc["not_after"]), str(doc["user"]),
                       str(doc["pc"]), str(doc["correlation_id"]), int(doc["recheck_seconds"]))
        except (KeyError, TypeError, ValueError):
            raise WireError("bad_response", "credential response malformed") from None
        if doc.get("v") != VERSION or not math.isfinite(cred.not_after):
            raise WireError("bad_response", "credential response malformed")
        return cred


def nonce_bytes(nonce: str) -> bytes:
    """The nonce's 32 random bytes (base64url): the TPM's qualifyingData for certify and quote."""
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (binascii.Error, ValueError):
        return b""
    return raw if len(raw) == NONCE_BYTES else b""


def public_key_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
