"""macOS: the device key in the Secure Enclave through the Security framework (pyobjc).

Pure parts (tested on constructed inputs on Linux): the attribute dictionary for
SecKeyCreateRandomKey, described by the Security constants' names so it can be built and checked
without macOS, and the parser of SecKeyCopyExternalRepresentation's public key (ANSI X9.63:
04 || X || Y). Signatures made with kSecKeyAlgorithmECDSASignatureMessageX962SHA256 are already
DER (X9.62), so they need no conversion. The live pyobjc calls are not written yet (issue 22 left
it open): a Mac enrolls with the software key.

There is no Secure Enclave key attestation a verifier could check without Apple's managed-device
attestation (MDM): a Secure Enclave key reports protection "hardware" to the staff but the
verifier records it as software until that exists (docs/certificates.md).
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

TAG = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def key_attributes(tag: str) -> dict[str, Any]:
    """SecKeyCreateRandomKey's attributes, as constant names (the live code maps them)."""
    if not TAG.fullmatch(tag):
        raise ValueError("tag: letters, digits, _ . - only")
    return {
        "kSecAttrKeyType": "kSecAttrKeyTypeECSECPrimeRandom",
        "kSecAttrKeySizeInBits": 256,
        "kSecAttrTokenID": "kSecAttrTokenIDSecureEnclave",  # made inside, never leaves it
        "kSecPrivateKeyAttrs": {
            "kSecAttrIsPermanent": True,
            "kSecAttrApplicationTag": tag.encode("ascii"),
            # usable only on this device, while it is unlocked, with no user prompt
            "kSecAttrAccessControl": ("kSecAttrAccessibleWhenUnlockedThisDeviceOnly",
                                      ("kSecAccessControlPrivateKeyUsage",)),
        },
    }


def parse_x963_public(data: bytes) -> ec.EllipticCurvePublicKey:
    if len(data) != 65 or data[0] != 4:
        raise ValueError("not an uncompressed P-256 point (X9.63)")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
