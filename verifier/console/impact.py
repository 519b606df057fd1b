"""Impact preview (shadow mode): the fleet's newest reports replayed through a draft policy.

The same code as the agent and the verifier decides (agent.policy.decision.decide through
verifier.evaluate, with the verifier's own agent-version check); nothing is stored or enforced.
A stored report is rebuilt from what the verifier kept per check: id, raw status and evidence,
which is all ``decide`` reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from agent.core.messages import msg
from agent.policy.decision import Outcome
from agent.policy.errors import PolicyRefused
from agent.policy.model import Policy
from agent.policy.schema import MAX_POLICY_BYTES, parse_policy
from agent.policy.signing import load_trust_anchors, verify
from agent.posture.model import CheckResult, HostInfo, Report, Status
from verifier import evaluate
from verifier.console import queries

__all__ = ["MAX_POLICY_BYTES", "Draft", "Impact", "parse_draft", "preview"]
_DECISION_LOG = logging.getLogger("agent.policy.decision")


@dataclass(frozen=True)
class Draft:
    policy: Policy
    signed_by: str | None  # the trust anchor's key id; None: not signed (or no signature sent)
    signature_problem: str | None  # the refusal text when a signature was sent and failed


@dataclass
class Impact:
    total: int = 0  # devices with an evaluated report
    would_block: int = 0
    would_warn: int = 0
    no_report: int = 0
    by_check: Counter[str] = field(default_factory=Counter)
    by_department: dict[str, list[int]] = field(default_factory=dict)  # dept -> [blocked, total]

    def department_rows(self) -> list[tuple[str, int, int]]:
        return sorted(((d, b, t) for d, (b, t) in self.by_department.items()),
                      key=lambda x: (-x[1], x[0]))


def parse_draft(data: bytes, sig: bytes | None, trust_dir: Path) -> Draft:
    """A draft may be unsigned (IT signs after the preview); a signature sent must verify."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyRefused(msg("policy.refused.too_large", size=len(data),
                                limit=MAX_POLICY_BYTES), f"{len(data)} bytes")
    policy = parse_policy(data)
    if not sig:
        return Draft(policy, None, None)
    try:
        anchor = verify(data, sig, load_trust_anchors(trust_dir))
    except PolicyRefused as exc:
        return Draft(policy, None, exc.detail[:200])
    return Draft(policy, anchor.key_id, None)


class _OnlyOtherThreads(logging.Filter):
    """Drops the per-decision log lines of the preview's own thread (10,000 of them) while the
    verifier's real decisions in other threads keep logging."""

    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.ident


@contextmanager
def _quiet() -> Iterator[None]:
    f = _OnlyOtherThreads()
    _DECISION_LOG.addFilter(f)
    try:
        yield
    finally:
        _DECISION_LOG.removeFilter(f)


def rebuild_report(checks: list[dict[str, object]], generated_at: str) -> Report:
    out = []
    for c in checks:
        try:
            status = Status(str(c.get("status")))
        except ValueError:
            status = Status.UNKNOWN  # fail closed, as the verifier does
        ev = c.get("evidence")
        out.append(CheckResult(str(c.get("id"))[:64], status, msg("status.unknown"),
                               ev if isinstance(ev, dict) else {}, None, 0))
    return Report(generated_at, HostInfo("", "", "", ""), tuple(out))


def preview(engine: Engine, policy: Policy, now: dt.datetime) -> Impact:
    impact = Impact(no_report=queries.devices_without_report(engine))
    stamp = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    with _quiet():
        for rep in queries.newest_reports(engine):
            report = evaluate.with_server_checks(rebuild_report(rep.checks, stamp), policy,
                                                 rep.agent_version or "")
            decision = evaluate.decide_report(report, policy, now, "PREVIEW0")
            impact.total += 1
            dept = rep.department or ""
            row = impact.by_department.setdefault(dept, [0, 0])
            row[1] += 1
            if not decision.allowed:
                impact.would_block += 1
                row[0] += 1
                for d in decision.checks:
                    if d.outcome is Outcome.BLOCK:
                        impact.by_check[d.id] += 1
            elif any(d.outcome is Outcome.WARN for d in decision.checks):
                impact.would_warn += 1
    return impact
