"""The policy's fields: what each key means, read strictly with ``agent.core.strict_toml``.

Pure: bytes in, ``Policy`` out, ``PolicyRefused`` naming the field otherwise. The generic rules
(size, UTF-8, nesting, unknown keys, exact types, control characters) live in the reader; this
module says which keys exist.

Each check section is defined **once**, in ``SECTIONS``: its keys, their types and ranges, their
defaults, one line of documentation and the ``PostureSettings`` field each one sets. That one
definition drives the parser (``parse_policy``), the settings the posture engine runs with
(``agent.policy.checks.posture_settings``) and the reference table in docs/policy.md
(``docs_tables``; a test compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.core import validate
from agent.core.messages import msg
from agent.core.strict_toml import (
    Choice,
    Date,
    Field,
    Instant,
    Integer,
    IntKeyed,
    Number,
    Refusal,
    Table,
    TableArray,
    Text,
    loads,
    read_fields,
)
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
    UpdateSource,
    VerifierRef,
)
from agent.posture.checks.os_updates.windows_patches import WindowsPatch
from agent.posture.dispatch import version_tuple
from agent.posture.model import CHECK_IDS
from agent.posture.settings import PostureSettings

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
_AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")  # age X25519 recipient (bech32)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_MONTH = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")
_KB = re.compile(r"KB[0-9]{6,8}", re.IGNORECASE)


def _refuse(kind: str, field: str, detail: str = "", **params: str | int) -> PolicyRefused:
    return PolicyRefused(msg(f"policy.refused.{kind}", field=field, detail=detail, **params),
                         f"{field}: {kind} {detail}".strip())


def _from_reader(r: Refusal) -> PolicyRefused:
    """The reader's refusal as the policy's translated one (same keys as before the split)."""
    if r.kind == "too_large":
        return PolicyRefused(msg("policy.refused.too_large", **r.params), r.detail)
    if r.kind == "not_utf8":
        return PolicyRefused(msg("policy.refused.not_utf8", **r.params), r.detail)
    if r.kind == "toml":
        return PolicyRefused(msg("policy.refused.toml", **r.params), f"TOML: {r.detail}")
    return _refuse(r.kind, r.field, r.detail, **r.params)


# --- value checks (ValueError = invalid_value with the reason) ----------------------------------


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


def _https_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or not valid_host(parts.hostname) \
            or parts.username or parts.password:
        raise ValueError("an https:// URL without user info")
    return url


def _certificate_pem(pem: str) -> str:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a PEM certificate: {exc}") from exc
    if not certs:
        raise ValueError("no certificate")
    return pem


def _helpdesk_key(pem: str) -> str:
    """An age X25519 recipient ("age1...", what bundles are encrypted to) or a PEM public key."""
    if _AGE_RECIPIENT.fullmatch(pem.strip()):
        return pem.strip()
    try:
        load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise ValueError(f"not an age recipient or a PEM public key: {exc}") from exc
    return pem


def _dotted(value: str) -> str:
    try:
        version_tuple(value)
    except ValueError as exc:
        raise ValueError("not a dotted version") from exc
    return value


def _fingerprint(value: str) -> str:
    """A SHA-256 certificate pin, written with or without colons; kept as FreeRDP prints it."""
    digits = value.replace(":", "").lower()
    if not _SHA256_HEX.match(digits):
        raise ValueError("not a SHA-256 fingerprint")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


HTTPS_URL = Text(2000, check=_https_url, what="https URL (no user info)")
CERT_PEM = Text(64 * 1024, multiline=True, check=_certificate_pem, what="PEM certificate(s)")
DOTTED = Text(40, check=_dotted, what="dotted version")


def _read(table: Table, f: Field) -> Any:
    """One declarative field of an imperatively read table (None when absent)."""
    return read_fields(table, (f,)).get(f.key)


# --- the check sections: one definition each ------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A key of a policy section and, when it has one, the PostureSettings field it sets.

    ``merge(built_in, policy_value, check_id)`` combines the value with what the setting holds
    already; without it the policy's value replaces the built-in one."""

    field: Field
    setting: str | None = None
    merge: Callable[[Any, Any, str], Any] | None = None
    default_doc: str | None = None  # the default as the docs say it, when not the setting's


