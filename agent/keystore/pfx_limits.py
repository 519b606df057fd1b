"""Caps on the key-derivation work a PKCS#12 file from outside can ask for, read before OpenSSL.

A PFX names its own iteration counts: the MAC's (``MacData.iterations``, RFC 7292 §4) and each
password-based encryption's (PKCS#12 PBE params, PBES1 ``PBEParameter``, PBES2/PBKDF2
``iterationCount``, PBMAC1, RFC 8018 / RFC 9579). ``cryptography``'s ``load_pkcs12`` runs them
all, in C, without a way to stop: a MAC iteration count of 2**31 is minutes of CPU with the tray
frozen. So the structure is walked first with a small bounded ASN.1 reader (DER and BER
indefinite lengths, depth, node count and integer sizes capped) and refused with a clear message
when a count is over :data:`MAX_ITERATIONS` (or scrypt's cost over its cap), before any
derivation runs. Real files: Windows and OpenSSL 3 write 2048 (OpenSSL's PKCS12_DEFAULT_ITER),
macOS Keychain exports 2000-ish, NIST SP 800-132 suggests at least 1000; 600,000 is OWASP's 2023
PBKDF2-SHA256 figure. 2,000,000 leaves room above all of those.

Not covered (docs/security.md): a key bag hidden inside an *encrypted* SafeContents carries its
parameters inside the ciphertext; its outer encryption's count is still capped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import pkcs12

from agent.core.messages import msg
from agent.keystore.errors import KeyState, KeystoreError

log = logging.getLogger("agent.keystore")
MAX_ITERATIONS = 2_000_000
MAX_TOTAL_ITERATIONS = 8_000_000  # all KDF runs of one file together
MAX_SCRYPT_N = 1 << 20
MAX_DEPTH = 40
MAX_NODES = 20_000
MAX_INT_BYTES = 8

_PKCS12_PBE = "1.2.840.113549.1.12.1."  # pbeWithSHAAnd... (RFC 7292 appendix C)
_PBES1 = {"1.2.840.113549.1.5.1", "1.2.840.113549.1.5.3", "1.2.840.113549.1.5.4",
          "1.2.840.113549.1.5.6", "1.2.840.113549.1.5.10", "1.2.840.113549.1.5.11"}
_PBKDF2 = "1.2.840.113549.1.5.12"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"


class PfxLimitError(ValueError):
    """Over a cap, or not readable as ASN.1. ``reason`` is ``iterations`` or ``structure``."""

    def __init__(self, reason: str, detail: str, value: int = 0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.value = value


@dataclass
class _Node:
    tag: int
    constructed: bool
    content: bytes
    children: list[_Node]


class _Reader:
    def __init__(self) -> None:
        self.nodes = 0

    def parse_all(self, data: bytes, depth: int) -> list[_Node]:
        out, pos = [], 0
        while pos < len(data):
            node, pos = self.parse(data, pos, depth)
            if node is None:  # end-of-contents outside an indefinite value
                raise PfxLimitError("structure", "unexpected end-of-contents")
            out.append(node)
        return out

    def parse(self, data: bytes, pos: int, depth: int) -> tuple[_Node | None, int]:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise PfxLimitError("structure", "ASN.1 nested too deeply or too many elements")
        if pos + 2 > len(data):
            raise PfxLimitError("structure", "truncated ASN.1")
        first = data[pos]
        if first & 0x1F == 0x1F:
            raise PfxLimitError("structure", "high tag numbers are not used in PKCS#12")
        if first == 0 and data[pos + 1] == 0:
            return None, pos + 2
        constructed = bool(first & 0x20)
        length_byte = data[pos + 1]
        pos += 2
        if length_byte == 0x80:  # BER indefinite length (constructed only)
            if not constructed:
                raise PfxLimitError("structure", "indefinite length on a primitive value")
            children = []
            while True:
                child, pos = self.parse(data, pos, depth + 1)
                if child is None:
                    break
                children.append(child)
            content = b"".join(c.content for c in children) if first & 0x1F == 4 else b""
            return _Node(first, True, content, children), pos
        if length_byte & 0x80:
            count = length_byte & 0x7F
            if count > 4 or pos + count > len(data):
                raise PfxLimitError("structure", "ASN.1 length too large")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        else:
            length = length_byte
        end = pos + length
        if end > len(data):
            raise PfxLimitError("structure", "ASN.1 length past the end of the file")
        content = data[pos:end]
        children = self.parse_all(content, depth + 1) if constructed else []
        if constructed and first & 0x1F == 4:  # constructed OCTET STRING: its pieces joined
            content = b"".join(c.content for c in children)
        return _Node(first, constructed, content, children), end


def _oid(content: bytes) -> str:
    if not content:
        return ""
    parts = [content[0] // 40, content[0] % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _integer(node: _Node, what: str) -> int:
    if node.tag != 0x02:
        raise PfxLimitError("structure", f"{what}: not an INTEGER")
    if len(node.content) > MAX_INT_BYTES:
        raise PfxLimitError("iterations", f"{what}: an integer of {len(node.content)} bytes",
                            1 << 63)
    return int.from_bytes(node.content, "big", signed=True)


def _walk(nodes: list[_Node], reader: _Reader, depth: int) -> Iterator[_Node]:
    for node in nodes:
        yield node
        children = node.children
        if node.tag in (0x04, 0x24) and node.content[:1] == b"\x30":  # DER inside OCTET STRING
            try:
                children = reader.parse_all(node.content, depth + 1)
            except PfxLimitError as exc:
                if exc.reason == "iterations":
                    raise
                children = []  # not ASN.1 after all (a salt, a digest): a leaf
        if children:
            yield from _walk(children, reader, depth + 1)


def _kdf_counts(node: _Node) -> Iterator[tuple[str, int]]:
    """(what, iterations) of an AlgorithmIdentifier SEQUENCE {OID, params} we know."""
    if node.tag != 0x30 or len(node.children) < 2 or node.children[0].tag != 0x06:
        return
    oid = _oid(node.children[0].content)
    params = node.children[1]
    if params.tag != 0x30:
        return
    fields = params.children
    if (oid.startswith(_PKCS12_PBE) or oid in _PBES1) and len(fields) >= 2:
        yield "PBE iterations", _integer(fields[1], "PBE iterations")
    elif oid == _PBKDF2 and len(fields) >= 2:
        yield "PBKDF2 iterations", _integer(fields[1], "PBKDF2 iterations")
    elif oid == _SCRYPT and len(fields) >= 4:
        n, r, p = (_integer(f, "scrypt parameter") for f in fields[1:4])
        if n > MAX_SCRYPT_N or r > 32 or p > 16 or n * r * p > MAX_SCRYPT_N * 8:
            raise PfxLimitError("iterations", f"scrypt N={n} r={r} p={p} over the cap", n * r * p)


def check(data: bytes) -> int:
    """Raise PfxLimitError when the file asks for more KDF work than the caps; else return the
    total iteration count found (for the log)."""
    reader = _Reader()
    top = reader.parse_all(data, 0)
    if len(top) != 1 or top[0].tag != 0x30:
        raise PfxLimitError("structure", "not a PKCS#12 PFX (one SEQUENCE expected)")
    counts: list[tuple[str, int]] = []
    pfx = top[0].children
    if len(pfx) >= 3:  # MacData ::= SEQUENCE { mac DigestInfo, macSalt, iterations DEFAULT 1 }
        mac = pfx[2]
        if mac.tag == 0x30 and len(mac.children) >= 3:
            counts.append(("MAC iterations", _integer(mac.children[2], "MAC iterations")))
    for node in _walk(top, reader, 0):
        counts.extend(_kdf_counts(node))
    total = 0
    for what, value in counts:
        if value > MAX_ITERATIONS or value < 0:
            raise PfxLimitError("iterations", f"{what} {value} > {MAX_ITERATIONS}", value)
        total += value
    if total > MAX_TOTAL_ITERATIONS:
        raise PfxLimitError("iterations", f"{total} iterations in all > {MAX_TOTAL_ITERATIONS}",
                            total)
    return total


MAX_PFX_BYTES = 1024 * 1024  # a user's PKCS#12 is a few KB


def load(data: bytes, password: bytes | None) -> pkcs12.PKCS12KeyAndCertificates:
    """``pkcs12.load_pkcs12`` after the caps: KeystoreError (exit 2) with a clear message for a
    file over a cap or not readable, before any key derivation runs."""
    if len(data) > MAX_PFX_BYTES:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.p12_unreadable"))
    try:
        check(data)
    except PfxLimitError as exc:
        log.warning("PKCS#12 refused before key derivation: %s", exc)
        key = ("cert.error.p12_kdf_cap" if exc.reason == "iterations"
               else "cert.error.p12_unreadable")
        raise KeystoreError(KeyState.INVALID_INPUT, msg(key, limit=MAX_ITERATIONS)) from None
    try:
        return pkcs12.load_pkcs12(data, password)
    except ValueError:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.p12_unreadable")) from None
