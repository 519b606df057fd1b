"""The first schema: nonces, devices, attestations, assignments, credentials, sessions, serials.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("cert_fp", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    op.create_index("ix_nonces_expires_at", "nonces", ["expires_at"])
    op.create_table(
        "devices",
        sa.Column("cert_fp", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_index("ix_devices_user", "devices", ["user"])
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("cert_fp", sa.String(64), nullable=True),
        sa.Column("policy_id", sa.String(64), nullable=True),
        sa.Column("policy_serial", sa.BigInteger, nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("correlation_id", sa.String(16), nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("refused_code", sa.String(64), nullable=True),
        sa.Column("refused_detail", sa.Text, nullable=True),
    )
    op.create_index("ix_attestations_at", "attestations", ["at"])
    op.create_index("ix_attestations_user", "attestations", ["user"])
    op.create_index("ix_attestations_correlation_id", "attestations", ["correlation_id"])
    op.create_table(
        "assignments",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("pc_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("serial", sa.String(48), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("pc_id", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("not_after", sa.Float, nullable=False),
        sa.Column("correlation_id", sa.String(16), nullable=False),
    )
    op.create_index("ix_credentials_user", "credentials", ["user"])
    op.create_table(
        "sessions",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("pc_id", sa.String(64), nullable=False),
        sa.Column("admitted_at", sa.Float, nullable=False),
        sa.Column("last_ok_at", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cut_at", sa.Float, nullable=True),
        sa.Column("cut_reason", sa.String(64), nullable=True),
    )
    op.create_table(
        "policy_serials",
        sa.Column("policy_id", sa.String(64), primary_key=True),
        sa.Column("highest", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("policy_serials", "sessions", "credentials", "assignments", "attestations",
                 "devices", "nonces"):
        op.drop_table(name)
