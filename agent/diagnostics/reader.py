"""Open a diagnostic bundle as the help desk does: every bundle is hostile until proven otherwise.

Everything happens in memory with hard limits: the file size, the member count, each member's and
the total uncompressed size, the compression ratio, names (no traversal, absolute paths, drive
letters, backslashes, duplicates), no links or special files, strict UTF-8, bounded JSON depth.
Nothing is extracted unless asked, and then only inside the target directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from agent.core import textsafe
from agent.core.errors import AgentError
from agent.core.messages import msg
from agent.diagnostics import schema
from agent.diagnostics.bundle import MANIFEST, SIGNATURE, SIGNER_CERT

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 200
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 96 * 1024 * 1024
MAX_RATIO = 200
MAX_JSON_DEPTH = 40
MAX_SIGNER_CERTS = 5  # leaf + intermediates in signer.pem
MAX_CA_BYTES = 1024 * 1024
AGE_MAGIC = b"age-encryption.org/v1"
# fullmatch: "summary.txt\n" must not pass (``$`` matches before a trailing newline).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,120})?")
UNKNOWN_KEY = "unknown key"
_SCHEMAS = {MANIFEST: schema.MANIFEST, "posture.json": schema.POSTURE,
            "decision.json": schema.DECISION, "connectivity.json": schema.CONNECTIVITY}


class HostileBundle(AgentError):
    """Unreadable or hostile: exit 2. The message names the problem."""

    def __init__(self, detail: str) -> None:
        super().__init__(msg("diag.error.hostile", detail=detail[:300]), detail)


@dataclass
class Verification:
    hashes_ok: bool
    signed: bool
    signature_ok: bool
    signer: str | None  # named only when the signer chains to the city CA (signer_trusted)
    problems: list[str] = field(default_factory=list)  # each names a file
    signer_trusted: bool = False
    signer_problem: str | None = None  # why the signer is an unknown key

    @property
    def verified(self) -> bool:
        return self.hashes_ok and self.signed and self.signature_ok and self.signer_trusted


@dataclass
class Bundle:
    files: dict[str, bytes]
    manifest: dict[str, Any]
    verification: Verification

    def json(self, name: str) -> Any:
        return load_json(self.files[name], name) if name in self.files else None

    def text(self, name: str) -> str:
        return self.files[name].decode("utf-8")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level + 1])
    return level


def load_json(data: bytes, name: str) -> Any:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HostileBundle(f"{name}: not valid UTF-8 JSON ({type(exc).__name__})") from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise HostileBundle(f"{name}: JSON nested deeper than {MAX_JSON_DEPTH}")
    return value


def decrypt(data: bytes, identity_text: str) -> bytes:
    try:
        identities = [pyrage.x25519.Identity.from_str(line.strip())
                      for line in identity_text.splitlines()
                      if line.strip().startswith("AGE-SECRET-KEY-")]
    except Exception as exc:
        raise HostileBundle(f"the help-desk key file is not an age identity: {exc}") from exc
    if not identities:
        raise HostileBundle("the help-desk key file holds no AGE-SECRET-KEY line")
    try:
        return bytes(pyrage.decrypt(data, identities))
    except Exception as exc:
        raise HostileBundle(f"cannot decrypt with this key (wrong key or damaged file): {exc}") \
            from exc


def read_members(data: bytes) -> dict[str, bytes]:
    if len(data) > MAX_BUNDLE_BYTES:
        raise HostileBundle(f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise HostileBundle(f"not a readable zip file: {exc}") from exc
    if len(infos) > MAX_MEMBERS:
        raise HostileBundle(f"{len(infos)} members, more than {MAX_MEMBERS}")
    files: dict[str, bytes] = {}
    total = 0
    for info in infos:
        name = info.filename
        if not _NAME.fullmatch(name) or ".." in name.split("/"):
            raise HostileBundle(f"unsafe member name {name!r}")
        if name in files:
            raise HostileBundle(f"duplicate member {name!r}")
        mode = info.external_attr >> 16
        if info.is_dir() or (mode and not stat.S_ISREG(mode)):
            raise HostileBundle(f"{name}: not a regular file (link or special file)")
        if info.flag_bits & 0x1:
            raise HostileBundle(f"{name}: zip-encrypted member")
        if info.file_size > MAX_MEMBER_BYTES:
            raise HostileBundle(f"{name}: {info.file_size} bytes, over {MAX_MEMBER_BYTES}")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise HostileBundle(f"{name}: compression ratio over {MAX_RATIO} (zip bomb?)")
        try:
            with zf.open(info) as fh:  # never trust the declared size: read at most the limit
                content = fh.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise HostileBundle(f"{name}: cannot be read ({exc})") from exc
        if len(content) > MAX_MEMBER_BYTES or len(content) != info.file_size:
            raise HostileBundle(f"{name}: size differs from the zip directory")
        total += len(content)
        if total > MAX_TOTAL_BYTES:
            raise HostileBundle(f"members add up to more than {MAX_TOTAL_BYTES} bytes")
        files[name] = content
    return files


def load_ca_file(data: bytes) -> list[x509.Certificate]:
    """The city CA certificates the help desk was given (``--ca``): CA certificates only."""
    if len(data) > MAX_CA_BYTES:
        raise HostileBundle(f"the CA file is larger than {MAX_CA_BYTES} bytes")
    try:
        cas = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise HostileBundle(f"the CA file holds no PEM certificate ({exc})") from exc
    for ca in cas:
        try:
            bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise HostileBundle("the CA file holds a certificate that is not a CA: "
                                + textsafe.field(ca.subject.rfc4514_string(), limit=200))
    return cas


def _signer_chain(cert_pem: bytes) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ValueError("signer.pem holds no readable certificate") from None
    if len(chain) > MAX_SIGNER_CERTS:
        raise ValueError(f"signer.pem holds more than {MAX_SIGNER_CERTS} certificates")
    return chain


def _verify_signature(man: bytes, sig: bytes, cert: x509.Certificate) -> None:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:  # an unknown key algorithm: hostile
        raise HostileBundle(f"{SIGNER_CERT}: the signer's key algorithm is not supported "
                            f"({type(exc).__name__})") from exc
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, man, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, man, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(sig, man)
    else:
        raise HostileBundle(f"{SIGNER_CERT}: the signer's key type "
                            f"{type(key).__name__} is not supported")


def signer_trust(chain: Sequence[x509.Certificate], cas: Sequence[x509.Certificate],
                 now: dt.datetime | None = None) -> str | None:
    """None when the leaf chains to one of ``cas`` (valid now) and is a device/user certificate
    the city issued (not a CA, extended key usage clientAuth); otherwise why not."""
    if not cas:
        return "no city CA to check the signer against (give it with --ca)"
    leaf = chain[0]
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            return "the signer is a CA certificate, not a device or user certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "the signer certificate has no extended key usage (clientAuth)"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return "the signer certificate is not a client (device or user) certificate"
    # Chain building, signatures and validity periods by cryptography's verifier; the CA
    # profile is the Web PKI one (intermediates must be CAs), the leaf rules are ours above:
    # a municipal CA's user certificates carry no SAN and need not follow the CA/B profile.
    verifier = (PolicyBuilder().store(Store(list(cas))).time(now or dt.datetime.now(dt.UTC))
                .max_chain_depth(4)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier())
    try:
        verifier.verify(leaf, list(chain[1:]))
    except VerificationError as exc:
        return "the signer does not chain to the city CA: " + textsafe.field(exc, limit=200)
    return None


def _describe(cert: x509.Certificate) -> str:
    fp = cert.fingerprint(hashes.SHA256()).hex()
    return (f"{textsafe.field(cert.subject.rfc4514_string(), limit=300)} "
            f"(SHA-256 {fp[:16]}…)")


def verify(files: dict[str, bytes], cas: Sequence[x509.Certificate] = (),
           now: dt.datetime | None = None) -> tuple[dict[str, Any], Verification]:
    if MANIFEST not in files:
        raise HostileBundle("no manifest.json: not a BYOD Agent bundle")
    man = load_json(files[MANIFEST], MANIFEST)
    if not isinstance(man, dict) or not isinstance(man.get("files"), list):
        raise HostileBundle("manifest.json has no file list")
    _check_schema(MANIFEST, man)
    listed = man["files"]
    v = Verification(hashes_ok=True, signed=False, signature_ok=False, signer=None)
    seen = set()
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise HostileBundle("manifest.json: malformed file entry")
        name = entry["name"]
        seen.add(name)
        if name not in files:
            v.hashes_ok = False
            v.problems.append(f"{name}: listed in the manifest but missing")
        elif hashlib.sha256(files[name]).hexdigest() != entry.get("sha256"):
            v.hashes_ok = False
            v.problems.append(f"{name}: content does not match the manifest (modified)")
    for name in files:
        if name not in seen and name not in (MANIFEST, SIGNATURE, SIGNER_CERT):
            v.hashes_ok = False
            v.problems.append(f"{name}: not listed in the manifest (added)")
    if SIGNATURE in files:
        v.signed = True
        try:
            chain = _signer_chain(files.get(SIGNER_CERT, b""))
            _verify_signature(files[MANIFEST], files[SIGNATURE], chain[0])
            v.signature_ok = True
        except (InvalidSignature, ValueError, TypeError) as exc:
            v.problems.append(f"{SIGNATURE}: signature does not verify ({type(exc).__name__})")
        if v.signature_ok:
            v.signer_problem = signer_trust(chain, cas, now)
            v.signer_trusted = v.signer_problem is None
            v.signer = _describe(chain[0]) if v.signer_trusted else UNKNOWN_KEY
    return man, v


def _check_schema(name: str, value: Any) -> None:
    try:
        schema.check(_SCHEMAS[name], value, name)
    except schema.SchemaError as exc:
        raise HostileBundle(f"{name}: wrong structure ({textsafe.field(exc, limit=300)})") \
            from exc


def open_bundle(data: bytes, identity_text: str | None = None,
                cas: Sequence[x509.Certificate] = (), now: dt.datetime | None = None) -> Bundle:
    """Decrypt (when needed), read, check every JSON member's structure, verify. Raises
    HostileBundle for anything unreadable or of the wrong shape (exit 2)."""
    if data.startswith(AGE_MAGIC):
        if identity_text is None:
            raise HostileBundle("the bundle is encrypted: give the help-desk key with --key")
        data = decrypt(data, identity_text)
    files = read_members(data)
    man, verification = verify(files, cas, now)
    for name in _SCHEMAS:
        if name != MANIFEST and name in files:
            _check_schema(name, load_json(files[name], name))
    return Bundle(files, man, verification)


def extract(bundle: Bundle, target: Path) -> list[Path]:
    """Write the members under ``target`` only (names were validated on reading)."""
    root = target.resolve()
    out = []
    for name, content in bundle.files.items():
        dest = (root / name).resolve()
        if root not in dest.parents:
            raise HostileBundle(f"{name}: would be written outside {root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("xb") as fh:  # never overwrite or follow an existing link
            fh.write(content)
        out.append(dest)
    return out