@dataclass(frozen=True)
class Section:
    path: str  # "checks.os_updates", "posture"
    doc: str
    keys: tuple[Key, ...]
    # Rules across keys, after each key was read: (table, values) -> raises Refusal.
    rule: Callable[[Table, dict[str, Any]], None] | None = None

    @property
    def check_id(self) -> str:
        return self.path.removeprefix("checks.")

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.field.key == name)


def _per_check(current: Mapping[str, float], value: float, check_id: str) -> dict[str, float]:
    return {**current, check_id: value}


def _second_tuesday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(1 - first.weekday()) % 7 + 7)


def _patch_row(row: Table, v: dict[str, Any]) -> WindowsPatch:
    match = _MONTH.fullmatch(v["month"])
    if match is None:  # the pattern was checked already
        raise row.refuse("invalid_value", "month", v["month"])
    year, month = int(match[1]), int(match[2])
    released: date = v.get("release") or _second_tuesday(year, month)
    if (released.year, released.month) != (year, month):
        raise row.refuse("invalid_value", "release", f"{released} is not in {v['month']}")
    return WindowsPatch(v["build"], v["ubr"], released, v["kb"].upper(), confirmed=True)


def merge_patches(shipped: tuple[WindowsPatch, ...], rows: tuple[WindowsPatch, ...],
                  _check_id: str = "os_updates") -> tuple[WindowsPatch, ...]:
    """The policy's rows win for the (build, month) they name; the shipped table keeps the
    others. IT corrects a wrong row by naming its month, and adds a new month the same way."""
    named = {(p.build, p.released.year, p.released.month) for p in rows}
    kept = [p for p in shipped if (p.build, p.released.year, p.released.month) not in named]
    return tuple(sorted([*kept, *rows], key=lambda p: (p.build, p.released, p.ubr)))


def _unique_patch_months(table: Table, values: dict[str, Any]) -> None:
    seen: set[tuple[int, int, int]] = set()
    for n, p in enumerate(values.get("windows_patches", ())):
        month = (p.build, p.released.year, p.released.month)
        if month in seen:
            raise Refusal("invalid_value", f"{table.path('windows_patches')}[{n}].month",
                          f"a second row for build {p.build} in {p.released:%Y-%m}")
        seen.add(month)


PATCH_ROW = (
    Field("build", Integer(10240, 99999), "CurrentBuildNumber, e.g. 26100", required=True),
    Field("ubr", Integer(0, 99999), "UBR after that month's cumulative update", required=True),
    Field("month", Text(7, pattern=_MONTH, what="`YYYY-MM`"), "the Patch Tuesday month",
          required=True),
    Field("release", Date(), "release day, in `month`", default="that month's second Tuesday"),
    Field("kb", Text(10, pattern=_KB, what="`KB` + 6..8 digits"), "the cumulative update",
          required=True),
    Field("source", Text(500), "where IT confirmed the row (Microsoft's release information)",
          required=True),
)


def _software(row: Table, v: dict[str, Any]) -> SoftwareRule:
    return SoftwareRule(v["name"], tuple(p.lower() for p in v["processes"]), v.get("signer"),
                        v.get("os") or OSES)


@dataclass(frozen=True)
class _Strings:
    max_items: int
    pattern: re.Pattern[str]
    what: str

    def read(self, table: Table, key: str) -> tuple[str, ...]:
        return table.strings(key, self.max_items, self.pattern)

    def describe(self) -> str:
        return f"1..{self.max_items} {self.what}"


