"""Windows: the device key in the TPM through the Microsoft Platform Crypto Provider (NCrypt).

Pure parts (tested on constructed inputs on Linux): the call plan that creates a non-exportable
ECDSA P-256 key, the BCRYPT_ECCPUBLIC_BLOB parser, the P1363 -> DER signature conversion and the
platform-type string parser. The live ctypes calls into ncrypt.dll that would follow this plan
are not written yet (issue 22 left it open): a Windows PC enrolls with the software key.

Shapes: BCRYPT_ECCKEY_BLOB (bcrypt.h: ULONG dwMagic, ULONG cbKey, then X and Y big-endian, each
cbKey bytes; BCRYPT_ECDSA_PUBLIC_P256_MAGIC = 0x31534345 "ECS1"); NCryptSignHash returns r || s
(IEEE P1363); NCRYPT_PCP_PLATFORM_TYPE_PROPERTY ("PCP_PLATFORM_TYPE") is a string such as
"TPM-Version:2.0 -Level:0-Revision:1.38-VendorId:0x4e544300-Firmware:..." (reconstructed from
Microsoft's TPM platform crypto-provider toolkit documentation, not recorded on a real PC).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

PROVIDER = "Microsoft Platform Crypto Provider"  # MS_PLATFORM_CRYPTO_PROVIDER
ALGORITHM = "ECDSA_P256"  # NCRYPT_ECDSA_P256_ALGORITHM
EXPORT_POLICY = "Export Policy"  # NCRYPT_EXPORT_POLICY_PROPERTY
ECCPUBLIC_BLOB = "ECCPUBLICBLOB"  # BCRYPT_ECCPUBLIC_BLOB
PLATFORM_TYPE = "PCP_PLATFORM_TYPE"
ECDSA_PUBLIC_P256_MAGIC = 0x31534345
NCRYPT_SILENT_FLAG = 0x40  # never show UI: staff get no prompt
KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[object, ...]


def create_plan(key_name: str) -> list[Call]:
    """The NCrypt calls that make a persisted, non-exportable P-256 key in the TPM."""
    if not KEY_NAME.fullmatch(key_name):
        raise ValueError("key name: letters, digits, _ . - only")
    return [
        Call("NCryptOpenStorageProvider", (PROVIDER, 0)),
        Call("NCryptCreatePersistedKey", (ALGORITHM, key_name, 0, 0)),
        # 0 = no NCRYPT_ALLOW_EXPORT_FLAG / PLAINTEXT_EXPORT: the TPM never releases the key
        Call("NCryptSetProperty", (EXPORT_POLICY, struct.pack("<I", 0), NCRYPT_SILENT_FLAG)),
        Call("NCryptFinalizeKey", (NCRYPT_SILENT_FLAG,)),
        Call("NCryptExportKey", (ECCPUBLIC_BLOB,)),
    ]


def parse_ecc_public_blob(blob: bytes) -> ec.EllipticCurvePublicKey:
    if len(blob) < 8:
        raise ValueError("ECC public blob too short")
    magic, size = struct.unpack("<II", blob[:8])
    if magic != ECDSA_PUBLIC_P256_MAGIC or size != 32 or len(blob) != 8 + 2 * size:
        raise ValueError("not a BCRYPT_ECDSA_PUBLIC_P256 blob")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + blob[8:])


def p1363_to_der(signature: bytes) -> bytes:
    if len(signature) != 64:
        raise ValueError("a P-256 signature is 64 bytes (r || s)")
    return encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                int.from_bytes(signature[32:], "big"))


def parse_platform_type(text: str) -> str | None:
    """"TPM-Version:2.0 ..." -> "2.0"; None when the string names no TPM version."""
    m = re.match(r"\s*TPM-Version:(\d+\.\d+)", text[:256])
    return m.group(1) if m else None
