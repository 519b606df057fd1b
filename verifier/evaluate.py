"""Re-evaluation on the server with the client's own code (agent/policy), never its verdict.

Every import from ``agent`` the verifier needs is here, so the agent's layout can move without
the verifier's modules noticing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.core import i18n
from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.policy.agent_version import check_version
from agent.policy.decision import Decision, decide, reasons_both, render_reason
from agent.policy.errors import PolicyRefused
from agent.policy.loader import read_pair, verify_policy
from agent.policy.model import Policy
from agent.policy.signing import load_trust_anchors
from agent.posture.model import CHECK_IDS, CheckResult, Finding, HostInfo, Report, Status

MAX_CHECKS = 64
MAX_EVIDENCE_CHARS = 16 * 1024

__all__ = ["Decision", "LoadedServerPolicy", "PolicyRefused", "ReportError", "decide_report",
           "decision_checks_json", "load_server_policy", "parse_report", "reasons_both",
           "with_server_checks"]


class ReportError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class LoadedServerPolicy:
    policy: Policy
    key_id: str
    path: Path


def load_server_policy(policy_file: Path, trust_dir: Path, now: dt.datetime) -> LoadedServerPolicy:
    """The verifier's own copy of the signed policy, through the agent's loader (same checks)."""
    data, sig = read_pair(policy_file)
    policy, anchor = verify_policy(data, sig, load_trust_anchors(trust_dir), now=now)
    return LoadedServerPolicy(policy, anchor.key_id, policy_file)


def parse_instant(text: object) -> dt.datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise ReportError("bad_report", "generated_at must be an ISO-8601 string")
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError("bad_report", "generated_at is not ISO-8601") from None
    if t.tzinfo is None:
        raise ReportError("bad_report", "generated_at has no time zone")
    return t.astimezone(dt.UTC)


def parse_report(doc: Mapping[str, Any]) -> Report:
    """`byod-agent check --json` -> Report. Only ids and statuses matter for the decision; the
    client's ``compliant`` and ``decision`` are ignored. A check the report lacks is unknown."""
    if doc.get("schema") != 1:
        raise ReportError("bad_report", "report schema must be 1")
    generated = parse_instant(doc.get("generated_at"))
    host = doc.get("host")
    if not isinstance(host, dict):
        raise ReportError("bad_report", "host must be an object")
    info = HostInfo(*(str(host.get(k, ""))[:200] for k in ("os", "os_version", "hostname", "arch")))
    raw = doc.get("checks")
    if not isinstance(raw, list) or len(raw) > MAX_CHECKS:
        raise ReportError("bad_report", f"checks must be a list of at most {MAX_CHECKS}")
    checks: list[CheckResult] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise ReportError("bad_report", "a check is not an object")
        cid, status = item.get("id"), item.get("status")
        if not isinstance(cid, str) or not 0 < len(cid) <= 64:
            raise ReportError("bad_report", "check id must be a short string")
        if cid in seen:
            raise ReportError("bad_report", f"check {cid} appears twice")
        seen.add(cid)
        try:
            st = Status(str(status))
        except ValueError:
            raise ReportError("bad_report", f"check {cid}: unknown status") from None
        evidence = item.get("evidence")
        key = item.get("summary_key")
        checks.append(CheckResult(cid, st, msg(key if isinstance(key, str) else "status.unknown"),
                                  evidence if isinstance(evidence, dict) else {}, None, 0))
    for cid in CHECK_IDS:  # fail closed: what the report does not say is unknown
        if cid not in seen:
            checks.append(CheckResult(cid, Status.UNKNOWN, msg("status.unknown"),
                                      {"verifier": "missing from the report"}, None, 0))
    iso = generated.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Report(iso, info, tuple(checks))


def with_server_checks(report: Report, policy: Policy, agent_version: str) -> Report:
    """Checks the server can answer itself replace the client's answer: the agent version."""
    if policy.agent_min_version is None or "agent_version" not in policy.rules:
        return report
    try:
        finding = check_version(agent_version, policy.agent_min_version)
    except ParseError:
        finding = Finding(Status.UNKNOWN, msg("status.unknown"), {"agent_version": "unreadable"})
    own = CheckResult("agent_version", finding.status, finding.summary, finding.evidence,
                      finding.remediation, 0)
    others = tuple(c for c in report.checks if c.id != "agent_version")
    return Report(report.generated_at, report.host, (*others, own))


def decide_report(report: Report, policy: Policy, now: dt.datetime,
                  correlation_id: str) -> Decision:
    return decide(report, policy, now, correlation_id)


def decision_checks_json(report: Report, decision: Decision) -> list[dict[str, Any]]:
    """What is stored per check: raw status, the policy's outcome, reason (ja/en), evidence."""
    evidence = {c.id: c.evidence for c in report.checks}
    out = []
    for d in decision.checks:
        ev = evidence.get(d.id, {})
        text = _bounded_json(ev)
        out.append({"id": d.id, "status": d.status.value, "outcome": d.outcome.value,
                    "reason": ({lang: render_reason(d.reason, lang) for lang in i18n.LANGS}
                               if d.reason else None),
                    "evidence": ev if text is not None else {"truncated": True}})
    return out


def _bounded_json(obj: object) -> str | None:
    try:
        text = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= MAX_EVIDENCE_CHARS else None
