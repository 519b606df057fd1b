"""Every read the console pages make, from indexed or pre-aggregated tables (docs/console.md).

The fleet page reads ``console_devices`` (one row per certificate), ``console_device_days``
(today only) and ``console_daily`` (closed days): its cost grows with the number of devices, not
with the number of attestations. Only the device page and the look-up read ``attestations``,
through the (cert_fp, at) and correlation_id indexes.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from verifier.console.ingest import day_of
from verifier.console.tables import daily, departments, device_days, devices, report_extras
from verifier.db import attestations, credentials, sessions

DAY = 86400.0
MAX_LIST = 500


@dataclass(frozen=True)
class Filters:
    period_days: int = 1  # 1 (a day) or 7 (a week)
    check: str | None = None  # only devices this check blocks
    agent_version: str | None = None
    policy_serial: int | None = None
    department: str | None = None
    compliant: bool | None = None


@dataclass
class Fleet:
    total: int
    seen_day: int
    seen_week: int
    in_period: int
    compliant: int
    top_failing: list[tuple[str, int]]
    agent_versions: list[tuple[str, int]]
    policy_serials: list[tuple[str, int]]
    trend: list[dict[str, Any]] = field(default_factory=list)
    expiring: int = 0
    not_seen: int = 0
    choices: dict[str, list[Any]] = field(default_factory=dict)  # for the filter form

    @property
    def compliant_percent(self) -> int | None:
        return None if self.in_period == 0 else round(100 * self.compliant / self.in_period)


def _filtered(q: Any, f: Filters, now: float) -> Any:
    c = devices.c
    q = q.where(c.last_at >= now - f.period_days * DAY)
    if f.check:
        # blocked is a sorted, comma-joined id list: match one whole id
        q = q.where(sa.or_(c.blocked == f.check, c.blocked.like(f"{f.check},%"),
                           c.blocked.like(f"%,{f.check}"), c.blocked.like(f"%,{f.check},%")))
    if f.agent_version:
        q = q.where(c.agent_version == f.agent_version)
    if f.policy_serial is not None:
        q = q.where(c.policy_serial == f.policy_serial)
    if f.compliant is not None:
        q = q.where(c.last_compliant.is_(f.compliant))
    if f.department:
        q = q.where(c.user.in_(sa.select(departments.c.user)
                               .where(departments.c.department == f.department)))
    return q


def fleet(engine: Engine, f: Filters, now: float, zone: zoneinfo.ZoneInfo,
          not_seen_days: int) -> Fleet:
    """Every figure of the fleet page from one GROUP BY over console_devices (one row per
    device; the distinct combinations of bucket, verdict, blocking checks, version and serial
    are few) plus the trend. The department filter narrows everything; the other filters
    narrow the period's figures, as the page says."""
    c = devices.c
    bucket = sa.case((c.last_at >= now - DAY, 1), (c.last_at >= now - 7 * DAY, 7), else_=0)
    expiring = sa.func.sum(sa.case(((c.cert_not_after >= now)
                                    & (c.cert_not_after < now + 30 * DAY), 1), else_=0))
    stale = sa.func.sum(sa.case((c.last_at < now - not_seen_days * DAY, 1), else_=0))
    q = sa.select(bucket, c.last_compliant, c.blocked, c.agent_version, c.policy_id,
                  c.policy_serial, sa.func.count(), expiring, stale).group_by(
        bucket, c.last_compliant, c.blocked, c.agent_version, c.policy_id, c.policy_serial)
    if f.department:
        q = q.where(c.user.in_(sa.select(departments.c.user)
                               .where(departments.c.department == f.department)))
    with engine.begin() as conn:
        groups = conn.execute(q).all()
        trend = trend_30(conn, now, zone)
        depts = list(conn.execute(sa.select(departments.c.department).distinct()
                                  .order_by(departments.c.department).limit(200)).scalars())
    total = seen_day = seen_week = in_period = compliant = n_expiring = n_stale = 0
    failing: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    serials: Counter[str] = Counter()
    all_versions: set[str] = set()
    all_serials: set[int] = set()
    for b, ok, blocked, version, pid, serial, count, exp, old in groups:
        n = int(count)
        total += n
        n_expiring += int(exp or 0)
        n_stale += int(old or 0)
        seen_day += n if b == 1 else 0
        seen_week += n if b in (1, 7) else 0
        if version:
            all_versions.add(version)
        if serial is not None:
            all_serials.add(int(serial))
        ids = [x for x in (blocked or "").split(",") if x]
        if not (b in (1, 7) if f.period_days == 7 else b == 1):
            continue
        if (f.check and f.check not in ids) or \
                (f.agent_version and version != f.agent_version) or \
                (f.policy_serial is not None and serial != f.policy_serial) or \
                (f.compliant is not None and bool(ok) is not f.compliant):
            continue
        in_period += n
        compliant += n if ok else 0
        for cid in ids:
            failing[cid] += n
        versions[version or "?"] += n
        serials[f"{pid or '?'} / {serial if serial is not None else '?'}"] += n
    return Fleet(total=total, seen_day=seen_day, seen_week=seen_week, in_period=in_period,
                 compliant=compliant, top_failing=failing.most_common(10),
                 agent_versions=versions.most_common(20),
                 policy_serials=serials.most_common(20), trend=trend, expiring=n_expiring,
                 not_seen=n_stale, choices={"agent_versions": sorted(all_versions)[:50],
                                            "policy_serials": sorted(all_serials)[:50],
                                            "departments": depts})


