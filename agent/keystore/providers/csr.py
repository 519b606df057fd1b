"""A PKCS#10 request signed by any provider's key (cryptography's builder wants a private key
object in memory, which a TPM or Secure Enclave key never is).

The request is the same one ``store.new_key_and_csr`` makes for a software key: the subject, the
key, and an extensionRequest for EKU clientAuth; ECDSA with SHA-256 (RFC 2986, RFC 5758 §3.2:
the AlgorithmIdentifier has no parameters). The DER is built here and checked by parsing it back
with cryptography and verifying its signature.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.keystore.providers import Signer

_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
_EKU = "2.5.29.37"


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        value = part
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def certification_request_info(name: x509.Name, key: ec.EllipticCurvePublicKey) -> bytes:
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]).public_bytes()
    extensions = seq(seq(oid(_EKU), tlv(0x04, eku)))
    attribute = seq(oid(_EXTENSION_REQUEST), tlv(0x31, extensions))
    return seq(tlv(0x02, b"\x00"), name.public_bytes(), spki, tlv(0xA0, attribute))


def build_csr(name: x509.Name, signer: Signer) -> bytes:
    """PEM CSR for ``name`` and the signer's key, signed by the signer (inside its hardware)."""
    info = certification_request_info(name, signer.public_key())
    signature = signer.sign(info, ec.ECDSA(hashes.SHA256()))
    der = seq(info, seq(oid(_ECDSA_SHA256)), tlv(0x03, b"\x00" + signature))
    csr = x509.load_der_x509_csr(der)  # our own bytes must parse and verify before they leave
    if not csr.is_signature_valid:
        raise ValueError("the provider's signature over the request does not verify")
    return csr.public_bytes(serialization.Encoding.PEM)
