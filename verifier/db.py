"""All SQL of the verifier (SQLAlchemy Core), one store object; migrations in verifier/migrations.

Times are Unix seconds (float) so SQLite and PostgreSQL compare them the same way. Every
function takes the current time from its caller: the store has no clock of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

nonces = sa.Table(
    "nonces", metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("cert_fp", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("used_at", sa.Float, nullable=True),
)

devices = sa.Table(
    "devices", metadata,
    sa.Column("cert_fp", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False, index=True),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)

attestations = sa.Table(
    "attestations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("user", sa.String(128), nullable=True, index=True),
    sa.Column("cert_fp", sa.String(64), nullable=True),
    sa.Column("policy_id", sa.String(64), nullable=True),
    sa.Column("policy_serial", sa.BigInteger, nullable=True),
    sa.Column("agent_version", sa.String(64), nullable=True),
    sa.Column("target", sa.String(128), nullable=True),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("correlation_id", sa.String(16), nullable=False, index=True),
    sa.Column("checks", sa.Text, nullable=False),  # JSON: per check status, outcome, evidence
    sa.Column("refused_code", sa.String(64), nullable=True),
    sa.Column("refused_detail", sa.Text, nullable=True),
)

assignments = sa.Table(
    "assignments", metadata,
    sa.Column("user", sa.String(128), primary_key=True),
    sa.Column("pc_id", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
)

credentials = sa.Table(
    "credentials", metadata,
    sa.Column("serial", sa.String(48), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False, index=True),
    sa.Column("pc_id", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("not_after", sa.Float, nullable=False),
    sa.Column("correlation_id", sa.String(16), nullable=False),
)

sessions = sa.Table(  # one row per user admitted at the gateway: what the enforcer watches
    "sessions", metadata,
    sa.Column("user", sa.String(128), primary_key=True),
    sa.Column("pc_id", sa.String(64), nullable=False),
    sa.Column("admitted_at", sa.Float, nullable=False),
    sa.Column("last_ok_at", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float, nullable=False),  # last_ok_at + recheck + grace
    sa.Column("state", sa.String(16), nullable=False),  # live | cut
    sa.Column("cut_at", sa.Float, nullable=True),
    sa.Column("cut_reason", sa.String(64), nullable=True),
)

policy_serials = sa.Table(
    "policy_serials", metadata,
    sa.Column("policy_id", sa.String(64), primary_key=True),
    sa.Column("highest", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class Assignment:
    user: str
    pc_id: str
    host: str
    port: int


@dataclass(frozen=True)
class Session:
    user: str
    pc_id: str
    last_ok_at: float
    deadline: float
    state: str


def migrations_dir() -> Path:
    return Path(__file__).with_name("migrations")


def upgrade(url: str) -> None:
    """Alembic upgrade to head (``serve`` runs this at start; ``db upgrade`` on its own)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- nonces --------------------------------------------------------------------------------
    def add_nonce(self, nonce: str, cert_fp: str, now: float, lifetime: float) -> None:
        with self.tx() as c:
            c.execute(nonces.delete().where(nonces.c.expires_at < now - 3600))
            c.execute(nonces.insert().values(nonce=nonce, cert_fp=cert_fp, created_at=now,
                                             expires_at=now + lifetime))

    def use_nonce(self, nonce: str, cert_fp: str, now: float) -> str | None:
        """Consume the nonce atomically; None when fine, else the refusal code."""
        with self.tx() as c:
            row = c.execute(sa.select(nonces).where(nonces.c.nonce == nonce)).first()
            if row is None:
                return "nonce_unknown"
            if row.cert_fp != cert_fp:
                return "nonce_unknown"  # someone else's nonce: as good as none
            # The UPDATE ... WHERE used_at IS NULL is the single-use guarantee across instances.
            done = c.execute(nonces.update().where(nonces.c.nonce == nonce)
                             .where(nonces.c.used_at.is_(None)).values(used_at=now))
            if done.rowcount != 1:
                return "nonce_replayed"
            if now > row.expires_at:
                return "nonce_expired"
            return None

    # -- devices -------------------------------------------------------------------------------
    def see_device(self, cert_fp: str, user: str, public_key: str, now: float) -> None:
        with self.tx() as c:
            upd = c.execute(devices.update().where(devices.c.cert_fp == cert_fp)
                            .values(last_seen=now))
            if upd.rowcount == 0:
                c.execute(devices.insert().values(cert_fp=cert_fp, user=user,
                                                  public_key=public_key, first_seen=now,
                                                  last_seen=now))

    # -- policy serials ------------------------------------------------------------------------
    def highest_serial(self, policy_id: str) -> int:
        with self.tx() as c:
            v = c.execute(sa.select(policy_serials.c.highest)
                          .where(policy_serials.c.policy_id == policy_id)).scalar()
            return int(v) if v is not None else 0

    def raise_serial(self, policy_id: str, serial: int) -> None:
        with self.tx() as c:
            cur = c.execute(sa.select(policy_serials.c.highest)
                            .where(policy_serials.c.policy_id == policy_id)).scalar()
            if cur is None:
                c.execute(policy_serials.insert().values(policy_id=policy_id, highest=serial))
            elif serial > cur:
                c.execute(policy_serials.update().where(policy_serials.c.policy_id == policy_id)
                          .values(highest=serial))

    # -- attestations --------------------------------------------------------------------------
    def record_attestation(self, *, at: float, user: str | None, cert_fp: str | None,
                           policy_id: str | None, policy_serial: int | None,
                           agent_version: str | None, target: str | None, allowed: bool,
                           correlation_id: str, checks: Sequence[dict[str, Any]],
                           refused_code: str | None, refused_detail: str | None) -> None:
        with self.tx() as c:
            c.execute(attestations.insert().values(
                at=at, user=user, cert_fp=cert_fp, policy_id=policy_id,
                policy_serial=policy_serial, agent_version=(agent_version or "")[:64] or None,
                target=(target or "")[:128] or None, allowed=allowed,
                correlation_id=correlation_id,
                checks=json.dumps(list(checks), ensure_ascii=False, sort_keys=True),
                refused_code=refused_code, refused_detail=(refused_detail or "")[:2000] or None))

    def attestations_for(self, user: str) -> list[dict[str, Any]]:
        with self.tx() as c:
            rows = c.execute(sa.select(attestations).where(attestations.c.user == user)
                             .order_by(attestations.c.id)).mappings().all()
            return [dict(r) for r in rows]

    def all_attestations(self) -> list[dict[str, Any]]:
        with self.tx() as c:
            rows = c.execute(sa.select(attestations).order_by(attestations.c.id)).mappings().all()
            return [dict(r) for r in rows]

    # -- assignments ---------------------------------------------------------------------------
    def set_assignment(self, a: Assignment) -> None:
        with self.tx() as c:
            c.execute(assignments.delete().where(assignments.c.user == a.user))
            c.execute(assignments.insert().values(user=a.user, pc_id=a.pc_id, host=a.host,
                                                  port=a.port))

    def remove_assignment(self, user: str) -> bool:
        with self.tx() as c:
            return c.execute(assignments.delete().where(assignments.c.user == user)
                             ).rowcount == 1

    def assignment(self, user: str) -> Assignment | None:
        with self.tx() as c:
            r = c.execute(sa.select(assignments).where(assignments.c.user == user)).first()
            return None if r is None else Assignment(r.user, r.pc_id, r.host, r.port)

    def assignments(self) -> list[Assignment]:
        with self.tx() as c:
            rows = c.execute(sa.select(assignments).order_by(assignments.c.user)).all()
            return [Assignment(r.user, r.pc_id, r.host, r.port) for r in rows]

    # -- credentials ---------------------------------------------------------------------------
    def record_credential(self, serial: str, user: str, pc_id: str, *, issued_at: float,
                          not_after: float, correlation_id: str) -> None:
        with self.tx() as c:
            c.execute(credentials.insert().values(serial=serial, user=user, pc_id=pc_id,
                                                  issued_at=issued_at, not_after=not_after,
                                                  correlation_id=correlation_id))

    def credentials_for(self, user: str) -> list[dict[str, Any]]:
        with self.tx() as c:
            rows = c.execute(sa.select(credentials).where(credentials.c.user == user)
                             .order_by(credentials.c.issued_at)).mappings().all()
            return [dict(r) for r in rows]

    # -- sessions ------------------------------------------------------------------------------
    def admit(self, user: str, pc_id: str, now: float, deadline: float) -> None:
        with self.tx() as c:
            upd = c.execute(sessions.update().where(sessions.c.user == user).values(
                pc_id=pc_id, last_ok_at=now, deadline=deadline, state="live", cut_at=None,
                cut_reason=None))
            if upd.rowcount == 0:
                c.execute(sessions.insert().values(user=user, pc_id=pc_id, admitted_at=now,
                                                   last_ok_at=now, deadline=deadline,
                                                   state="live"))

    def live_sessions(self) -> list[Session]:
        with self.tx() as c:
            rows = c.execute(sa.select(sessions).where(sessions.c.state == "live")).all()
            return [Session(r.user, r.pc_id, r.last_ok_at, r.deadline, r.state) for r in rows]

    def session(self, user: str) -> Session | None:
        with self.tx() as c:
            r = c.execute(sa.select(sessions).where(sessions.c.user == user)).first()
            return None if r is None else Session(r.user, r.pc_id, r.last_ok_at, r.deadline,
                                                  r.state)

    def mark_cut(self, user: str, now: float, reason: str) -> bool:
        """True when this call moved the user from live to cut (one instance acts, once)."""
        with self.tx() as c:
            return c.execute(sessions.update().where(sessions.c.user == user)
                             .where(sessions.c.state == "live")
                             .values(state="cut", cut_at=now, cut_reason=reason)).rowcount == 1
