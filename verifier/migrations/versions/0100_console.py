"""The console: accounts, sessions, audit log, pre-aggregated fleet state; attestation indexes.

Revision ID: 0100_console
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100_console"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("totp_secret", sa.Text, nullable=True),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True),
        sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.Float, nullable=True),
        sa.Column("oidc_subject", sa.String(255), nullable=True, unique=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer,
                  sa.ForeignKey("console_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_console_sessions_account_id", "console_sessions", ["account_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "console_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
    )
    op.create_index("ix_console_audit_at", "console_audit", ["at"])
    op.create_table(
        "console_devices",
        sa.Column("cert_fp", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("last_attestation_id", sa.Integer, nullable=False),
        sa.Column("last_report_id", sa.Integer, nullable=True),
        sa.Column("last_compliant", sa.Boolean, nullable=False),
        sa.Column("last_correlation_id", sa.String(16), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("policy_id", sa.String(64), nullable=True),
        sa.Column("policy_serial", sa.BigInteger, nullable=True),
        sa.Column("cert_not_after", sa.Float, nullable=True),
        sa.Column("os", sa.String(16), nullable=True),
        sa.Column("blocked", sa.String(512), nullable=False, server_default=""),
        sa.Column("warned", sa.String(512), nullable=False, server_default=""),
    )
    for col in ("user", "last_at", "agent_version", "cert_not_after"):
        op.create_index(f"ix_console_devices_{col}", "console_devices", [col])
    op.create_table(
        "console_report_extras",
        sa.Column("correlation_id", sa.String(16), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("os", sa.String(16), nullable=True),
        sa.Column("remediation", sa.Text, nullable=False),
    )
    op.create_index("ix_console_report_extras_at", "console_report_extras", ["at"])
    op.create_table(
        "console_device_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("cert_fp", sa.String(64), primary_key=True),
        sa.Column("compliant", sa.Boolean, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("attestations", sa.Integer, nullable=False),
        sa.Column("allowed_attestations", sa.Integer, nullable=False),
    )
    op.create_table(
        "console_daily",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("devices", sa.Integer, nullable=False),
        sa.Column("compliant", sa.Integer, nullable=False),
        sa.Column("attestations", sa.Integer, nullable=False),
        sa.Column("allowed_attestations", sa.Integer, nullable=False),
    )
    op.create_table(
        "console_departments",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("department", sa.String(64), nullable=False),
    )
    op.create_index("ix_console_departments_department", "console_departments", ["department"])
    # The device page reads one certificate's history, newest first: no scan of all rows.
    op.create_index("ix_attestations_cert_fp_at", "attestations", ["cert_fp", "at"])


def downgrade() -> None:
    op.drop_index("ix_attestations_cert_fp_at", "attestations")
    for name in ("console_departments", "console_daily", "console_device_days",
                 "console_report_extras", "console_devices", "console_audit", "console_sessions",
                 "console_accounts"):
        op.drop_table(name)