SOFTWARE_ROW = (
    Field("name", Text(100), "shown to staff (\"Winny\")", required=True),
    Field("processes", _Strings(20, _PROCESS, "process names, case-insensitive, `.exe` optional"),
          "what the process list is searched for", required=True),
    Field("signer", Text(200), "code-signing subject (where the OS can tell it)"),
    Field("os", _Strings(3, re.compile("|".join(OSES)), "of `windows`, `macos`, `linux`"),
          "the OSes it applies to", default="all"),
)
SOFTWARE = TableArray(SOFTWARE_ROW, _software, max_items=100, min_items=1)


def _clock_rule(table: Table, values: dict[str, Any]) -> None:
    if "reference_url" in values and "reference_ca" not in values:
        raise table.refuse("missing_field", "reference_ca")


def _staging_rule(table: Table, values: dict[str, Any]) -> None:
    if "block_after" in values and values.get("enforce", "block") != "block":
        raise table.refuse("invalid_value", "block_after", "needs enforce = \"block\"")


# Keys every [checks.<id>] section has.
COMMON_KEYS: tuple[Key, ...] = (
    Key(Field("enforce", Choice(tuple(e.value for e in Enforce)),
              "`off`: not run; `report`: shown only; `warn`: a failure warns; `block`: a "
              "failure blocks", default="block")),
    Key(Field("on_unknown", Choice(tuple(o.value for o in OnUnknown)),
              "what an `unknown` result counts as", default="block")),
    Key(Field("block_after", Instant(JST, allow_date=True),
              "staged roll-out: warn before, block from then (a date is 00:00 JST); only with "
              "`enforce = \"block\"`", default="none (blocks now)")),
    Key(Field("timeout_s", Number(1, 120),
              "how long the engine waits for this check before it is `unknown` (a Windows "
              "check waits at least `[posture] snapshot_timeout_s`)"),
        setting="check_timeouts_s", merge=_per_check,
        default_doc="`[posture] probe_timeout_s`"),
)

_CHECK_KEYS: dict[str, tuple[Key, ...]] = {
    "os_supported": (),
    "os_updates": (
        Key(Field("max_pending_security_updates", Integer(0, 1000),
                  "Linux: pending security updates allowed"),
            setting="max_pending_security_updates"),
        Key(Field("max_days_since_update", Integer(1, 365),
                  "Windows: days since the last successful Windows patch (supporting "
                  "evidence beside build.UBR); Linux: age of the package lists"),
            setting="max_days_since_update"),
        Key(Field("windows_min_ubr", IntKeyed(10240, 99999, Integer(0, 99999), "build"),
                  "minimum UBR per build, e.g. `{ \"26100\" = 4946 }` = 26100.4946 or later"),
            setting="windows_min_ubr", default_doc="none"),
        Key(Field("macos_min_version", IntKeyed(11, 99, DOTTED, "major"),
                  "minimum version per major, e.g. `{ \"15\" = \"15.6.1\" }`"),
            setting="macos_min_version", default_doc="none"),
        Key(Field("windows_patches", TableArray(PATCH_ROW, _patch_row, max_items=500),
                  "`[[checks.os_updates.windows_patches]]`: build.UBR per Patch Tuesday; a row "
                  "replaces the shipped row of its build and month, others are added"),
            setting="windows_patches", merge=merge_patches,
            default_doc="the shipped table (`windows_patches.py`)"),
        Key(Field("windows_patch_grace_days", Integer(0, 31),
                  "days a Windows PC has after a release before it must have it"),
            setting="windows_patch_grace_days"),
        Key(Field("windows_patch_table_max_age_days", Integer(31, 365),
                  "the patch table's newest row older than this: the table cannot judge "
                  "(warning, the history decides)"), setting="windows_patch_table_max_age_days"),
    ),
    "disk_encryption": (),
    "antivirus": (
        Key(Field("max_signature_age_days", Integer(0, 90), "antivirus signature age"),
            setting="max_av_signature_age_days"),
        Key(Field("max_xprotect_age_days", Integer(1, 365), "macOS XProtect data age"),
            setting="max_xprotect_age_days"),
    ),
    "firewall": (),
    "screen_lock": (
        Key(Field("max_idle_seconds", Integer(10, 4 * 3600),
                  "longest idle time before the screen locks (longer warns)"),
            setting="max_screen_lock_idle_s"),
    ),
    "forbidden_software": (
        Key(Field("software", SOFTWARE, "`[[checks.forbidden_software.software]]`: programs "
                  "that must not run", required=True)),
    ),
    "required_software": (
        Key(Field("software", SOFTWARE, "`[[checks.required_software.software]]`: all that "
                  "apply to the OS must be running", required=True)),
    ),
    "clock_skew": (
        Key(Field("max_skew_seconds", Integer(1, 86400), "clock difference allowed",
                  required=True)),
        Key(Field("reference_url", HTTPS_URL, "whose `Date` header is the reference "
                  "(normally the gateway)")),
        Key(Field("reference_ca", CERT_PEM, "the CA `reference_url` chains to; required with "
                  "the URL")),
    ),
    "agent_version": (
        Key(Field("min_version", DOTTED, "oldest agent release allowed", required=True)),
    ),
}
_CHECK_RULES: dict[str, Callable[[Table, dict[str, Any]], None]] = {
    "os_updates": _unique_patch_months, "clock_skew": _clock_rule}
