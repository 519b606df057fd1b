"""A small fleet seeded through the verifier's store (Store.record_attestation, the row the
verifier writes) and the console's ingest (Ingest.record, what verifier/app.py calls next).

Each report is a `byod-agent check --json` document (tests/verifier/conftest.report), decided by
the real code (verifier.evaluate) under a real signed policy: the stored checks are exactly what
the verifier would store for that report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from agent.policy.decision import new_correlation_id
from agent.policy.model import Policy
from agent.posture.model import CHECK_IDS
from verifier import evaluate
from verifier.console.service import Console
from verifier.db import Store

DAY = 86400.0
HOSTILE = "<script>alert(1)</script>\u202egnp.exe\x1b[31mRED\x1b]0;title\x07"


@dataclass(frozen=True)
class Spec:
    user: str
    statuses: dict[str, str]
    age: float  # seconds before "now"
    version: str = "0.1.0"
    department: str = "総務課"
    cert_days: float = 365.0
    evidence: dict[str, Any] | None = None


@dataclass
class Seeded:
    cids: dict[str, str] = field(default_factory=dict)  # user -> newest 判定ID
    fps: dict[str, str] = field(default_factory=dict)  # user -> certificate fingerprint


def report(statuses: dict[str, str], *, generated_at: dt.datetime) -> dict[str, Any]:
    """A `byod-agent check --json` report (docs/report-schema.md, schema 1); every check passes
    unless ``statuses`` says otherwise."""
    return {
        "schema": 1, "agent_version": "0.1.0",
        "generated_at": generated_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "host": {"os": "linux", "os_version": "Debian 12", "hostname": "home-pc",
                 "arch": "x86_64"},
        "compliant": not statuses,
        "checks": [{"id": c, "status": statuses.get(c, "pass"),
                    "summary": {"ja": "テスト", "en": "test"}, "summary_key": f"{c}.test",
                    "evidence": {"source": "test"}, "remediation": None, "duration_ms": 1}
                   for c in CHECK_IDS],
    }


def fleet_specs() -> list[Spec]:
    """12 devices; the expected figures are in tests/console/test_fleet.py."""
    out = []
    for i in range(12):
        st: dict[str, str] = {}
        age = 600.0
        if 5 <= i <= 7:
            st, age = {"screen_lock": "fail"}, 1200.0
        elif i in (8, 9):
            st, age = {"disk_encryption": "fail"}, 7200.0
        elif i == 10:
            st, age = {"antivirus": "fail", "firewall": "fail"}, 3 * DAY
        elif i == 11:
            age = 10 * DAY
        out.append(Spec(f"user{i:02d}", st, age, "0.1.0" if i < 10 else "0.0.9",
                        "総務課" if i < 6 else "税務課", 10.0 if i < 2 else 365.0,
                        {"source": HOSTILE} if i == 8 else None))
    return out


def record(store: Store, console: Console, policy: Policy, spec: Spec, at: float, *,
           fp: str) -> str:
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    doc = report(spec.statuses, generated_at=when)
    if spec.evidence:
        for c in doc["checks"]:
            if c["status"] != "pass":
                c["evidence"] = spec.evidence
    for c in doc["checks"]:
        if c["status"] != "pass":
            c["remediation"] = {"key": f"{c['id']}.linux" if c["id"] == "disk_encryption"
                                else f"{c['id']}.unknown"}
    doc["host"]["os"] = "linux"
    rep = evaluate.with_server_checks(evaluate.parse_report(doc), policy, spec.version)
    cid = new_correlation_id()
    decision = evaluate.decide_report(rep, policy, when, cid)
    checks = evaluate.decision_checks_json(rep, decision)
    store.record_attestation(
        at=at, user=spec.user, cert_fp=fp, policy_id=policy.id, policy_serial=policy.serial,
        agent_version=spec.version, target="office", allowed=decision.allowed,
        correlation_id=cid, checks=checks,
        refused_code=None if decision.allowed else "not_compliant",
        refused_detail=None if decision.allowed else "blocked")
    from verifier.console.ingest import extras_from_report

    os_name, keys = extras_from_report(doc)
    console.ingest.record(cid, cert_not_after=at + spec.cert_days * DAY, os_name=os_name,
                          remediation=keys)
    return cid


def seed(store: Store, console: Console, policy: Policy, now: float) -> Seeded:
    out = Seeded()
    for n, spec in enumerate(fleet_specs()):
        fp = f"{n:02d}" + "ab" * 31
        out.fps[spec.user] = fp
        if spec.user == "user00":  # some history: two older reports, a day and two days before
            for back in (2 * DAY, DAY):
                record(store, console, policy, Spec(spec.user, {}, 0), now - spec.age - back,
                       fp=fp)
        cert_days = spec.cert_days
        out.cids[spec.user] = record(store, console, policy,
                                     Spec(spec.user, spec.statuses, spec.age, spec.version,
                                          spec.department, cert_days, spec.evidence),
                                     now - spec.age, fp=fp)
    from verifier.console.queries import set_departments

    set_departments(console.engine, [(s.user, s.department) for s in fleet_specs()])
    return out
