"""The console's own tables (accounts, sessions, audit, pre-aggregated fleet state).

The verifier's tables (verifier/db.py) belong to the verifier; the console only reads them,
except that retention deletes old attestations. Times are Unix seconds (float), as there.
Days are ``YYYY-MM-DD`` in the console's time zone (``[console] timezone``, Asia/Tokyo).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "console_accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # it | helpdesk
    sa.Column("password_hash", sa.Text, nullable=True),  # argon2id; None: OpenID Connect only
    sa.Column("totp_secret", sa.Text, nullable=True),  # AES-GCM sealed with the console key file
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),  # no code is accepted twice
    sa.Column("failed_count", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float, nullable=True),
    sa.Column("oidc_subject", sa.String(255), nullable=True, unique=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the cookie value
    sa.Column("account_id", sa.Integer, sa.ForeignKey("console_accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

audit = sa.Table(
    "console_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(128), nullable=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("client", sa.String(64), nullable=True),  # the browser's IP address
)

devices = sa.Table(  # one row per certificate: the newest state, updated on ingest
    "console_devices", metadata,
    sa.Column("cert_fp", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False, index=True),
    sa.Column("first_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False, index=True),
    sa.Column("last_attestation_id", sa.Integer, nullable=False),
    sa.Column("last_report_id", sa.Integer, nullable=True),  # newest one that was evaluated
    sa.Column("last_compliant", sa.Boolean, nullable=False),
    sa.Column("last_correlation_id", sa.String(16), nullable=False),
    sa.Column("agent_version", sa.String(64), nullable=True, index=True),
    sa.Column("policy_id", sa.String(64), nullable=True),
    sa.Column("policy_serial", sa.BigInteger, nullable=True),
    sa.Column("cert_not_after", sa.Float, nullable=True, index=True),
    sa.Column("os", sa.String(16), nullable=True),
    sa.Column("blocked", sa.String(512), nullable=False, default=""),  # sorted check ids, ","
    sa.Column("warned", sa.String(512), nullable=False, default=""),
)

report_extras = sa.Table(  # what the verifier does not keep but the help desk needs
    "console_report_extras", metadata,
    sa.Column("correlation_id", sa.String(16), primary_key=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("os", sa.String(16), nullable=True),
    sa.Column("remediation", sa.Text, nullable=False),  # JSON {check id: catalogue key}
)

device_days = sa.Table(
    "console_device_days", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("cert_fp", sa.String(64), primary_key=True),
    sa.Column("compliant", sa.Boolean, nullable=False),  # the day's last evaluated report
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Column("attestations", sa.Integer, nullable=False),
    sa.Column("allowed_attestations", sa.Integer, nullable=False),
)

daily = sa.Table(  # closed days, rolled up from console_device_days by the job
    "console_daily", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("devices", sa.Integer, nullable=False),
    sa.Column("compliant", sa.Integer, nullable=False),
    sa.Column("attestations", sa.Integer, nullable=False),
    sa.Column("allowed_attestations", sa.Integer, nullable=False),
)

departments = sa.Table(
    "console_departments", metadata,
    sa.Column("user", sa.String(128), primary_key=True),
    sa.Column("department", sa.String(64), nullable=False, index=True),
)
