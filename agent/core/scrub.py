"""Secret shapes (keys, passwords, tokens) replaced by one marker: safe for any log line.

The log writer (logsetup) and the diagnostics redactor share this; pseudonyms of personal data
are the redactor's job (agent/diagnostics/redact.py), not the log's.
"""

from __future__ import annotations

import re

SECRET = "[REDACTED]"  # noqa: S105 (the marker, not a secret)

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*?)-----.*?(?:-----END \1-----|\Z)", re.S)
_KEY_VALUE = re.compile(
    r"(?i)\b(password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|"
    r"client[_-]?secret|private[_-]?key|otp|code)([\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|\S+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_URL_CRED = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")


def scrub_secrets(s: str) -> str:
    """Only the secret patterns (no pseudonyms): safe for any log line."""
    s = _PEM.sub(lambda m: f"[REDACTED {m.group(1) or 'PEM'}]", s)
    s = _URL_CRED.sub(lambda m: f"{m.group(1)}{SECRET}@", s)
    s = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET}", s)
    s = _BEARER.sub(lambda m: f"{m.group(1)} {SECRET}", s)
    return _JWT.sub(SECRET, s)
