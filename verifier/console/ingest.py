"""Keep the console's pre-aggregated state current as attestations arrive (no raw-row scans later).

``Ingest.after_attest`` runs right after the verifier stored an attestation (verifier/app.py calls
it; a failure here is logged and never changes the verifier's answer). It reads that one row by
its 判定ID (indexed) and updates, in one transaction: ``console_devices`` (the newest state of the
certificate), ``console_device_days`` (the day's last decision) and ``console_report_extras``
(what the help desk needs and the verifier does not keep: the remediation keys the agent showed
and the OS family). ``rebuild`` recomputes the same from the attestations table (an existing
database, or after a restore).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import queue
import re
import threading
import time
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from agent.core import i18n
from verifier.console.tables import device_days, devices, report_extras
from verifier.db import attestations

log = logging.getLogger("verifier.console")

# Refusals decided before the report's signature was checked: the content is not the device's.
PRE_SIGNATURE = frozenset({
    "too_large", "bad_json", "too_deep", "bad_request", "bad_version", "no_client_cert",
    "cert_unknown_ca", "cert_expired", "cert_revoked", "cert_key_type", "crl_missing",
    "crl_invalid", "crl_stale", "key_not_enrolled", "bad_signature", "internal",
    "ocsp_unreachable", "ocsp_invalid", "ocsp_unknown", "ocsp_stale"})
_KEY_RE = re.compile(r"[a-z0-9_]{1,40}(\.[a-z0-9_]{1,40}){0,4}")
_OS = frozenset({"windows", "macos", "linux", "other"})


def _insert(c: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT for the two databases the verifier supports."""
    if c.dialect.name == "postgresql":
        return postgresql.insert(table)
    if c.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {c.dialect.name}")