def _day_totals(conn: Connection, day: str) -> dict[str, int]:
    d = device_days.c
    r = conn.execute(sa.select(sa.func.count(), sa.func.sum(sa.case((d.compliant, 1), else_=0)),
                               sa.func.sum(d.attestations), sa.func.sum(d.allowed_attestations))
                     .where(d.day == day)).one()
    return {"devices": int(r[0] or 0), "compliant": int(r[1] or 0),
            "attestations": int(r[2] or 0), "allowed_attestations": int(r[3] or 0)}


def trend_30(conn: Connection, now: float, zone: zoneinfo.ZoneInfo) -> list[dict[str, Any]]:
    """30 days, oldest first: closed days from console_daily; today and any day the job has
    not closed yet from console_device_days (its primary key starts with the day)."""
    today = dt.datetime.fromtimestamp(now, zone).date()
    days = [(today - dt.timedelta(days=i)).isoformat() for i in range(29, -1, -1)]
    out: dict[str, dict[str, int]] = {
        r.day: {"devices": r.devices, "compliant": r.compliant, "attestations": r.attestations,
                "allowed_attestations": r.allowed_attestations}
        for r in conn.execute(sa.select(daily).where(daily.c.day >= days[0]))
        if r.day != days[-1]}
    missing = [d for d in days if d not in out]
    d = device_days.c
    for r in conn.execute(sa.select(d.day, sa.func.count(),
                                    sa.func.sum(sa.case((d.compliant, 1), else_=0)),
                                    sa.func.sum(d.attestations),
                                    sa.func.sum(d.allowed_attestations))
                          .where(d.day.in_(missing)).group_by(d.day)):
        out[r[0]] = {"devices": int(r[1] or 0), "compliant": int(r[2] or 0),
                     "attestations": int(r[3] or 0), "allowed_attestations": int(r[4] or 0)}
    empty = {"devices": 0, "compliant": 0, "attestations": 0, "allowed_attestations": 0}
    return [{"day": day, **out.get(day, empty)} for day in days]


def roll_up(engine: Engine, now: float, zone: zoneinfo.ZoneInfo, keep_days: int = 31) -> int:
    """Close every finished day not yet in console_daily; drop day rows older than the chart."""
    today = day_of(now, zone)
    with engine.begin() as conn:
        have = set(conn.execute(sa.select(daily.c.day)).scalars())
        open_days = [d for d in conn.execute(sa.select(device_days.c.day).distinct()).scalars()
                     if d < today and d not in have]
        for day in open_days:
            conn.execute(daily.insert().values(day=day, **_day_totals(conn, day)))
        cutoff = (dt.date.fromisoformat(today) - dt.timedelta(days=keep_days)).isoformat()
        conn.execute(device_days.delete().where(device_days.c.day < cutoff))
    return len(open_days)


def device_list(engine: Engine, f: Filters, now: float, *, limit: int = MAX_LIST,
                order: str = "last_at") -> list[dict[str, Any]]:
    c = devices.c
    q = _filtered(sa.select(devices, departments.c.department)
                  .select_from(devices.outerjoin(departments, departments.c.user == c.user)),
                  f, now)
    q = q.order_by(c.last_at.desc() if order == "last_at" else c.user).limit(limit)
    with engine.begin() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def expiring_certs(engine: Engine, now: float, days: int = 30) -> list[dict[str, Any]]:
    c = devices.c
    with engine.begin() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(c.cert_fp, c.user, c.cert_not_after, c.last_at)
            .where(c.cert_not_after >= now).where(c.cert_not_after < now + days * DAY)
            .order_by(c.cert_not_after).limit(MAX_LIST)).mappings()]


def not_seen(engine: Engine, now: float, days: int) -> list[dict[str, Any]]:
    c = devices.c
    with engine.begin() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(c.cert_fp, c.user, c.last_at, c.agent_version)
            .where(c.last_at < now - days * DAY).order_by(c.last_at).limit(MAX_LIST)).mappings()]


def filter_choices(engine: Engine) -> dict[str, list[Any]]:
    c = devices.c
    with engine.begin() as conn:
        return {
            "agent_versions": [v for v in conn.execute(sa.select(c.agent_version).distinct()
                                                       .order_by(c.agent_version)).scalars()
                               if v][:50],
            "policy_serials": [v for v in conn.execute(sa.select(c.policy_serial).distinct()
                                                       .order_by(c.policy_serial)).scalars()
                               if v is not None][:50],
            "departments": list(conn.execute(sa.select(departments.c.department).distinct()
                                             .order_by(departments.c.department)).scalars())[:200],
        }


