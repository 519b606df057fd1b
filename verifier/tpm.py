"""Checks of TPM key attestation (issue 22): pure parsers of TPM structures and their verification.

The agent sends (``key_attestation`` in /v1/attest, docs/verifier-protocol.md):

- ``key_public``: the device key's TPMT_PUBLIC, ``ak_public``: the attestation key's TPMT_PUBLIC;
- ``certify``: TPMS_ATTEST from TPM2_Certify(device key, by the AK, qualifyingData = nonce) and
  its signature (DER ECDSA P-256 / SHA-256 by the AK);
- ``quote`` (optional): TPMS_ATTEST from TPM2_Quote over the boot PCRs with the same nonce, its
  signature and the PCR values it covers.

What is proved: an AK whose template says restricted|sign|fixedTPM (so the TPM only signs
structures it made itself) certifies, over this very nonce, a key whose name is the hash of a
template with fixedTPM|fixedParent|sensitiveDataOrigin and whose point is the enrolled key. What
is **not** proved yet: that the AK belongs to a genuine TPM (the EK certificate chain and
TPM2_ActivateCredential are not implemented): a TPM emulator passes, which is exactly what the
tests use. docs/certificates.md says so.

Structures: TPM 2.0 Library, Part 2 (Structures), 10.12.12 TPMS_ATTEST, 12.2.4 TPMT_PUBLIC. All
reads are bounds-checked; any malformed input raises TpmEvidenceError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from agent.core import i18n

TPM_GENERATED = 0xFF544347
ST_ATTEST_CERTIFY = 0x8017
ST_ATTEST_QUOTE = 0x8018
ALG_ECC = 0x0023
ALG_SHA256 = 0x000B
ALG_NULL = 0x0010
ECC_NIST_P256 = 0x0003

FIXED_TPM = 1 << 1
FIXED_PARENT = 1 << 4
SENSITIVE_DATA_ORIGIN = 1 << 5
RESTRICTED = 1 << 16
SIGN = 1 << 18
KEY_REQUIRED = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | SIGN
AK_REQUIRED = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | RESTRICTED | SIGN
MAX_B64 = 4096
MAX_PCRS = 24
FIELDS = {"provider", "ak_public", "key_public", "certify", "quote"}


class TpmEvidenceError(ValueError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise TpmEvidenceError("structure is truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack(">Q", self.take(8))[0]
        return value

    def tpm2b(self, limit: int = 1024) -> bytes:
        size = self.u16()
        if size > limit:
            raise TpmEvidenceError("sized buffer too large")
        return self.take(size)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise TpmEvidenceError("trailing bytes after the structure")


@dataclass(frozen=True)
class EccPublic:
    """A parsed TPMT_PUBLIC of an ECC P-256 key, with its TPM name."""

    attributes: int
    scheme: int
    key: ec.EllipticCurvePublicKey
    name: bytes  # nameAlg (SHA-256) || SHA-256(TPMT_PUBLIC)


def parse_ecc_public(raw: bytes) -> EccPublic:
    r = _Reader(raw)
    if r.u16() != ALG_ECC:
        raise TpmEvidenceError("key is not ECC")
    if r.u16() != ALG_SHA256:
        raise TpmEvidenceError("name algorithm is not SHA-256")
    attributes = r.u32()
    r.tpm2b(64)  # authPolicy
    if r.u16() != ALG_NULL:  # symmetric: a signing key has none
        raise TpmEvidenceError("a signing key has no symmetric algorithm")
    scheme = r.u16()
    if scheme != ALG_NULL:
        r.u16()  # the scheme's hash
    if r.u16() != ECC_NIST_P256:
        raise TpmEvidenceError("curve is not NIST P-256")
    if r.u16() != ALG_NULL:
        raise TpmEvidenceError("a signing key has no KDF")
    x, y = r.tpm2b(32), r.tpm2b(32)
    r.end()
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + x.rjust(32, b"\0") + y.rjust(32, b"\0"))
    except ValueError:
        raise TpmEvidenceError("point is not on P-256") from None
    return EccPublic(attributes, scheme, key,
                     struct.pack(">H", ALG_SHA256) + hashlib.sha256(raw).digest())


@dataclass(frozen=True)
class Attest:
    """A parsed TPMS_ATTEST (certify or quote)."""

    type: int
    extra_data: bytes
    reset_count: int
    restart_count: int
    certified_name: bytes = b""
    pcr_select: tuple[tuple[int, tuple[int, ...]], ...] = ()
    pcr_digest: bytes = b""


def parse_attest(raw: bytes) -> Attest:
    r = _Reader(raw)
    if r.u32() != TPM_GENERATED:
        raise TpmEvidenceError("not made by a TPM (magic is not TPM_GENERATED_VALUE)")
    kind = r.u16()
    r.tpm2b(68)  # qualifiedSigner
    extra = r.tpm2b(64)
    r.u64()  # clock
    reset, restart = r.u32(), r.u32()
    r.u8()  # safe
    r.u64()  # firmwareVersion
    if kind == ST_ATTEST_CERTIFY:
        name = r.tpm2b(68)
        r.tpm2b(68)  # qualifiedName
        r.end()
        return Attest(kind, extra, reset, restart, certified_name=name)
    if kind == ST_ATTEST_QUOTE:
        count = r.u32()
        if count > 4:
            raise TpmEvidenceError("too many PCR banks")
        banks = []
        for _ in range(count):
            alg, size = r.u16(), r.u8()
            if size > 4:
                raise TpmEvidenceError("PCR bitmap too large")
            bitmap = r.take(size)
            banks.append((alg, tuple(i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1)))
        digest = r.tpm2b(64)
        r.end()
        return Attest(kind, extra, reset, restart, pcr_select=tuple(banks), pcr_digest=digest)
    raise TpmEvidenceError(f"unexpected attestation type 0x{kind:04x}")


@dataclass(frozen=True)
class KeyAttestation:
    """What the verifier records: the protection level and how it was established."""

    level: str  # "hardware" or "software"
    provider: str = ""
    ak_name: str = ""
    pcrs: Mapping[str, str] | None = None
    detail: str = ""

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key_protection": self.level}
        if self.level == "hardware":
            out.update(provider=self.provider, ak_name=self.ak_name,
                       ak_trust="not_chained_to_ek",  # see the module docstring
                       boot_pcrs=dict(self.pcrs) if self.pcrs is not None else None)
        elif self.detail:
            out["detail"] = self.detail
        return out


SOFTWARE = KeyAttestation("software", detail="no key attestation sent")


def _b64(doc: Mapping[str, Any], name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_B64:
        raise TpmEvidenceError(f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TpmEvidenceError(f"{name} is not base64") from None


def _signed(doc: Any, ak: ec.EllipticCurvePublicKey, what: str) -> Attest:
    if not isinstance(doc, Mapping):
        raise TpmEvidenceError(f"{what} must be an object")
    attest, sig = _b64(doc, "attest"), _b64(doc, "signature")
    try:
        ak.verify(sig, attest, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise TpmEvidenceError(f"{what}: the attestation key's signature does not verify") \
            from None
    return parse_attest(attest)


def _quote_pcrs(doc: Mapping[str, Any], quote: Attest) -> dict[str, str]:
    pcrs = doc.get("pcrs")
    if not isinstance(pcrs, Mapping) or len(pcrs) > MAX_PCRS:
        raise TpmEvidenceError("quote.pcrs must be an object")
    if len(quote.pcr_select) != 1 or quote.pcr_select[0][0] != ALG_SHA256:
        raise TpmEvidenceError("quote must cover one SHA-256 PCR bank")
    selected = quote.pcr_select[0][1]
    if sorted(str(i) for i in selected) != sorted(str(k) for k in pcrs):
        raise TpmEvidenceError("quote.pcrs are not the PCRs the quote covers")
    values = []
    for index in selected:
        text = pcrs[str(index)]
        try:
            value = bytes.fromhex(text) if isinstance(text, str) else b""
        except ValueError:
            value = b""
        if len(value) != 32:
            raise TpmEvidenceError(f"PCR {index} is not a SHA-256 value")
        values.append(value)
    if hashlib.sha256(b"".join(values)).digest() != quote.pcr_digest:
        raise TpmEvidenceError("quote.pcrs do not match the quoted PCR digest")
    return {str(i): v.hex() for i, v in zip(selected, values, strict=True)}


def check_key_attestation(doc: Mapping[str, Any] | None, enrolled: ec.EllipticCurvePublicKey,
                          nonce: bytes) -> KeyAttestation:
    """``software`` without evidence; ``hardware`` when every check passes; TpmEvidenceError
    (fail closed, the attestation is refused) when evidence is present but does not hold."""
    if doc is None:
        return SOFTWARE
    if not isinstance(doc, Mapping) or not set(doc) <= FIELDS or "certify" not in doc:
        raise TpmEvidenceError("key_attestation fields")
    provider = doc.get("provider")
    if provider != "tpm2":
        raise TpmEvidenceError("unknown key provider")
    key = parse_ecc_public(_b64(doc, "key_public"))
    if key.attributes & KEY_REQUIRED != KEY_REQUIRED:
        raise TpmEvidenceError("device key is not fixedTPM|fixedParent|sensitiveDataOrigin|sign")
    if key.key.public_numbers() != enrolled.public_numbers():
        raise TpmEvidenceError("certified key is not the enrolled key")
    ak = parse_ecc_public(_b64(doc, "ak_public"))
    if ak.attributes & AK_REQUIRED != AK_REQUIRED:
        raise TpmEvidenceError("attestation key is not a restricted fixedTPM signing key")
    certify = _signed(doc["certify"], ak.key, "certify")
    if certify.type != ST_ATTEST_CERTIFY:
        raise TpmEvidenceError("certify is not a TPM2_Certify structure")
    if certify.extra_data != nonce:
        raise TpmEvidenceError("certify is not over this nonce (stale or replayed)")
    if certify.certified_name != key.name:
        raise TpmEvidenceError("certify names another key")
    pcrs = None
    if "quote" in doc:
        quote = _signed(doc["quote"], ak.key, "quote")
        if quote.type != ST_ATTEST_QUOTE:
            raise TpmEvidenceError("quote is not a TPM2_Quote structure")
        if quote.extra_data != nonce:
            raise TpmEvidenceError("quote is not over this nonce (stale or replayed)")
        pcrs = _quote_pcrs(doc["quote"], quote)
    return KeyAttestation("hardware", "tpm2", ak.name.hex(), pcrs)


def key_check(status: str, outcome: str, found: KeyAttestation) -> dict[str, Any]:
    """The ``key_protection`` entry stored with the attestation's checks (the console lists it)."""
    key = f"verifier.key.{found.level}"
    return {"id": "key_protection", "status": status, "outcome": outcome,
            "reason": {lang: i18n.text(key, lang) for lang in i18n.LANGS},
            "evidence": found.record()}