_CHECK_DOCS = {
    "os_supported": "end-of-support tables are built in (`os_supported/lifecycle.py`)",
    "os_updates": "patch level and update health",
    "disk_encryption": "system drive (and home) encrypted",
    "antivirus": "an antivirus on, signatures fresh",
    "firewall": "firewall on for the active profiles",
    "screen_lock": "screen locks after idle time",
    "forbidden_software": "runs only when the policy has the section",
    "required_software": "runs only when the policy has the section",
    "clock_skew": "runs only when the policy has the section",
    "agent_version": "runs only when the policy has the section (`1.3.0rc1` counts as `1.3.0`)",
}

POSTURE = Section("posture", "the engine's time budgets", (
    Key(Field("probe_timeout_s", Number(1, 120), "how long a check may take (each check's "
              "`timeout_s` overrides it)"), setting="probe_timeout_s"),
    Key(Field("snapshot_timeout_s", Number(1, 120),
              "the one PowerShell call all Windows checks read; a cold start on a slow home PC "
              "takes seconds"), setting="snapshot_timeout_s",
        default_doc="`probe_timeout_s`"),
))

SECTIONS: dict[str, Section] = {
    **{f"checks.{cid}": Section(f"checks.{cid}", _CHECK_DOCS[cid],
                                COMMON_KEYS + _CHECK_KEYS[cid], _CHECK_RULES.get(cid))
       for cid in ALL_CHECK_IDS},
    POSTURE.path: POSTURE,
}


def read_section(section: Section, table: Table) -> dict[str, Any]:
    values = read_fields(table, [k.field for k in section.keys])
    if section.path.startswith("checks."):
        _staging_rule(table, values)
    if section.rule is not None:
        section.rule(table, values)
    table.done()
    return values


def _rule(values: Mapping[str, Any]) -> CheckRule:
    staged = values.get("block_after")
    return CheckRule(Enforce(values.get("enforce", "block")),
                     OnUnknown(values.get("on_unknown", "block")),
                     staged[0] if staged else None, staged[1] if staged else None)


def _checks(root: Table) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    checks = root.table("checks")
    if checks is None:
        return out
    for check_id in checks.key_names():
        section = SECTIONS.get(f"checks.{check_id}")
        if section is None:
            raise checks.refuse("unknown_field", check_id)
        table = checks.table(check_id, required=True)
        if table is not None:
            out[check_id] = read_section(section, table)
    checks.done()
    return out


# --- the rest of the policy ----------------------------------------------------------------------


def _verifier(table: Table | None) -> VerifierRef | None:
    """[verifier]: url (https) and ca (PEM) of the city's posture verifier."""
    if table is None:
        return None
    url = _read(table, Field("url", HTTPS_URL, "", required=True))
    ca = _read(table, Field("ca", CERT_PEM, "", required=True))
    # key_protection = "hardware": only a TPM-attested device key is admitted (issue 22)
    protection = table.opt_text("key_protection", max_len=16,
                                pattern=re.compile(r"any|hardware")) or "any"
    table.done()
    return VerifierRef(url, ca, protection)