def _checks(row: Any) -> list[dict[str, Any]]:
    try:
        checks = json.loads(row.checks)
    except ValueError:
        return []
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def device(engine: Engine, cert_fp: str, limit: int = 200) -> dict[str, Any] | None:
    with engine.begin() as conn:
        d = conn.execute(sa.select(devices, departments.c.department)
                         .select_from(devices.outerjoin(departments,
                                                        departments.c.user == devices.c.user))
                         .where(devices.c.cert_fp == cert_fp)).mappings().first()
        if d is None:
            return None
        rows = conn.execute(sa.select(attestations).where(attestations.c.cert_fp == cert_fp)
                            .order_by(attestations.c.at.desc()).limit(limit)).all()
        cids = [r.correlation_id for r in rows]
        creds = {r.correlation_id: r for r in conn.execute(
            sa.select(credentials).where(credentials.c.correlation_id.in_(cids)))} if cids else {}
        sess = conn.execute(sa.select(sessions).where(sessions.c.user == d["user"])).first()
    history = [{"id": r.id, "at": r.at, "allowed": r.allowed, "correlation_id": r.correlation_id,
                "policy_id": r.policy_id, "policy_serial": r.policy_serial,
                "agent_version": r.agent_version, "refused_code": r.refused_code,
                "checks": _checks(r), "credential": creds.get(r.correlation_id)} for r in rows]
    events: list[dict[str, Any]] = []
    for h in history:  # each admission the verifier made is a session (re)start at the gateway
        cred = h["credential"]
        if cred is not None:
            events.append({"at": cred.issued_at, "kind": "admitted", "pc": cred.pc_id,
                           "correlation_id": h["correlation_id"]})
    if sess is not None:
        events.append({"at": sess.admitted_at, "kind": "session_start", "pc": sess.pc_id,
                       "correlation_id": None})
        if sess.state == "cut" and sess.cut_at is not None:
            events.append({"at": sess.cut_at, "kind": "session_cut", "pc": sess.pc_id,
                           "reason": sess.cut_reason, "correlation_id": None})
    events.sort(key=lambda e: e["at"], reverse=True)
    return {"device": dict(d), "history": history, "events": events[:100]}


def lookup(engine: Engine, correlation_id: str) -> dict[str, Any] | None:
    with engine.begin() as conn:
        r = conn.execute(sa.select(attestations)
                         .where(attestations.c.correlation_id == correlation_id)
                         .order_by(attestations.c.id.desc()).limit(1)).first()
        if r is None:
            return None
        extra = conn.execute(sa.select(report_extras)
                             .where(report_extras.c.correlation_id == correlation_id)).first()
        dept = conn.execute(sa.select(departments.c.department)
                            .where(departments.c.user == r.user)).scalar() if r.user else None
    remediation: dict[str, str] = {}
    if extra is not None:
        try:
            loaded = json.loads(extra.remediation)
            remediation = {str(k): str(v) for k, v in loaded.items()} \
                if isinstance(loaded, dict) else {}
        except ValueError:
            remediation = {}
    return {"id": r.id, "at": r.at, "user": r.user, "cert_fp": r.cert_fp,
            "allowed": r.allowed, "correlation_id": r.correlation_id, "policy_id": r.policy_id,
            "policy_serial": r.policy_serial, "agent_version": r.agent_version,
            "refused_code": r.refused_code, "checks": _checks(r), "remediation": remediation,
            "os": extra.os if extra is not None else None, "department": dept}


@dataclass(frozen=True)
class NewestReport:
    user: str | None
    department: str | None
    agent_version: str | None
    checks: list[dict[str, Any]]


def devices_without_report(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count())
                                .where(devices.c.last_report_id.is_(None))).scalar() or 0)


def newest_reports(engine: Engine, batch: int = 2000) -> Iterator[NewestReport]:
    """Every device's newest evaluated report, read in batches by primary key."""
    c = devices.c
    with engine.begin() as conn:
        ids = [(int(r.last_report_id), r.department) for r in conn.execute(
            sa.select(c.last_report_id, departments.c.department)
            .select_from(devices.outerjoin(departments, departments.c.user == c.user))
            .where(c.last_report_id.is_not(None)))]
    for i in range(0, len(ids), batch):
        part = dict(ids[i:i + batch])
        with engine.begin() as conn:
            rows = conn.execute(sa.select(attestations.c.id, attestations.c.user,
                                          attestations.c.agent_version, attestations.c.checks)
                                .where(attestations.c.id.in_(list(part)))).all()
        for r in rows:
            yield NewestReport(r.user, part.get(r.id), r.agent_version, _checks(r))


def set_departments(engine: Engine, rows: list[tuple[str, str]]) -> int:
    with engine.begin() as conn:
        conn.execute(departments.delete())
        if rows:
            conn.execute(departments.insert(), [{"user": u, "department": d} for u, d in rows])
    return len(rows)
