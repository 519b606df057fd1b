"""Pure security helpers: argon2id passwords, TOTP, sealed secrets, tokens, safe text, CSV cells.

No database and no HTTP here, so each piece is tested on its own (tests/console/test_security.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

import pyotp
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# argon2-cffi's RFC 9106 "low memory" profile: argon2id, t=3, m=64 MiB, p=4.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32,
                         salt_len=16, type=Type.ID)
# A real hash of a random password: unknown user names cost the same time as known ones.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str, issuer: str = "BYOD Console") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(secret: str, code: str, now: float, last_step: int | None) -> int | None:
    """The time step the code belongs to (now, or one step either side), or None.

    A step at or before ``last_step`` is refused: a code seen once (shoulder, proxy log) cannot
    be replayed within its 30 seconds.
    """
    code = code.strip().replace(" ", "")
    if not re.fullmatch(r"[0-9]{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(now // totp.interval)
    for step in (step_now, step_now - 1, step_now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None
            return step
    return None


# -- sealed secrets (TOTP seeds) --------------------------------------------------------------

class KeyFileError(ValueError):
    pass


def create_key_file(path: Path) -> None:
    """32 random bytes, owner-only; never replaced once it exists (it seals every TOTP seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))


def load_key(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"console key file {path}: {exc.strerror}") from None
    if len(data) != 32:
        raise KeyFileError(f"console key file {path}: expected 32 bytes")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeyFileError(f"console key file {path}: readable by others (chmod 600)")
    return data


def seal(key: bytes, plaintext: str, label: str) -> str:
    nonce = secrets.token_bytes(12)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), label.encode("utf-8"))
    return "v1:" + base64.urlsafe_b64encode(nonce + ct).decode("ascii")


def unseal(key: bytes, sealed: str, label: str) -> str | None:
    if not sealed.startswith("v1:"):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed[3:].encode("ascii"))
        return AESGCM(key).decrypt(raw[:12], raw[12:], label.encode("utf-8")).decode("utf-8")
    except (ValueError, InvalidTag, UnicodeDecodeError):
        return None


# -- tokens -----------------------------------------------------------------------------------

def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# -- text from reports ------------------------------------------------------------------------

# C0/C1 controls (ESC starts terminal escapes), bidi embeddings/overrides/isolates and marks,
# zero-width and line/paragraph separators: shown as <U+XXXX>, never obeyed by the browser.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2069\ufeff\ufff9-\ufffb]")


def visible(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def csv_cell(value: object) -> str:
    """A spreadsheet never runs a cell: = + - @ (and tab/CR that Excel strips first) get a '."""
    text = visible("" if value is None else str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
