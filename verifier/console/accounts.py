"""Console accounts, sign-in (password + TOTP, lockout), sessions and the audit log.

The decisions are plain methods the routes call; tests call them too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from verifier.console import security
from verifier.console.config import ConsoleConfig
from verifier.console.tables import accounts, audit, sessions

log = logging.getLogger("verifier.console")
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(StrEnum):
    IT = "it"  # IT administrator: everything
    HELPDESK = "helpdesk"  # read-only: fleet figures and look-up by 判定ID, no lists of people


class SignIn(StrEnum):
    OK = "ok"
    BAD = "bad"  # wrong name, password or code: one answer for all three
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Role


@dataclass(frozen=True)
class SessionInfo:
    account: Account
    csrf: str
    token_hash: str


class Accounts:
    def __init__(self, engine: Engine, cfg: ConsoleConfig, key: bytes | None) -> None:
        self.engine = engine
        self.cfg = cfg
        self.key = key

    # -- accounts --------------------------------------------------------------------------
    def add(self, username: str, role: Role, password: str | None, now: float, *,
            totp_secret: str | None = None, oidc_subject: str | None = None) -> str | None:
        """Create an account; returns the TOTP secret to enrol (local accounts), else None."""
        if not USERNAME_RE.fullmatch(username):
            raise ValueError("user name: letters, digits and ._@- only, at most 64")
        sealed = None
        secret = None
        if password is not None:
            if self.key is None:
                raise ValueError("a local account needs the console key file (key_file)")
            secret = totp_secret or security.new_totp_secret()
            sealed = security.seal(self.key, secret, f"totp:{username}")
        with self.engine.begin() as c:
            c.execute(accounts.insert().values(
                username=username, role=role.value,
                password_hash=security.hash_password(password) if password is not None else None,
                totp_secret=sealed, failed_count=0, disabled=False, created_at=now,
                oidc_subject=oidc_subject))
        return secret

    def by_name(self, username: str) -> Account | None:
        with self.engine.begin() as c:
            r = c.execute(sa.select(accounts).where(accounts.c.username == username)).first()
        return None if r is None else Account(r.id, r.username, Role(r.role))

    def sign_in(self, username: str, password: str, code: str, now: float,
                client: str | None) -> tuple[SignIn, Account | None]:
        name = username.strip()[:64]
        with self.engine.begin() as c:
            r = c.execute(sa.select(accounts).where(accounts.c.username == name)).first()
        if r is None or r.password_hash is None:
            security.verify_password(None, password)  # the same time as a known name
            self.record(now, name or "-", None, "signin", None, ok=False, client=client)
            return SignIn.BAD, None
        account = Account(r.id, r.username, Role(r.role))
        if r.disabled:
            self.record(now, name, r.role, "signin_disabled", None, ok=False, client=client)
            return SignIn.DISABLED, None
        if r.locked_until is not None and now < r.locked_until:
            self.record(now, name, r.role, "signin_locked", None, ok=False, client=client)
            return SignIn.LOCKED, None
        good = security.verify_password(r.password_hash, password)
        step = None
        if good and self.key is not None and r.totp_secret:
            secret = security.unseal(self.key, r.totp_secret, f"totp:{name}")
            step = security.totp_step(secret, code, now, r.totp_last_step) if secret else None
        if not good or step is None:
            failures = (0 if r.locked_until is not None and now >= r.locked_until
                        else r.failed_count) + 1
            locked = failures >= self.cfg.lockout_failures
            with self.engine.begin() as c:
                c.execute(accounts.update().where(accounts.c.id == r.id).values(
                    failed_count=failures,
                    locked_until=now + self.cfg.lockout_minutes * 60 if locked else None))
            self.record(now, name, r.role, "lockout" if locked else "signin", None, ok=False,
                        client=client)
            return (SignIn.LOCKED if locked else SignIn.BAD), None
        with self.engine.begin() as c:
            c.execute(accounts.update().where(accounts.c.id == r.id).values(
                failed_count=0, locked_until=None, totp_last_step=step))
        self.record(now, name, r.role, "signin", None, ok=True, client=client)
        return SignIn.OK, account

    def oidc_account(self, subject: str, username: str, role: Role, now: float) -> Account:
        """The account of an IdP user: made on first sign-in, its role follows the IdP's claim."""
        with self.engine.begin() as c:
            r = c.execute(sa.select(accounts).where(accounts.c.oidc_subject == subject)).first()
            if r is None:
                c.execute(accounts.insert().values(
                    username=username, role=role.value, password_hash=None, totp_secret=None,
                    failed_count=0, disabled=False, created_at=now, oidc_subject=subject))
                r = c.execute(sa.select(accounts)
                              .where(accounts.c.oidc_subject == subject)).first()
            elif r.role != role.value:
                c.execute(accounts.update().where(accounts.c.id == r.id).values(role=role.value))
        if r is None:  # pragma: no cover (inserted just above)
            raise RuntimeError("account vanished")
        return Account(r.id, r.username, role)

    # -- sessions --------------------------------------------------------------------------
    def open_session(self, account: Account, now: float) -> str:
        token = security.new_token()
        with self.engine.begin() as c:
            c.execute(sessions.delete().where(sessions.c.expires_at < now))
            c.execute(sessions.insert().values(
                token_hash=security.token_hash(token), account_id=account.id,
                csrf=security.new_token(), created_at=now, last_seen=now,
                expires_at=now + self.cfg.session_max_hours * 3600))
        return token

    def session(self, token: str | None, now: float) -> SessionInfo | None:
        if not token or len(token) > 100:
            return None
        th = security.token_hash(token)
        with self.engine.begin() as c:
            r = c.execute(sa.select(sessions, accounts.c.username, accounts.c.role,
                                    accounts.c.disabled)
                          .join(accounts, accounts.c.id == sessions.c.account_id)
                          .where(sessions.c.token_hash == th)).first()
            if r is None:
                return None
            idle = now - r.last_seen > self.cfg.session_idle_minutes * 60
            if idle or now >= r.expires_at or r.disabled:
                c.execute(sessions.delete().where(sessions.c.token_hash == th))
                return None
            if now - r.last_seen > 30:  # one write a half minute, not one per page
                c.execute(sessions.update().where(sessions.c.token_hash == th)
                          .values(last_seen=now))
        return SessionInfo(Account(r.account_id, r.username, Role(r.role)), r.csrf, th)

    def close_session(self, info: SessionInfo, now: float, client: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(sessions.delete().where(sessions.c.token_hash == info.token_hash))
        self.record(now, info.account.username, info.account.role.value, "signout", None,
                    ok=True, client=client)

    # -- audit -----------------------------------------------------------------------------
    def record(self, now: float, actor: str, role: str | None, action: str, target: str | None,
               *, ok: bool, client: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(audit.insert().values(
                at=now, actor=security.visible(actor)[:64], role=role, action=action,
                target=None if target is None else security.visible(target)[:128], ok=ok,
                client=(client or "")[:64] or None))
        log.info("console audit actor=%s action=%s target=%s ok=%s",
                 security.visible(actor)[:64], action, security.visible(target or "")[:128], ok)

    def audit_page(self, limit: int = 200, offset: int = 0) -> list[dict[str, object]]:
        with self.engine.begin() as c:
            rows = c.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
                             .offset(offset)).mappings().all()
        return [dict(r) for r in rows]
