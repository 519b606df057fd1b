"""Turn a posture report into the JSON contract and the human table."""

from __future__ import annotations

import unicodedata
from typing import Any

from agent import __version__
from agent.core import i18n, textsafe
from agent.policy.decision import Decision, decision_lines
from agent.posture.model import CheckResult, Report, Status
from agent.presentation import remediation

SCHEMA_VERSION = 1
STATUS_MARK = {Status.PASS: "OK", Status.WARN: "!!", Status.FAIL: "NG", Status.UNKNOWN: "??"}


def check_to_json(c: CheckResult, os_name: str) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": c.status.value,
        "summary": i18n.both(c.summary),
        "summary_key": c.summary.key,
        "evidence": c.evidence,
        "remediation": remediation.describe(c.remediation, os_name),
        "duration_ms": c.duration_ms,
    }


def report_to_json(report: Report) -> dict[str, Any]:
    h = report.host
    return {
        "schema": SCHEMA_VERSION,
        "agent_version": __version__,
        "generated_at": report.generated_at,
        "host": {"os": h.os, "os_version": h.os_version, "hostname": h.hostname, "arch": h.arch},
        "compliant": report.compliant,
        "checks": [check_to_json(c, h.os) for c in report.checks],
    }


def display_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def pad(s: str, width: int) -> str:
    return s + " " * max(0, width - display_width(s))


def render_table(report: Report, lang: str, decision: Decision | None = None,
                 demo_policy: bool = False) -> str:
    rows = []
    for c in report.checks:
        mark = f"[{STATUS_MARK[c.status]}] {i18n.text('status.' + c.status.value, lang)}"
        rows.append((mark, i18n.text(f"check.{c.id}", lang), i18n.render(c.summary, lang)))
    w0 = max((display_width(r[0]) for r in rows), default=0)
    w1 = max((display_width(r[1]) for r in rows), default=0)
    lines = [i18n.text("report.title", lang), ""]
    lines += [f"{pad(a, w0)}  {pad(b, w1)}  {s}" for a, b, s in rows]
    lines.append("")
    if decision is not None:  # the signed policy's verdict replaces the raw one
        lines += decision_lines(decision, lang, demo=demo_policy)
    else:
        verdict = "report.compliant" if report.compliant else "report.not_compliant"
        lines.append(i18n.text(verdict, lang))
    fixes = [(c, c.remediation) for c in report.checks
             if c.remediation and c.status is not Status.PASS]
    if fixes:
        lines += ["", i18n.text("report.how_to_fix", lang)]
        for c, key in fixes:
            lines.append("")
            lines.append(f"■ {i18n.text(f'check.{c.id}', lang)}: {remediation.title(key, lang)}")
            lines += [f"  {n}. {step}" for n, step in enumerate(remediation.steps(key, lang), 1)]
            uri = remediation.settings_uri(key, report.host.os)
            if uri:
                lines.append("  " + i18n.text("report.open_settings", lang, uri=uri))
    # Summaries carry outside text (product names, policy names): no control characters.
    return textsafe.block("\n".join(lines), limit=1 << 20)