def _targets(root: Table) -> tuple[Target, ...]:
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
            raise t.refuse("invalid_value", "host", host[:80])
        gateway = t.opt_text("gateway", required=mode != "direct", max_len=260)
        gw_host, gw_port = parse_host_port(t.path("gateway"), gateway) if gateway else (None, None)
        if mode == "direct" and gateway:
            raise t.refuse("invalid_value", "gateway", "a direct target has no gateway")
        ca = _read(t, Field("gateway_ca", CERT_PEM, "", required=mode == "tunnel"))
        rd = t.table("rd_gateway", required=False)
        rd_gateway = None
        if rd is not None:
            if mode != "rdgateway":
                raise rd.refuse("invalid_value", None, "only for mode = \"rdgateway\"")
            usage = rd.opt_integer("usage_method", 1, 2) or 1
            creds = rd.opt_integer("credentials_source", 0, 4) or 0
            if creds not in (0, 1, 4):
                raise rd.refuse("out_of_range", "credentials_source", "0, 1 or 4")
            same = rd.opt_boolean("use_same_credentials")
            rd.done()
            rd_gateway = RdGateway(usage, creds, bool(same))
        elif mode == "rdgateway":
            rd_gateway = RdGateway(1, 0, True)
        nla = t.opt_boolean("require_nla")
        pin = _read(t, Field("server_cert_sha256", Text(95, check=_fingerprint), ""))
        software = t.choice("gateway_software", ("nginx", "stunnel", "haproxy", "other"),
                            "other")
        t.done()
        if any(o.id == tid for o in out):
            raise t.refuse("invalid_value", "id", f"duplicate target id {tid}")
        out.append(Target(tid, name_ja, name_en, protocol, mode, host, port, gw_host, gw_port,
                          ca, rd_gateway, require_nla=nla is not False, server_cert_sha256=pin,
                          gateway_software=software))
    return tuple(out)


def _lifetime(table: Table | None, has_update: bool) -> Lifetime:
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
        raise table.refuse("invalid_value", "offline_block_days", "needs an [update] table")
    if off_block is not None and off_block <= out.offline_warn_days:
        raise table.refuse("invalid_value", "offline_block_days",
                           "must be after offline_warn_days")
    return out


def _diagnostics(table: Table | None) -> Diagnostics:
    if table is None:
        return Diagnostics()
    key = _read(table, Field("helpdesk_public_key",
                             Text(16 * 1024, multiline=True, check=_helpdesk_key), ""))
    cap = table.opt_integer("max_bundle_bytes", 64 * 1024, 1 << 30)
    table.done()
    return Diagnostics(key, cap or Diagnostics.max_bundle_bytes)


def _update(table: Table | None) -> UpdateSource | None:
    if table is None:
        return None
    url = _read(table, Field("url", HTTPS_URL, "", required=True))
    ca = _read(table, Field("ca", CERT_PEM, "", required=True))
    hours = table.opt_integer("interval_hours", 1, 168) or 24
    table.done()
    return UpdateSource(url, ca, hours)


