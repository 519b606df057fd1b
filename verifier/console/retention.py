"""Retention: attestations (and what the console derived from them) older than the period go.

``run`` deletes every attestation with ``at < now - days``, exactly; the console's per-report
extras with them; the posture credentials issued before the cut (they name the user and the
office PC and expired minutes after issue); devices last seen before the cut; a newest-report
pointer that would dangle.
Deletes go in batches of primary keys so a large PostgreSQL table is never locked for long.
It runs as an asyncio task in the console (``retention_interval_seconds``) and as
``byod-verifier retention run``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from verifier.console.tables import devices, report_extras
from verifier.db import attestations, credentials

DAY = 86400.0


@dataclass(frozen=True)
class Result:
    cutoff: float
    attestations: int
    extras: int
    devices: int
    credentials: int = 0


def run(engine: Engine, now: float, days: int, batch: int = 5000) -> Result:
    cutoff = now - days * DAY
    removed = 0
    while True:
        with engine.begin() as c:
            ids = list(c.execute(sa.select(attestations.c.id).where(attestations.c.at < cutoff)
                                 .order_by(attestations.c.id).limit(batch)).scalars())
            if not ids:
                break
            c.execute(devices.update().where(devices.c.last_report_id.in_(ids))
                      .values(last_report_id=None))
            removed += c.execute(attestations.delete().where(attestations.c.id.in_(ids))
                                 ).rowcount
    with engine.begin() as c:
        extras = c.execute(report_extras.delete().where(report_extras.c.at < cutoff)).rowcount
        gone = c.execute(devices.delete().where(devices.c.last_at < cutoff)).rowcount
        creds = c.execute(credentials.delete().where(credentials.c.issued_at < cutoff)).rowcount
    return Result(cutoff, removed, extras, gone, creds)
