"""Strict reader for the policy TOML: every key known, every type exact, every value in range.

Pure: bytes in, ``Policy`` out, ``PolicyRefused`` naming the field otherwise. Unknown keys are
refused rather than ignored so a typo ("enforse") can never silently weaken a rule. TOML itself
(tomllib) refuses duplicate keys and tables.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.core import validate
from agent.core.messages import msg
from agent.policy.errors import PolicyRefused
from agent.policy.model import (
    CheckRule,
    ClockSkewRule,
    Diagnostics,
    Enforce,
    Lifetime,
    OnUnknown,
    Policy,
    RdGateway,
    SoftwareRule,
    Target,
    Thresholds,
    UpdateSource,
    VerifierRef,
)
from agent.posture.dispatch import version_tuple
from agent.posture.model import CHECK_IDS

MAX_POLICY_BYTES = 1 << 20
# Checks only a policy can switch on (they need the policy's lists or references).
POLICY_CHECK_IDS: tuple[str, ...] = (
    "forbidden_software", "required_software", "clock_skew", "agent_version")
ALL_CHECK_IDS = CHECK_IDS + POLICY_CHECK_IDS
# A bare date (block_after = 2026-12-01) means midnight in Japan, where the city is.
JST = timezone(timedelta(hours=9), "JST")
OSES = ("windows", "macos", "linux")

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PROCESS = re.compile(r"[^/\\:*?\"<>|]{1,128}")
T = TypeVar("T")

_COMMON = ("enforce", "on_unknown", "block_after")
_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "os_supported": (),
    "os_updates": ("max_pending_security_updates", "max_days_since_update", "windows_min_ubr",
                   "macos_min_version"),
    "disk_encryption": (),
    "antivirus": ("max_signature_age_days", "max_xprotect_age_days"),
    "firewall": (),
    "screen_lock": ("max_idle_seconds",),
    "forbidden_software": ("software",),
    "required_software": ("software",),
    "clock_skew": ("max_skew_seconds", "reference_url", "reference_ca"),
    "agent_version": ("min_version",),
}


def _refuse(kind: str, field: str, detail: str = "", **params: str | int) -> PolicyRefused:
    return PolicyRefused(msg(f"policy.refused.{kind}", field=field, detail=detail, **params),
                         f"{field}: {kind} {detail}".strip())


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", dict: "table",
            list: "array", datetime: "date-time", date: "date", time: "time"}.get(
                type(value), type(value).__name__)


def _clean_text(field: str, value: str, *, multiline: bool = False) -> str:
    """No control or invisible formatting characters: they hide text in .rdp files and logs."""
    for ch in value:
        if ch == "\n" and multiline:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            raise _refuse("control_character", field, f"U+{ord(ch):04X}")
    return value


class _Table:
    """One TOML table being read; ``done`` refuses whatever key nobody asked for."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, kind: type[T] | tuple[type, ...], required: bool) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise _refuse("missing_field", self.path(key))
            return None
        value = self.data[key]
        # bool is an int subclass in Python; TOML keeps them apart and so do we.
        if isinstance(value, bool) and kind is not bool:
            raise _refuse("wrong_type", self.path(key), _type_name(value))
        if not isinstance(value, kind) or (kind is date and isinstance(value, datetime)):
            raise _refuse("wrong_type", self.path(key), _type_name(value))
        return value

    def text(self, key: str, *, max_len: int = 200, pattern: re.Pattern[str] | None = None,
             multiline: bool = False) -> str:
        value = self.opt_text(key, required=True, max_len=max_len, pattern=pattern,
                              multiline=multiline)
        if value is None:  # unreachable: _get raised already
            raise _refuse("missing_field", self.path(key))
        return value

    def opt_text(self, key: str, *, required: bool = False, max_len: int = 200,
                 pattern: re.Pattern[str] | None = None, multiline: bool = False) -> str | None:
        value: str | None = self._get(key, str, required)
        if value is None:
            return None
        _clean_text(self.path(key), value, multiline=multiline)
        if not value.strip() or len(value) > max_len:
            raise _refuse("out_of_range", self.path(key), f"length 1..{max_len}")
        if pattern is not None and not pattern.fullmatch(value):
            raise _refuse("invalid_value", self.path(key), value[:80])
        return value

    def opt_integer(self, key: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        value: int | None = self._get(key, int, required)
        if value is not None and not lo <= value <= hi:
            raise _refuse("out_of_range", self.path(key), f"{value} not in {lo}..{hi}")
        return value

    def integer(self, key: str, lo: int, hi: int) -> int:
        value = self.opt_integer(key, lo, hi, required=True)
        if value is None:
            raise _refuse("missing_field", self.path(key))
        return value

    def opt_boolean(self, key: str) -> bool | None:
        value: bool | None = self._get(key, bool, False)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.opt_text(key)
        if value is None:
            return default
        if value not in choices:
            raise _refuse("invalid_value", self.path(key), f"{value!r} not in {'|'.join(choices)}")
        return value

    def instant(self, key: str) -> tuple[datetime, date]:
        value = self.opt_instant(key, required=True)
        if value is None:
            raise _refuse("missing_field", self.path(key))
        return value

    def opt_instant(self, key: str, *, required: bool = False,
                    allow_date: bool = False) -> tuple[datetime, date] | None:
        """An offset date-time, or (when allowed) a date meaning midnight JST."""
        value = self._get(key, (datetime, date), required)
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise _refuse("invalid_value", self.path(key), "date-time without a time zone")
            return value.astimezone(UTC), value.astimezone(JST).date()
        if not allow_date:
            raise _refuse("wrong_type", self.path(key), "date (a date-time with zone is needed)")
        return datetime.combine(value, time(0), JST).astimezone(UTC), value

    def table(self, key: str, *, required: bool = False) -> _Table | None:
        value = self._get(key, dict, required)
        return None if value is None else _Table(value, self.path(key))

    def tables(self, key: str, max_items: int, *, required: bool = False) -> list[_Table]:
        value = self._get(key, list, required)
        if value is None:
            return []
        if len(value) > max_items:
            raise _refuse("out_of_range", self.path(key), f"more than {max_items} entries")
        out = []
        for n, item in enumerate(value):
            if not isinstance(item, dict):
                raise _refuse("wrong_type", f"{self.path(key)}[{n}]", _type_name(item))
            out.append(_Table(item, f"{self.path(key)}[{n}]"))
        return out

    def strings(self, key: str, max_items: int, pattern: re.Pattern[str], *,
                required: bool = True) -> tuple[str, ...]:
        value = self._get(key, list, required)
        if value is None:
            return ()
        if not 1 <= len(value) <= max_items:
            raise _refuse("out_of_range", self.path(key), f"1..{max_items} entries")
        for n, item in enumerate(value):
            where = f"{self.path(key)}[{n}]"
            if not isinstance(item, str):
                raise _refuse("wrong_type", where, _type_name(item))
            _clean_text(where, item)
            if not pattern.fullmatch(item):
                raise _refuse("invalid_value", where, item[:80])
        return tuple(value)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise _refuse("unknown_field", self.path(extra[0]))


def valid_host(name: str) -> bool:
    """A DNS name (RFC 1123 labels) or an IP literal; nothing an .rdp file could misread."""
    if validate.ip_literal(name) is not None:  # no IPv6 zone identifier (issue 18)
        return True
    if len(name) > 253 or name.endswith("."):
        return False
    labels = name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def parse_host_port(field: str, value: str) -> tuple[str, int]:
    if value.startswith("["):  # [2001:db8::1]:443
        host, sep, port_text = value[1:].partition("]:")
    else:
        host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not valid_host(host):
        raise _refuse("invalid_value", field, f"{value!r} is not host:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _refuse("out_of_range", field, f"port {port}")
    return host, port


def _https_url(table: _Table, key: str, *, required: bool) -> str | None:
    url = table.opt_text(key, required=required, max_len=2000)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or not valid_host(parts.hostname) \
            or parts.username or parts.password:
        raise _refuse("invalid_value", table.path(key), "an https:// URL without user info")
    return url


def _certificate_pem(table: _Table, key: str, *, required: bool) -> str | None:
    pem = table.opt_text(key, required=required, max_len=64 * 1024, multiline=True)
    if pem is None:
        return None
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise _refuse("invalid_value", table.path(key), f"not a PEM certificate: {exc}") from exc
    if not certs:
        raise _refuse("invalid_value", table.path(key), "no certificate")
    return pem


def _verifier(table: _Table | None) -> VerifierRef | None:
    """[verifier]: url (https) and ca (PEM) of the city's posture verifier."""
    if table is None:
        return None
    url = _https_url(table, "url", required=True)
    ca = _certificate_pem(table, "ca", required=True)
    table.done()
    if url is None or ca is None:
        raise _refuse("missing_field", "verifier")
    return VerifierRef(url, ca)


_AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")  # age X25519 recipient (bech32)


def _helpdesk_key(table: _Table, key: str) -> str | None:
    """An age X25519 recipient ("age1...", what bundles are encrypted to) or a PEM public key."""
    pem = table.opt_text(key, max_len=16 * 1024, multiline=True)
    if pem is None:
        return None
    if _AGE_RECIPIENT.fullmatch(pem.strip()):
        return pem.strip()
    try:
        load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise _refuse("invalid_value", table.path(key),
                      f"not an age recipient or a PEM public key: {exc}") from exc
    return pem


def _dotted(table: _Table, key: str, *, required: bool) -> str | None:
    value = table.opt_text(key, required=required, max_len=40)
    if value is not None:
        try:
            version_tuple(value)
        except ValueError as exc:
            raise _refuse("invalid_value", table.path(key), "not a dotted version") from exc
    return value


def _int_keyed(table: _Table | None, lo: int, hi: int,
               read: Callable[[_Table, str], T]) -> dict[int, T] | None:
    """A TOML table whose keys are numbers ("26100" = 4946)."""
    if table is None:
        return None
    out: dict[int, T] = {}
    for key in table.data:
        if not key.isdigit() or not lo <= int(key) <= hi:
            raise _refuse("invalid_value", table.path(key), f"key must be a number {lo}..{hi}")
        out[int(key)] = read(table, key)
    table.done()
    return out


def _rule(section: _Table) -> CheckRule:
    enforce = Enforce(section.choice("enforce", tuple(e.value for e in Enforce), "block"))
    on_unknown = OnUnknown(section.choice("on_unknown", tuple(o.value for o in OnUnknown),
                                          "block"))
    staged = section.opt_instant("block_after", allow_date=True)
    if staged is not None and enforce is not Enforce.BLOCK:
        raise _refuse("invalid_value", section.path("block_after"), "needs enforce = \"block\"")
    return CheckRule(enforce, on_unknown, staged[0] if staged else None,
                     staged[1] if staged else None)


def _software(section: _Table) -> tuple[SoftwareRule, ...]:
    out = []
    for t in section.tables("software", 100, required=True):
        name = t.text("name", max_len=100)
        processes = t.strings("processes", 20, _PROCESS)
        signer = t.opt_text("signer", max_len=200)
        oses = t.strings("os", 3, re.compile("|".join(OSES)), required=False) or OSES
        t.done()
        out.append(SoftwareRule(name, tuple(p.lower() for p in processes), signer, oses))
    if not out:
        raise _refuse("out_of_range", section.path("software"), "at least one entry")
    return tuple(out)


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _fingerprint(table: _Table, key: str) -> str | None:
    """A SHA-256 certificate pin, written with or without colons; kept as FreeRDP prints it."""
    value = table.opt_text(key, max_len=95)
    if value is None:
        return None
    digits = value.replace(":", "").lower()
    if not _SHA256_HEX.match(digits):
        raise _refuse("invalid_value", table.path(key), "not a SHA-256 fingerprint")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def _targets(root: _Table) -> tuple[Target, ...]:
    out: list[Target] = []
    for t in root.tables("targets", 50):
        tid = t.text("id", pattern=_ID)
        name_ja = t.text("name_ja", max_len=100)
        name_en = t.text("name_en", max_len=100)
        protocol = t.choice("protocol", ("rdp",), "rdp")
        mode = t.choice("mode", ("tunnel", "rdgateway", "direct"), "tunnel")
        host = t.text("host", max_len=253)
        port = t.opt_integer("port", 1, 65535) or 3389
        if not valid_host(host):
            raise _refuse("invalid_value", t.path("host"), host[:80])
        gateway = t.opt_text("gateway", required=mode != "direct", max_len=260)
        gw_host, gw_port = parse_host_port(t.path("gateway"), gateway) if gateway else (None, None)
        if mode == "direct" and gateway:
            raise _refuse("invalid_value", t.path("gateway"), "a direct target has no gateway")
        ca = _certificate_pem(t, "gateway_ca", required=mode == "tunnel")
        rd = t.table("rd_gateway", required=False)
        rd_gateway = None
        if rd is not None:
            if mode != "rdgateway":
                raise _refuse("invalid_value", rd.where, "only for mode = \"rdgateway\"")
            usage = rd.opt_integer("usage_method", 1, 2) or 1
            creds = rd.opt_integer("credentials_source", 0, 4) or 0
            if creds not in (0, 1, 4):
                raise _refuse("out_of_range", rd.path("credentials_source"), "0, 1 or 4")
            same = rd.opt_boolean("use_same_credentials")
            rd.done()
            rd_gateway = RdGateway(usage, creds, bool(same))
        elif mode == "rdgateway":
            rd_gateway = RdGateway(1, 0, True)
        nla = t.opt_boolean("require_nla")
        pin = _fingerprint(t, "server_cert_sha256")
        software = t.choice("gateway_software", ("nginx", "stunnel", "haproxy", "other"),
                            "other")
        t.done()
        if any(o.id == tid for o in out):
            raise _refuse("invalid_value", t.path("id"), f"duplicate target id {tid}")
        out.append(Target(tid, name_ja, name_en, protocol, mode, host, port, gw_host, gw_port,
                          ca, rd_gateway, require_nla=nla is not False, server_cert_sha256=pin,
                          gateway_software=software))
    return tuple(out)


def _checks(root: _Table) -> tuple[dict[str, CheckRule], dict[str, Any]]:
    rules: dict[str, CheckRule] = {}
    extra: dict[str, Any] = {}
    checks = root.table("checks")
    if checks is None:
        return rules, extra
    for check_id in checks.data:
        if check_id not in _SECTION_KEYS:
            raise _refuse("unknown_field", checks.path(check_id))
        section = _Table(checks.data[check_id], checks.path(check_id))
        checks.seen.add(check_id)
        if not isinstance(section.data, dict):
            raise _refuse("wrong_type", section.where, _type_name(section.data))
        rules[check_id] = _rule(section)
        if check_id == "os_updates":
            extra["max_pending_security_updates"] = section.opt_integer(
                "max_pending_security_updates", 0, 1000)
            extra["max_days_since_update"] = section.opt_integer(
                "max_days_since_update", 1, 365)
            extra["windows_min_ubr"] = _int_keyed(
                section.table("windows_min_ubr"), 10240, 99999,
                lambda t, k: t.integer(k, 0, 99999))
            extra["macos_min_version"] = _int_keyed(
                section.table("macos_min_version"), 11, 99, lambda t, k: _dotted(t, k,
                                                                                 required=True))
        elif check_id == "antivirus":
            extra["max_av_signature_age_days"] = section.opt_integer(
                "max_signature_age_days", 0, 90)
            extra["max_xprotect_age_days"] = section.opt_integer(
                "max_xprotect_age_days", 1, 365)
        elif check_id == "screen_lock":
            extra["max_screen_lock_idle_s"] = section.opt_integer(
                "max_idle_seconds", 10, 4 * 3600)
        elif check_id in ("forbidden_software", "required_software"):
            extra[check_id] = _software(section)
        elif check_id == "clock_skew":
            skew = section.integer("max_skew_seconds", 1, 86400)
            url = _https_url(section, "reference_url", required=False)
            ca = _certificate_pem(section, "reference_ca", required=url is not None)
            extra["clock_skew"] = ClockSkewRule(skew, url, ca)
        elif check_id == "agent_version":
            extra["agent_min_version"] = _dotted(section, "min_version", required=True)
        section.done()
    checks.done()
    return rules, extra


def _lifetime(table: _Table | None, has_update: bool) -> Lifetime:
    """[lifetime]: expiry warning and the offline grace timeline (offline needs an [update])."""
    if table is None:
        return Lifetime()
    warn = table.opt_integer("warn_before_expiry_days", 0, 365)
    off_warn = table.opt_integer("offline_warn_days", 1, 365)
    off_block = table.opt_integer("offline_block_days", 1, 365)
    table.done()
    out = Lifetime(Lifetime.warn_before_expiry_days if warn is None else warn,
                   Lifetime.offline_warn_days if off_warn is None else off_warn, off_block)
    if off_block is not None and not has_update:
        raise _refuse("invalid_value", table.path("offline_block_days"), "needs an [update] table")
    if off_block is not None and off_block <= out.offline_warn_days:
        raise _refuse("invalid_value", table.path("offline_block_days"),
                      "must be after offline_warn_days")
    return out


def parse_policy(data: bytes) -> Policy:
    """Bytes (already signature-verified) -> Policy, or PolicyRefused naming the problem."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyRefused(msg("policy.refused.too_large", size=len(data),
                                limit=MAX_POLICY_BYTES), f"{len(data)} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyRefused(msg("policy.refused.not_utf8", position=exc.start),
                            f"not UTF-8 at byte {exc.start}") from exc
    if validate.toml_nesting_depth(text) > validate.MAX_TOML_DEPTH:  # before tomllib recurses
        detail = f"arrays/inline tables nested deeper than {validate.MAX_TOML_DEPTH}"
        raise PolicyRefused(msg("policy.refused.toml", detail=detail), f"TOML: {detail}")
    try:
        raw = tomllib.loads(text.removeprefix("\ufeff"))
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # incl. duplicate keys and tables
        raise PolicyRefused(msg("policy.refused.toml", detail=str(exc)[:200]),
                            f"TOML: {exc}") from exc
    root = _Table(raw, "")
    pid = root.text("id", pattern=_ID)
    serial = root.integer("serial", 1, 2**53 - 1)
    description = root.opt_text("description", max_len=500) or ""
    start = root.instant("not_before")
    end = root.instant("expires")
    recheck = root.opt_integer("recheck_interval_minutes", 1, 1440) or 15
    if end[0] <= start[0]:
        raise _refuse("invalid_value", "expires", "not after not_before")
    rules, extra = _checks(root)
    targets = _targets(root)
    diag_table = root.table("diagnostics")
    diagnostics = Diagnostics()
    if diag_table is not None:
        key = _helpdesk_key(diag_table, "helpdesk_public_key")
        cap = diag_table.opt_integer("max_bundle_bytes", 64 * 1024, 1 << 30)
        diag_table.done()
        diagnostics = Diagnostics(key, cap or diagnostics.max_bundle_bytes)
    grace = 60
    session = root.table("session")
    if session is not None:
        value = session.opt_integer("grace_seconds", 0, 600)
        session.done()
        grace = 60 if value is None else value
    update = None
    up = root.table("update")
    if up is not None:
        url = _https_url(up, "url", required=True)
        ca = _certificate_pem(up, "ca", required=True)
        hours = up.opt_integer("interval_hours", 1, 168) or 24
        up.done()
        if url is None or ca is None:
            raise _refuse("missing_field", "update")
        update = UpdateSource(url, ca, hours)
    verifier = _verifier(root.table("verifier"))
    lifetime = _lifetime(root.table("lifetime"), update is not None)
    root.done()
    thresholds = Thresholds(**{k: v for k, v in extra.items() if k in Thresholds.__annotations__})
    return Policy(
        id=pid, serial=serial, not_before=start[0], expires=end[0],
        recheck_interval_minutes=recheck, description=description, rules=rules,
        thresholds=thresholds, forbidden_software=extra.get("forbidden_software", ()),
        required_software=extra.get("required_software", ()), clock_skew=extra.get("clock_skew"),
        agent_min_version=extra.get("agent_min_version"), targets=targets,
        diagnostics=diagnostics, update=update, verifier=verifier,
        session_grace_seconds=grace, lifetime=lifetime)
