"""Signed test policies made with an in-memory key; shared by the policy tests (no tests here)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.policy import signing
from agent.policy.state import PolicyState

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

BASE = """\
id = "test-city"
serial = {serial}
not_before = {not_before}
expires = {expires}
recheck_interval_minutes = 30

[checks.os_updates]
enforce = "block"
max_days_since_update = 30
windows_min_ubr = {{ "26100" = 4946 }}

[checks.screen_lock]
enforce = "warn"
on_unknown = "warn"
max_idle_seconds = 600

[checks.disk_encryption]
enforce = "block"
block_after = 2026-12-01

[[targets]]
id = "office"
name_ja = "庁内PC"
name_en = "Office PC"
mode = "direct"
host = "pc-01.city.example.lg.jp"
port = 3389
{extra}
"""


def policy_text(serial: int = 1, *, not_before: str = "2026-01-01T00:00:00+09:00",
                expires: str = "2027-01-01T00:00:00+09:00", extra: str = "") -> str:
    return BASE.format(serial=serial, not_before=not_before, expires=expires, extra=extra)


class Signer:
    def __init__(self, name: str = "test-city") -> None:
        self.key = Ed25519PrivateKey.generate()
        self.anchor = signing.TrustAnchor(name, signing.key_id(self.key.public_key()),
                                          self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return signing.sign(data, self.key)

    def write(self, path: Path, data: bytes | str) -> Path:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path.write_bytes(raw)
        path.with_name(path.name + ".sig").write_bytes(self.sign(raw))
        return path

    def write_pub(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        out = directory / f"{self.anchor.name}.pub"
        out.write_bytes(signing.public_key_pem(self.key.public_key()))
        return out


def state_in(tmp: Path) -> PolicyState:
    return PolicyState(tmp / "state")