def _parse(data: bytes) -> Policy:
    root = Table(loads(data, max_bytes=MAX_POLICY_BYTES))
    pid = root.text("id", pattern=_ID)
    serial = root.integer("serial", 1, 2**53 - 1)
    description = root.opt_text("description", max_len=500) or ""
    start = root.instant("not_before", JST)
    end = root.instant("expires", JST)
    recheck = root.opt_integer("recheck_interval_minutes", 1, 1440) or 15
    if end[0] <= start[0]:
        raise root.refuse("invalid_value", "expires", "not after not_before")
    checks = _checks(root)
    posture_table = root.table("posture")
    posture = read_section(POSTURE, posture_table) if posture_table is not None else None
    targets = _targets(root)
    diagnostics = _diagnostics(root.table("diagnostics"))
    grace = 60
    session = root.table("session")
    if session is not None:
        value = session.opt_integer("grace_seconds", 0, 600)
        session.done()
        grace = 60 if value is None else value
    update = _update(root.table("update"))
    verifier = _verifier(root.table("verifier"))
    lifetime = _lifetime(root.table("lifetime"), update is not None)
    root.done()
    values = {f"checks.{cid}": v for cid, v in checks.items()}
    if posture is not None:
        values[POSTURE.path] = posture
    skew = checks.get("clock_skew")
    return Policy(
        id=pid, serial=serial, not_before=start[0], expires=end[0],
        recheck_interval_minutes=recheck, description=description,
        rules={cid: _rule(v) for cid, v in checks.items()}, values=values,
        forbidden_software=checks.get("forbidden_software", {}).get("software", ()),
        required_software=checks.get("required_software", {}).get("software", ()),
        clock_skew=(ClockSkewRule(skew["max_skew_seconds"], skew.get("reference_url"),
                                  skew.get("reference_ca")) if skew is not None else None),
        agent_min_version=checks.get("agent_version", {}).get("min_version"), targets=targets,
        diagnostics=diagnostics, update=update, verifier=verifier,
        session_grace_seconds=grace, lifetime=lifetime)


def parse_policy(data: bytes) -> Policy:
    """Bytes (already signature-verified) -> Policy, or PolicyRefused naming the problem."""
    try:
        return _parse(data)
    except Refusal as exc:
        raise _from_reader(exc) from None


# --- the reference table in docs/policy.md ------------------------------------------------------

DOCS_BEGIN = "<!-- policy-fields:begin (generated from agent/policy/schema.py SECTIONS) -->"
DOCS_END = "<!-- policy-fields:end -->"


def _default_text(key: Key, built_in: PostureSettings) -> str:
    if key.default_doc is not None:
        return key.default_doc
    if key.field.default is not None:
        text = str(key.field.default)
        return text if " " in text else f"`{text}`"
    if key.field.required:
        return "required"
    if key.setting is not None:
        value = getattr(built_in, key.setting)
        return f"{value:g}" if isinstance(value, float) else str(value)
    return "none"


def _rows(prefix: str, keys: tuple[Key, ...], built_in: PostureSettings) -> list[str]:
    out = []
    for key in keys:
        f = key.field
        out.append(f"| `{prefix}{f.key}` | {f.spec.describe()} | "
                   f"{_default_text(key, built_in)} | {f.doc} |")
        if isinstance(f.spec, TableArray):
            out.extend(_rows(f"{prefix}{f.key}[].", tuple(Key(sub) for sub in f.spec.fields),
                             built_in))
    return out


def docs_tables(sections: Mapping[str, Section] | None = None) -> str:
    """The field tables of docs/policy.md, from ``SECTIONS`` (a test keeps the two equal)."""
    sections = SECTIONS if sections is None else sections
    built_in = PostureSettings()
    head = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines = [DOCS_BEGIN, "", "Keys of every `[checks.<id>]` section:", "", *head,
             *_rows("", COMMON_KEYS, built_in), "", "Each check's own keys (all optional unless "
             "marked required; omitted = the agent's built-in default):", ""]
    for path, section in sections.items():
        if not path.startswith("checks."):
            continue
        own = tuple(k for k in section.keys if k not in COMMON_KEYS)
        lines.append(f"`[{path}]`: {section.doc}." + ("" if own else " No own keys."))
        lines.append("")
        if own:
            lines.extend([*head, *_rows("", own, built_in), ""])
    for path, section in sections.items():
        if not path.startswith("checks."):
            lines.extend([f"`[{path}]`: {section.doc}.", "", *head,
                          *_rows("", section.keys, built_in), ""])
    lines.append(DOCS_END)
    return "\n".join(lines)


if __name__ == "__main__":  # python -m agent.policy.schema: print the docs tables
    print(docs_tables())
