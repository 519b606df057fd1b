"""Where the device key lives, behind one interface (docs/certificates.md, "Key providers").

- ``software``: today's encrypted PKCS#8 file, its passphrase in the OS keyring. The owner of the
  PC can copy both to another PC; the signed policy can forbid it (``[verifier] key_protection``).
- ``tpm2``: a TPM 2.0 key on Linux (tpm2-pytss); the private part never leaves the chip
  (fixedTPM|fixedParent), the file on disk is a blob only this TPM can load.
- ``windows_pcp`` / ``macos_se``: the Microsoft Platform Crypto Provider (NCrypt) and the Secure
  Enclave. Their request building and response parsing are pure and tested here; the live calls
  are not written yet (only their pure halves): the Windows and macOS runners would run them.

Every provider signs with ECDSA P-256 / SHA-256 and returns DER, so the CSR, the attestation
signature and the verifier's checks are the same whichever holds the key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec


class Protection(StrEnum):
    HARDWARE = "hardware"  # a TPM, the Platform Crypto Provider or the Secure Enclave
    SOFTWARE = "software"  # an encrypted file; copyable by whoever owns the PC


class Signer(Protocol):
    """What signs for the device: ``cryptography``'s EC private key has this very shape, so a
    software key and a hardware key are used the same way (``sign(data, ec.ECDSA(SHA256()))``)."""

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
             ) -> bytes: ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...


class KeyEvidence(Protocol):
    """A hardware key that can prove where it lives (TPM2_Certify by an attestation key)."""

    def key_evidence(self, nonce: bytes) -> dict[str, Any]: ...


__all__ = ["KeyEvidence", "Protection", "Signer"]
