"""Open a diagnostic bundle as the help desk does: every bundle is hostile until proven otherwise.

Everything happens in memory with hard limits: the file size, the member count, each member's and
the total uncompressed size, the compression ratio, names (no traversal, absolute paths, drive
letters, backslashes, duplicates), no links or special files, strict UTF-8, bounded JSON depth.
Nothing is extracted unless asked, and then only inside the target directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from agent.diagnostics.bundle import MANIFEST, SIGNATURE, SIGNER_CERT

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 200
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 96 * 1024 * 1024
MAX_RATIO = 200
MAX_JSON_DEPTH = 40
AGE_MAGIC = b"age-encryption.org/v1"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,120})?$")


class HostileBundle(Exception):
    """Unreadable or hostile: exit 2. The message names the problem."""


@dataclass
class Verification:
    hashes_ok: bool
    signed: bool
    signature_ok: bool
    signer: str | None
    problems: list[str] = field(default_factory=list)  # each names a file

    @property
    def verified(self) -> bool:
        return self.hashes_ok and self.signed and self.signature_ok


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
        if not _NAME.match(name) or ".." in name.split("/"):
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


def _verify_signature(man: bytes, sig: bytes, cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, man, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, man, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(sig, man)
    else:
        raise ValueError("unsupported signer key type")
    fp = cert.fingerprint(hashes.SHA256()).hex()
    return f"{cert.subject.rfc4514_string()} (SHA-256 {fp[:16]}…)"


def verify(files: dict[str, bytes]) -> tuple[dict[str, Any], Verification]:
    if MANIFEST not in files:
        raise HostileBundle("no manifest.json: not a BYOD Agent bundle")
    man = load_json(files[MANIFEST], MANIFEST)
    listed = man.get("files") if isinstance(man, dict) else None
    if not isinstance(listed, list):
        raise HostileBundle("manifest.json has no file list")
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
            v.signer = _verify_signature(files[MANIFEST], files[SIGNATURE],
                                         files.get(SIGNER_CERT, b""))
            v.signature_ok = True
        except (InvalidSignature, ValueError, TypeError) as exc:
            v.problems.append(f"{SIGNATURE}: signature does not verify ({type(exc).__name__})")
    return man, v


def open_bundle(data: bytes, identity_text: str | None = None) -> Bundle:
    if data.startswith(AGE_MAGIC):
        if identity_text is None:
            raise HostileBundle("the bundle is encrypted: give the help-desk key with --key")
        data = decrypt(data, identity_text)
    files = read_members(data)
    man, verification = verify(files)
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
