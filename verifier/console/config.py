"""``[console]`` in verifier.toml: one frozen, typed object read at start (docs/console.md).

Unknown keys are refused, as everywhere in the verifier's configuration.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.config import ConfigError, VerifierConfig


@dataclass(frozen=True)
class OidcConfig:
    issuer: str  # https://login.microsoftonline.com/<tenant>/v2.0, or any OpenID provider
    client_id: str
    client_secret_file: Path | None  # a file holding the secret (never the secret inline)
    redirect_uri: str  # https://console.city.example/console/oidc/callback
    roles_claim: str  # e.g. "roles" (Entra ID app roles) or "groups"
    it_values: tuple[str, ...]  # claim values that mean IT administrator
    helpdesk_values: tuple[str, ...]
    username_claim: str = "preferred_username"


@dataclass(frozen=True)
class ConsoleConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8444
    tls_cert: Path | None = None  # None: the verifier's tls_cert/tls_key (no client certificate)
    tls_key: Path | None = None
    key_file: Path | None = None  # 32 random bytes that seal TOTP secrets (byod-verifier user add)
    retention_days: int = 90
    retention_interval_seconds: float = 3600.0
    session_idle_minutes: int = 30
    session_max_hours: int = 10
    lockout_failures: int = 5
    lockout_minutes: int = 15
    not_seen_days: int = 7
    timezone: str = "Asia/Tokyo"
    secure_cookies: bool = True
    mount_in_verifier: bool = False  # also under /console on the verifier's mTLS port
    oidc: OidcConfig | None = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


_KEYS = {"listen", "tls_cert", "tls_key", "key_file", "retention_days",
         "retention_interval_seconds",
         "session_idle_minutes", "session_max_hours", "lockout_failures", "lockout_minutes",
         "not_seen_days", "timezone", "secure_cookies", "mount_in_verifier", "oidc"}
_OIDC_KEYS = {"issuer", "client_id", "client_secret_file", "redirect_uri", "roles_claim",
              "it_values", "helpdesk_values", "username_claim"}


def _int(doc: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    v = doc.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"console.{name}: expected a whole number in [{lo}, {hi}]")
    return v


def _text(doc: dict[str, Any], name: str, prefix: str = "console.oidc") -> str:
    v = doc.get(name)
    if not isinstance(v, str) or not v or len(v) > 500:
        raise ConfigError(f"{prefix}.{name}: expected a string")
    return v


def _strings(doc: dict[str, Any], name: str) -> tuple[str, ...]:
    v = doc.get(name, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ConfigError(f"console.oidc.{name}: expected a list of strings")
    return tuple(v)


def _oidc(doc: object, base: Path) -> OidcConfig | None:
    if doc is None:
        return None
    if not isinstance(doc, dict) or set(doc) - _OIDC_KEYS:
        raise ConfigError(f"console.oidc: allowed keys are {sorted(_OIDC_KEYS)}")
    issuer = _text(doc, "issuer")
    if not issuer.startswith("https://") and not issuer.startswith("http://127.0.0.1:"):
        raise ConfigError("console.oidc.issuer: must be https:// (loopback http only for tests)")
    secret = doc.get("client_secret_file")
    secret_path = None
    if secret is not None:
        if not isinstance(secret, str) or not secret:
            raise ConfigError("console.oidc.client_secret_file: expected a path")
        secret_path = Path(secret) if Path(secret).is_absolute() else base / secret
    it_values, hd_values = _strings(doc, "it_values"), _strings(doc, "helpdesk_values")
    if not it_values and not hd_values:
        raise ConfigError("console.oidc: it_values or helpdesk_values must name a role")
    return OidcConfig(issuer.rstrip("/"), _text(doc, "client_id"), secret_path,
                      _text(doc, "redirect_uri"), str(doc.get("roles_claim", "roles")),
                      it_values, hd_values, str(doc.get("username_claim", "preferred_username")))


def parse_console(doc: object, base: Path) -> ConsoleConfig:
    if not isinstance(doc, dict):
        raise ConfigError("console: expected a table")
    unknown = set(doc) - _KEYS
    if unknown:
        raise ConfigError(f"console: unknown keys: {', '.join(sorted(unknown))}")
    listen = doc.get("listen", "127.0.0.1:8444")
    if not isinstance(listen, str) or ":" not in listen:
        raise ConfigError("console.listen: expected HOST:PORT")
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("console.listen: bad port")
    key = doc.get("key_file", "console.key")
    if not isinstance(key, str) or not key:
        raise ConfigError("console.key_file: expected a path")
    tz = doc.get("timezone", "Asia/Tokyo")
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"console.timezone: unknown time zone {str(tz)[:60]!r}") from None
    for flag in ("secure_cookies", "mount_in_verifier"):
        if not isinstance(doc.get(flag, True), bool):
            raise ConfigError(f"console.{flag}: expected true or false")
    interval = doc.get("retention_interval_seconds", 3600)
    if isinstance(interval, bool) or not isinstance(interval, int | float) \
            or not 1 <= interval <= 86400:
        raise ConfigError("console.retention_interval_seconds: expected 1..86400")
    tls = {}
    for name in ("tls_cert", "tls_key"):
        v = doc.get(name)
        if v is not None and (not isinstance(v, str) or not v):
            raise ConfigError(f"console.{name}: expected a path")
        tls[name] = None if v is None else (Path(v) if Path(v).is_absolute() else base / v)
    return ConsoleConfig(
        listen_host=host.strip("[]"), listen_port=int(port), **tls,
        key_file=Path(key) if Path(key).is_absolute() else base / key,
        retention_days=_int(doc, "retention_days", 90, 1, 3650),
        retention_interval_seconds=float(interval),
        session_idle_minutes=_int(doc, "session_idle_minutes", 30, 1, 24 * 60),
        session_max_hours=_int(doc, "session_max_hours", 10, 1, 72),
        lockout_failures=_int(doc, "lockout_failures", 5, 1, 100),
        lockout_minutes=_int(doc, "lockout_minutes", 15, 1, 24 * 60),
        not_seen_days=_int(doc, "not_seen_days", 7, 1, 365),
        timezone=str(tz), secure_cookies=bool(doc.get("secure_cookies", True)),
        mount_in_verifier=bool(doc.get("mount_in_verifier", False)),
        oidc=_oidc(doc.get("oidc"), base))


def console_config(cfg: VerifierConfig) -> ConsoleConfig:
    return parse_console(cfg.extra.get("console", {}), Path(cfg.extra.get("base", ".")))
