"""``verifier.toml``: read once at start into one frozen, typed object (docs/verifier.md).

Relative paths are relative to the directory of the configuration file. Unknown keys are refused,
as in the policy reader: a typo must never silently weaken the gate.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.ocsp import OcspConfig


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class GatewayConfig:
    admin_socket: Path | None  # HAProxy stats socket, level admin; None: no runtime API
    map_file: Path | None  # users.map the frontend reads (rewritten atomically)
    backends_file: Path | None  # generated backend section, one per office PC


@dataclass(frozen=True)
class VerifierConfig:
    listen_host: str
    listen_port: int
    tls_cert: Path
    tls_key: Path
    city_ca: Path
    crl_files: tuple[Path, ...]
    posture_ca_cert: Path
    posture_ca_key: Path
    posture_ca_key_passphrase_file: Path | None
    credential_minutes: float
    database_url: str
    trust_dir: Path
    policy_file: Path
    gateway: GatewayConfig
    recheck_seconds: int | None  # None: the policy's recheck_interval_minutes
    grace_seconds: int | None  # None: the policy's [session] grace_seconds
    nonce_seconds: int = 120
    max_future_skew_seconds: int = 120
    enforce_tick_seconds: float = 5.0
    log_file: Path | None = None
    ocsp: OcspConfig | None = None  # [ocsp]: ask the city CA's responder as well as the CRL
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


_KEYS = {
    "listen", "tls_cert", "tls_key", "city_ca", "crl", "posture_ca_cert", "posture_ca_key",
    "posture_ca_key_passphrase_file", "credential_minutes", "database_url", "trust_dir",
    "policy", "recheck_seconds", "grace_seconds", "nonce_seconds", "max_future_skew_seconds",
    "enforce_tick_seconds", "log_file", "gateway", "console", "ocsp",
}
_GATEWAY_KEYS = {"admin_socket", "map_file", "backends_file"}
_OCSP_KEYS = {"url", "timeout_seconds", "soft_fail", "nonce", "max_age_seconds", "tls_ca"}
_OCSP_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]{0,200})?")


def _path(base: Path, value: object, name: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a path string")
    p = Path(value)
    return p if p.is_absolute() else base / p


def _opt_path(base: Path, doc: dict[str, Any], name: str) -> Path | None:
    return _path(base, doc[name], name) if name in doc else None


def _number(doc: dict[str, Any], name: str, default: float | None, lo: float,
            hi: float) -> float | None:
    value = doc.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{name}: expected a number in [{lo}, {hi}]")
    return float(value)


def _flag(doc: dict[str, Any], name: str, default: bool) -> bool:
    value = doc.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"ocsp.{name}: expected true or false")
    return value


def _ocsp(doc: object, base: Path) -> OcspConfig | None:
    if doc is None:
        return None
    if not isinstance(doc, dict) or set(doc) - _OCSP_KEYS:
        raise ConfigError(f"ocsp: allowed keys are {sorted(_OCSP_KEYS)}")
    url = doc.get("url")
    if not isinstance(url, str) or not _OCSP_URL_RE.fullmatch(url):
        raise ConfigError("ocsp.url: expected http://HOST[:PORT][/PATH] or https://...")
    tls_ca = _opt_path(base, doc, "tls_ca")
    return OcspConfig(
        url=url, timeout_seconds=_number(doc, "timeout_seconds", 3.0, 0.1, 60) or 3.0,
        soft_fail=_flag(doc, "soft_fail", False), nonce=_flag(doc, "nonce", True),
        max_age_seconds=int(_number(doc, "max_age_seconds", 3600, 10, 7 * 86400) or 3600),
        tls_ca=None if tls_ca is None else str(tls_ca))


def parse_config(doc: dict[str, Any], base: Path) -> VerifierConfig:
    unknown = set(doc) - _KEYS
    if unknown:
        raise ConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
    for required in ("listen", "tls_cert", "tls_key", "city_ca", "posture_ca_cert",
                     "posture_ca_key", "trust_dir", "policy"):
        if required not in doc:
            raise ConfigError(f"{required}: missing")
    listen = doc["listen"]
    if not isinstance(listen, str) or ":" not in listen:
        raise ConfigError("listen: expected HOST:PORT")
    host, _, port_text = listen.rpartition(":")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError("listen: bad port")
    crl = doc.get("crl", [])
    if isinstance(crl, str):
        crl = [crl]
    if not isinstance(crl, list):
        raise ConfigError("crl: expected a path or a list of paths")
    gw = doc.get("gateway", {})
    if not isinstance(gw, dict) or set(gw) - _GATEWAY_KEYS:
        raise ConfigError(f"gateway: allowed keys are {sorted(_GATEWAY_KEYS)}")
    db = doc.get("database_url", "sqlite:///verifier.sqlite3")
    if not isinstance(db, str) or not db.startswith(("sqlite:", "postgresql")):
        raise ConfigError("database_url: sqlite:///PATH or postgresql+psycopg://...")
    if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        db = "sqlite:///" + str(base / db.removeprefix("sqlite:///"))
    recheck = _number(doc, "recheck_seconds", None, 1, 86400)
    grace = _number(doc, "grace_seconds", None, 0, 3600)
    return VerifierConfig(
        listen_host=host.strip("[]"), listen_port=int(port_text),
        tls_cert=_path(base, doc["tls_cert"], "tls_cert"),
        tls_key=_path(base, doc["tls_key"], "tls_key"),
        city_ca=_path(base, doc["city_ca"], "city_ca"),
        crl_files=tuple(_path(base, c, "crl") for c in crl),
        posture_ca_cert=_path(base, doc["posture_ca_cert"], "posture_ca_cert"),
        posture_ca_key=_path(base, doc["posture_ca_key"], "posture_ca_key"),
        posture_ca_key_passphrase_file=_opt_path(base, doc, "posture_ca_key_passphrase_file"),
        credential_minutes=_number(doc, "credential_minutes", 10, 0.05, 24 * 60) or 10.0,
        database_url=db,
        trust_dir=_path(base, doc["trust_dir"], "trust_dir"),
        policy_file=_path(base, doc["policy"], "policy"),
        gateway=GatewayConfig(_opt_path(base, gw, "admin_socket"), _opt_path(base, gw, "map_file"),
                              _opt_path(base, gw, "backends_file")),
        recheck_seconds=None if recheck is None else int(recheck),
        grace_seconds=None if grace is None else int(grace),
        nonce_seconds=int(_number(doc, "nonce_seconds", 120, 5, 3600) or 120),
        max_future_skew_seconds=int(_number(doc, "max_future_skew_seconds", 120, 0, 3600) or 0),
        enforce_tick_seconds=_number(doc, "enforce_tick_seconds", 5.0, 0.1, 600) or 5.0,
        log_file=_opt_path(base, doc, "log_file"),
        ocsp=_ocsp(doc.get("ocsp"), base),
        # [console] is read by verifier.console.config (its own keys, refused the same way)
        extra={"console": doc.get("console", {}), "base": str(base)},
    )


def load_config(path: Path) -> VerifierConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(doc, path.resolve().parent)
