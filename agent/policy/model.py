"""What a verified policy says, as typed values (the schema module builds these, nothing else)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Enforce(StrEnum):
    OFF = "off"  # not checked at all
    REPORT = "report"  # checked and shown, never affects the decision
    WARN = "warn"  # a failure warns the user but allows the session
    BLOCK = "block"  # a failure blocks (from block_after on, when set)


class OnUnknown(StrEnum):
    BLOCK = "block"  # unknown counts as a failure (fail closed: the default)
    WARN = "warn"  # unknown only warns


@dataclass(frozen=True)
class CheckRule:
    enforce: Enforce = Enforce.BLOCK
    on_unknown: OnUnknown = OnUnknown.BLOCK
    block_from: datetime | None = None  # staged roll-out: warn before this instant, block after
    block_from_date: date | None = None  # the same instant as the date staff are shown


@dataclass(frozen=True)
class SoftwareRule:
    name: str  # shown to staff ("Winny")
    processes: tuple[str, ...]  # process/executable names, compared case-insensitively
    signer: str | None = None  # code-signing subject, where the OS can tell it
    os: tuple[str, ...] = ("windows", "macos", "linux")


@dataclass(frozen=True)
class ClockSkewRule:
    max_skew_s: int
    reference_url: str | None  # an https URL whose Date header is the reference (the gateway)
    reference_ca_pem: str | None  # the CA that URL's certificate must chain to


@dataclass(frozen=True)
class RdGateway:
    usage_method: int  # .rdp gatewayusagemethod: 1 always use, 2 use unless local
    credentials_source: int  # .rdp gatewaycredentialssource: 0 password, 1 smart card, 4 ask
    use_same_credentials: bool  # .rdp promptcredentialonce


@dataclass(frozen=True)
class Target:
    id: str
    name_ja: str
    name_en: str
    protocol: str  # rdp
    mode: str  # tunnel | rdgateway | direct
    host: str
    port: int
    gateway_host: str | None = None
    gateway_port: int | None = None
    gateway_ca_pem: str | None = None
    rd_gateway: RdGateway | None = None
    require_nla: bool = True  # False only for servers without CredSSP (xrdp): TLS, not RDP security
    server_cert_sha256: str | None = None  # pin of the office PC's RDP certificate, "ab:cd:..."
    gateway_software: str = "other"  # nginx | stunnel | haproxy | other: how refusals look


@dataclass(frozen=True)
class Diagnostics:
    helpdesk_public_key: str | None = None  # age X25519 recipient "age1..." or a PEM key
    max_bundle_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class UpdateSource:
    url: str
    ca_pem: str
    interval_hours: int = 24


@dataclass(frozen=True)
class Lifetime:
    """The expiry safety net (docs/policy.md, [lifetime]): warn before the end, grace offline."""

    warn_before_expiry_days: int = 14  # staff and the tray warn this many days before `expires`
    offline_warn_days: int = 7  # warn after this many days without reaching the update server
    offline_block_days: int | None = None  # refuse the policy after this many (None: never)


@dataclass(frozen=True)
class VerifierRef:
    """The city's posture verifier (docs/verifier-protocol.md): tunnel targets need its
    credential before the tunnel opens."""

    url: str  # https://host:port
    ca_pem: str  # the CA its server certificate chains to
    # "hardware": the verifier admits only a device key proved to live in a TPM (issue 22,
    # docs/certificates.md); "any" (default) also admits the software key.
    key_protection: str = "any"


@dataclass(frozen=True)
class Policy:
    id: str
    serial: int
    not_before: datetime
    expires: datetime
    recheck_interval_minutes: int
    description: str = ""
    rules: Mapping[str, CheckRule] = field(default_factory=dict)
    # The typed values of each section that set posture settings, by section path
    # ("checks.os_updates" -> {"max_days_since_update": 30}, "posture" -> {...}); the keys and
    # the settings they set are defined once in agent.policy.schema.SECTIONS.
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    forbidden_software: tuple[SoftwareRule, ...] = ()
    required_software: tuple[SoftwareRule, ...] = ()
    clock_skew: ClockSkewRule | None = None
    agent_min_version: str | None = None
    targets: tuple[Target, ...] = ()
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    update: UpdateSource | None = None
    verifier: VerifierRef | None = None  # [verifier]: admission needs fresh server-side posture
    session_grace_seconds: int = 60  # warning time before a non-compliant session is ended
    lifetime: Lifetime = field(default_factory=Lifetime)

    def rule(self, check_id: str) -> CheckRule:
        """A posture check the policy does not mention is required, fail-closed."""
        return self.rules.get(check_id, CheckRule())


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy that passed every check, with where it came from and who signed it."""

    policy: Policy
    source: str  # "installed", "cache", "file", "update"
    path: str  # file path or URL
    sha256: str
    key_id: str
    signer: str  # trust anchor file name (without .pub)
    demo: bool  # signed by a DEMO anchor or a DEMO policy id
