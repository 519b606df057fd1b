"""What the server stores, table by table: the console's privacy page and docs/console.md list this.

tests/console/test_privacy.py introspects the real database after ``db upgrade`` and fails when a
table or column exists that this list does not name (or the other way round): a new column
cannot be stored without being declared here and shown to staff.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stored:
    table: str
    columns: tuple[str, ...]
    personal: tuple[str, ...]  # columns that name or identify a person or their PC
    retention: str  # attestations (retention_days) | session | audit | state | config | chart
    #                 | totals: console.privacy.r.<retention> says it in words


STORED: tuple[Stored, ...] = (
    Stored("attestations", ("id", "at", "user", "cert_fp", "policy_id", "policy_serial",
                            "agent_version", "target", "allowed", "correlation_id", "checks",
                            "refused_code", "refused_detail"), ("user", "cert_fp", "checks"),
           "attestations"),
    Stored("devices", ("cert_fp", "user", "public_key", "first_seen", "last_seen"),
           ("cert_fp", "user", "public_key"), "state"),
    Stored("nonces", ("nonce", "cert_fp", "created_at", "expires_at", "used_at"), ("cert_fp",),
           "session"),
    Stored("assignments", ("user", "pc_id", "host", "port"), ("user", "pc_id", "host"), "config"),
    Stored("credentials", ("serial", "user", "pc_id", "issued_at", "not_after",
                           "correlation_id"), ("user", "pc_id"), "attestations"),
    Stored("sessions", ("user", "pc_id", "admitted_at", "last_ok_at", "deadline", "state",
                        "cut_at", "cut_reason"), ("user", "pc_id"), "state"),
    Stored("policy_serials", ("policy_id", "highest"), (), "state"),
    Stored("console_accounts", ("id", "username", "role", "password_hash", "totp_secret",
                                "totp_last_step", "failed_count", "locked_until",
                                "oidc_subject", "disabled", "created_at"),
           ("username", "oidc_subject"), "config"),
    Stored("console_sessions", ("token_hash", "account_id", "csrf", "created_at", "last_seen",
                                "expires_at"), (), "session"),
    Stored("console_audit", ("id", "at", "actor", "role", "action", "target", "ok", "client"),
           ("actor", "target", "client"), "audit"),
    Stored("console_devices", ("cert_fp", "user", "first_at", "last_at", "last_attestation_id",
                               "last_report_id", "last_compliant", "last_correlation_id",
                               "agent_version", "policy_id", "policy_serial", "cert_not_after",
                               "os", "blocked", "warned"), ("cert_fp", "user"), "attestations"),
    Stored("console_report_extras", ("correlation_id", "at", "os", "remediation"), (),
           "attestations"),
    Stored("console_device_days", ("day", "cert_fp", "compliant", "last_at", "attestations",
                                   "allowed_attestations"), ("cert_fp",), "chart"),
    Stored("console_daily", ("day", "devices", "compliant", "attestations",
                             "allowed_attestations"), (), "totals"),
    Stored("console_departments", ("user", "department"), ("user",), "config"),
)

NOT_STORED = ("hostname", "ip_address", "report_summary_text", "files", "passwords")
