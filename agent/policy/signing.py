"""Ed25519 detached signatures over the exact policy bytes, and the trust anchors that check them.

``POLICY.sig`` is a small UTF-8 JSON object (documented in docs/policy.md)::

    {"format": "byod-policy-sig/1", "algorithm": "ed25519",
     "key_id": "<first 16 hex digits of SHA-256 of the raw 32-byte public key>",
     "signature": "<base64 of the 64-byte signature>"}

The key id only selects the anchor; trust comes from the signature. Anchors are the ``*.pub`` files
(PEM SubjectPublicKeyInfo) in ``resources/trust/``; nothing else can add one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.core.messages import msg
from agent.core.paths import resources_dir
from agent.policy.errors import PolicyRefused

SIG_FORMAT = "byod-policy-sig/1"
MAX_SIG_BYTES = 4096
MAX_PUB_BYTES = 4096


@dataclass(frozen=True)
class TrustAnchor:
    name: str  # file name without .pub, e.g. "demo-DEMO"
    key_id: str
    key: Ed25519PublicKey

    @property
    def demo(self) -> bool:
        return "DEMO" in self.name.upper()


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:16]


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Raises ValueError unless ``pem`` is one Ed25519 public key."""
    if len(pem) > MAX_PUB_BYTES:
        raise ValueError("public key file too large")
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 key ({type(key).__name__})")
    return key


def trust_dir() -> Path:
    return resources_dir() / "trust"


def load_trust_anchors(directory: Path | None = None) -> tuple[TrustAnchor, ...]:
    """Every readable Ed25519 ``*.pub`` in the directory; a broken file is skipped, not trusted."""
    anchors = []
    for path in sorted((directory or trust_dir()).glob("*.pub")):
        try:
            key = load_public_key(path.read_bytes())
        except (OSError, ValueError):
            continue
        anchors.append(TrustAnchor(path.stem, key_id(key), key))
    return tuple(anchors)


def sign(data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The .sig file content for ``data``."""
    doc = {"format": SIG_FORMAT, "algorithm": "ed25519",
           "key_id": key_id(private_key.public_key()),
           "signature": base64.b64encode(private_key.sign(data)).decode("ascii")}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def parse_signature(raw: bytes) -> tuple[str, bytes]:
    """.sig bytes -> (key id, 64-byte signature), strictly."""
    def bad(detail: str) -> PolicyRefused:
        return PolicyRefused(msg("policy.refused.sig_malformed", detail=detail),
                             f"signature file: {detail}")

    if len(raw) > MAX_SIG_BYTES:
        raise bad("too large")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad("not JSON") from exc
    if not isinstance(doc, dict) or set(doc) != {"format", "algorithm", "key_id", "signature"}:
        raise bad("unexpected fields")
    if doc["format"] != SIG_FORMAT or doc["algorithm"] != "ed25519":
        raise bad(f"unsupported format {str(doc['format'])[:40]}/{str(doc['algorithm'])[:20]}")
    kid, sig_text = doc["key_id"], doc["signature"]
    if not isinstance(kid, str) or len(kid) != 16 or any(c not in "0123456789abcdef" for c in kid):
        raise bad("bad key_id")
    if not isinstance(sig_text, str):
        raise bad("bad signature field")
    try:
        sig = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad("signature is not base64") from exc
    if len(sig) != 64:
        raise bad(f"signature has {len(sig)} bytes, not 64")
    return kid, sig


def verify(data: bytes, sig_raw: bytes, anchors: Sequence[TrustAnchor]) -> TrustAnchor:
    """The anchor whose key signed exactly ``data``; PolicyRefused otherwise."""
    if not anchors:
        raise PolicyRefused(msg("policy.refused.no_trust_anchor"), "no trust anchor installed")
    kid, sig = parse_signature(sig_raw)
    anchor = next((a for a in anchors if a.key_id == kid), None)
    if anchor is None:
        raise PolicyRefused(msg("policy.refused.unknown_signer", key_id=kid),
                            f"key {kid} is not a trust anchor")
    try:
        anchor.key.verify(sig, data)
    except InvalidSignature as exc:
        raise PolicyRefused(msg("policy.refused.bad_signature", key_id=kid),
                            f"signature by {kid} does not match the policy bytes") from exc
    return anchor