def day_of(at: float, zone: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(at, zone).date().isoformat()


def cert_not_after(peer_der: bytes | None) -> float | None:
    if not peer_der:
        return None
    try:
        return x509.load_der_x509_certificate(peer_der).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def extras_from_report(report: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The OS family and each check's remediation key, kept only when our catalogue has them
    (the text shown later is always ours, never the report's)."""
    host = report.get("host")
    os_name = host.get("os") if isinstance(host, dict) else None
    keys: dict[str, str] = {}
    checks = report.get("checks")
    for item in checks[:64] if isinstance(checks, list) else []:
        if not isinstance(item, dict):
            continue
        cid, rem = item.get("id"), item.get("remediation")
        key = rem.get("key") if isinstance(rem, dict) else None
        if (isinstance(cid, str) and _KEY_RE.fullmatch(cid) and isinstance(key, str)
                and _KEY_RE.fullmatch(key)
                and f"remediation.{key}.steps" in i18n.catalogue("ja")):
            keys[cid] = key
    return (os_name if os_name in _OS else None), keys


def outcome_ids(checks_json: str, outcome: str) -> str:
    try:
        checks = json.loads(checks_json)
    except ValueError:
        return ""
    ids = sorted({str(c.get("id"))[:64] for c in checks if isinstance(c, dict)
                  and c.get("outcome") == outcome})
    return ",".join(ids)[:512]


@dataclass(frozen=True)
class Item:
    correlation_id: str
    cert_not_after: float | None
    os_name: str | None
    remediation: Mapping[str, str]
    trusted: bool


class Ingest:
    """``after_attest`` only queues; a writer thread folds the queue into the tables in batches
    (one transaction per batch, at most ``batch_seconds`` late), so the attestation's answer
    never waits for the console. A full queue (the database cannot keep up) writes in the
    caller's thread instead of dropping anything. ``flush`` waits for the queue (tests, exit)."""

    def __init__(self, engine: Engine, zone: zoneinfo.ZoneInfo, *, batch_seconds: float = 0.5,
                 max_batch: int = 500, max_queue: int = 20_000) -> None:
        self.engine = engine
        self.zone = zone
        self.batch_seconds = batch_seconds
        self.max_batch = max_batch
        self._q: queue.Queue[Item] = queue.Queue(maxsize=max_queue)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def after_attest(self, peer_der: bytes | None, raw: bytes, code: str,
                     body: Mapping[str, Any]) -> None:
        cid = body.get("correlation_id")
        if not isinstance(cid, str):
            return  # refused before a 判定ID existed
        os_name: str | None = None
        keys: dict[str, str] = {}
        if code not in PRE_SIGNATURE:
            try:  # the verifier has parsed and bounded this body already: only read it
                doc = json.loads(raw)
            except ValueError:
                doc = None
            report = doc.get("report") if isinstance(doc, dict) else None
            if isinstance(report, dict):
                os_name, keys = extras_from_report(report)
        item = Item(cid, cert_not_after(peer_der), os_name, keys, code not in PRE_SIGNATURE)
        self._start()
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.write([item])

    def _start(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="console-ingest",
                                                daemon=True)
                self._worker.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            batch = [self._q.get()]
            deadline = time.monotonic() + self.batch_seconds
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._q.get(timeout=left))
                except queue.Empty:
                    break
            try:
                self.write(batch)
            except Exception:  # logged; `byod-verifier console rebuild` recomputes everything
                log.exception("console ingest: a batch of %d attestations failed", len(batch))
            finally:
                for _ in batch:
                    self._q.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until everything queued is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._q.all_tasks_done:
            while self._q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._q.all_tasks_done.wait(left)
        return True

    def record(self, correlation_id: str, *, cert_not_after: float | None, os_name: str | None,
               remediation: Mapping[str, str], trusted: bool = True) -> None:
        """One attestation, now, in the caller's thread (seeding, tests)."""
        self.write([Item(correlation_id, cert_not_after, os_name, remediation, trusted)])

    def write(self, items: list[Item]) -> None:
        with self.engine.begin() as c:  # upserts: two instances at once need no retry
            for it in items:
                self._record(c, it.correlation_id, it.cert_not_after, os_name=it.os_name,
                             remediation=it.remediation, trusted=it.trusted)

    def _record(self, c: Connection, cid: str, not_after: float | None, *,
                os_name: str | None, remediation: Mapping[str, str], trusted: bool) -> None:
        row = c.execute(sa.select(attestations).where(attestations.c.correlation_id == cid)
                        .order_by(attestations.c.id.desc()).limit(1)).first()
        if row is None:
            return
        if trusted and (remediation or os_name):
            c.execute(_insert(c, report_extras).values(
                correlation_id=cid, at=row.at, os=os_name,
                remediation=json.dumps(dict(remediation), sort_keys=True))
                .on_conflict_do_nothing(index_elements=[report_extras.c.correlation_id]))
        if row.cert_fp is None or row.user is None or not trusted:
            return
        self.apply(c, row, not_after, os_name)

    def apply(self, c: Connection, row: Any, not_after: float | None,
              os_name: str | None) -> None:
        """Fold one stored attestation row into the device and day state (newest wins).

        Compliant means: the newest *evaluated* report had no blocking check (a refusal before
        evaluation, such as a replayed nonce, says nothing about the PC and changes no verdict).
        """
        has_report = row.checks not in ("", "[]")
        blocked = outcome_ids(row.checks, "block") if has_report else ""
        values: dict[str, Any] = {
            "user": row.user, "last_at": row.at, "last_attestation_id": row.id,
            "last_correlation_id": row.correlation_id, "agent_version": row.agent_version,
            "policy_id": row.policy_id, "policy_serial": row.policy_serial}
        if has_report:
            values.update(last_report_id=row.id, last_compliant=blocked == "", blocked=blocked,
                          warned=outcome_ids(row.checks, "warn"))
        if not_after is not None:
            values["cert_not_after"] = not_after
        if os_name is not None:
            values["os"] = os_name
        fresh = {"last_report_id": None, "last_compliant": False, "blocked": "", "warned": "",
                 **values, "cert_fp": row.cert_fp, "first_at": row.at}
        ins = _insert(c, devices).values(**fresh)
        c.execute(ins.on_conflict_do_update(  # newest wins, whatever order rows arrive in
            index_elements=[devices.c.cert_fp], set_=values,
            where=devices.c.last_attestation_id < ins.excluded.last_attestation_id))
        day = day_of(row.at, self.zone)
        ok = 1 if row.allowed else 0
        compliant = has_report and blocked == ""
        d = device_days.c
        newest = (sa.func.max(d.last_at, row.at) if c.dialect.name == "sqlite"
                  else sa.func.greatest(d.last_at, row.at))
        change: dict[Any, Any] = {d.attestations: d.attestations + 1,
                                  d.allowed_attestations: d.allowed_attestations + ok,
                                  d.last_at: newest}
        if has_report:
            change[d.compliant] = sa.case((d.last_at <= row.at, compliant), else_=d.compliant)
        c.execute(_insert(c, device_days).values(
            day=day, cert_fp=row.cert_fp, compliant=compliant, last_at=row.at, attestations=1,
            allowed_attestations=ok).on_conflict_do_update(index_elements=[d.day, d.cert_fp],
                                                           set_=change))

    def rebuild(self, batch: int = 5000) -> int:
        """Recompute devices and days from the attestations table, in id order."""
        with self.engine.begin() as c:
            c.execute(devices.delete())
            c.execute(device_days.delete())
        done, last = 0, 0
        while True:
            with self.engine.begin() as c:
                rows = c.execute(sa.select(attestations).where(attestations.c.id > last)
                                 .where(attestations.c.cert_fp.is_not(None))
                                 .order_by(attestations.c.id).limit(batch)).all()
                for row in rows:
                    if row.refused_code not in PRE_SIGNATURE:
                        self.apply(c, row, None, None)
            if not rows:
                return done
            done += len(rows)
            last = rows[-1].id
