"""What the help desk reads: a text or HTML digest of a verified bundle (every field escaped).

Text: every value from the bundle passes through agent.core.textsafe (one line per field: no
ESC, CR, newline, BEL or bidi override reaches the terminal), so no field can print a line that
looks like ours ("Integrity: verified"). HTML: html.escape on top of the same.
"""

from __future__ import annotations

import html
import json
from typing import Any

from agent.core import textsafe
from agent.diagnostics.reader import UNKNOWN_KEY, Bundle

_f = textsafe.field

_LOG_MARKERS = ("ERROR", "CRITICAL", "WARNING", "Traceback", '"level": "error"',
                '"level": "warning"', "fail")


def log_excerpts(bundle: Bundle, context: int = 2, limit: int = 60) -> list[str]:
    """Lines around errors and failures in the bundled logs."""
    out: list[str] = []
    for name in sorted(n for n in bundle.files if n.startswith("logs/")):
        lines = bundle.files[name].decode("utf-8", errors="replace").splitlines()
        keep: set[int] = set()
        for i, line in enumerate(lines):
            if any(m in line for m in _LOG_MARKERS):
                keep.update(range(max(0, i - context), min(len(lines), i + context + 1)))
        for i in sorted(keep):
            out.append(f"{name}:{i + 1}: {_f(lines[i], limit=300)}")
            if len(out) >= limit:
                return out
    return out


def digest(bundle: Bundle) -> dict[str, Any]:
    posture = bundle.json("posture.json") or {}
    decision = bundle.json("decision.json")
    v = bundle.verification
    checks = []
    for c in posture.get("checks", []) if isinstance(posture, dict) else []:
        if not isinstance(c, dict):
            continue
        rem = c.get("remediation") if isinstance(c.get("remediation"), dict) else None
        checks.append({
            "id": str(c.get("id")), "status": str(c.get("status")),
            "summary": c.get("summary"), "evidence": c.get("evidence"),
            "remediation": rem.get("en", {}).get("title") if rem else None,
        })
    m = bundle.manifest
    return {
        "bundle_id": m.get("bundle_id"), "created_at": m.get("created_at"),
        "agent_version": m.get("agent_version"), "redaction_level": m.get("redaction_level"),
        "ticket": m.get("ticket"),
        "verification": {"verified": v.verified, "hashes_ok": v.hashes_ok, "signed": v.signed,
                         "signature_ok": v.signature_ok, "signer": v.signer,
                         "signer_trusted": v.signer_trusted, "signer_problem": v.signer_problem,
                         "problems": v.problems},
        "host": posture.get("host") if isinstance(posture, dict) else None,
        "compliant": posture.get("compliant") if isinstance(posture, dict) else None,
        "decision": decision,
        "correlation_id": decision.get("correlation_id") if isinstance(decision, dict) else None,
        "checks": checks,
        "connectivity": connectivity_lines(bundle.json("connectivity.json")),
        "log_excerpts": log_excerpts(bundle),
    }


def _step(name: str, step: Any) -> str:
    if not isinstance(step, dict):
        return f"{name} ?"
    parts = [f"{name} {step.get('status', '?')}"]
    if isinstance(step.get("ms"), int):
        parts.append(f"{step['ms']} ms")
    extra = step.get("addresses") or step.get("address") or step.get("detail")
    if extra:
        parts.append(f"({', '.join(map(str, extra)) if isinstance(extra, list) else extra})")
    return " ".join(parts)


def connectivity_lines(data: Any) -> list[str]:
    """One line per target: DNS, TCP and TLS with their results (hostile input tolerated)."""
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, list):
        return []
    lines = []
    for t in targets[:50]:
        if not isinstance(t, dict):
            continue
        tls = t.get("tls")
        cert = "with" if isinstance(tls, dict) and tls.get("client_certificate") else "without"
        steps = "; ".join(_step(n, t.get(n)) for n in ("dns", "tcp", "tls"))
        lines.append(_f(f"{t.get('target')} -> {t.get('endpoint')}: {steps} "
                        f"[{cert} client certificate]", limit=600))
    return lines


def integrity_line(d: dict[str, Any]) -> str:
    return _signature_line(d)


def _signature_line(d: dict[str, Any]) -> str:
    v = d["verification"]
    problems = "; ".join(_f(p, limit=300) for p in v["problems"])
    if not v["hashes_ok"]:
        return "TAMPERED: " + problems
    if not v["signed"]:
        return "unsigned (file hashes match the manifest)"
    if not v["signature_ok"]:
        return "SIGNATURE INVALID: " + problems
    if not v.get("signer_trusted") or v.get("signer") == UNKNOWN_KEY:
        why = v.get("signer_problem") or "not checked against the city CA"
        return f"NOT VERIFIED: signed by an unknown key ({_f(why, limit=300)})"
    return f"verified, signed by {_f(v['signer'], limit=400)}"


def as_text(d: dict[str, Any]) -> str:
    lines = [
        f"Bundle {_f(d['bundle_id'])}  created {_f(d['created_at'])}  "
        f"agent {_f(d['agent_version'])}",
        f"Integrity: {_signature_line(d)}",
        f"Ticket: {_f(d['ticket'] or '-')}   Correlation ID: {_f(d['correlation_id'] or '-')}",
        f"Redaction: {_f(d['redaction_level'])}   Compliant: {_f(d['compliant'])}",
        "",
    ]
    for c in d["checks"]:
        summary = c["summary"] if isinstance(c["summary"], dict) else {}
        lines.append(f"[{_f(c['status']):>7}] {_f(c['id'])}: {_f(summary.get('en', ''))}")
        if summary.get("ja"):
            lines.append(f"          {_f(summary['ja'])}")
        if c["status"] != "pass":
            lines.append("          evidence: "
                         + _f(json.dumps(c['evidence'], ensure_ascii=False)))
            if c["remediation"]:
                lines.append(f"          fix: {_f(c['remediation'])}")
    if d["connectivity"]:
        lines += ["", "Connectivity:"] + [f"  {_f(x)}" for x in d["connectivity"]]
    if d["log_excerpts"]:
        lines += ["", "Log lines around errors:"] + [f"  {_f(x)}" for x in d["log_excerpts"]]
    return "\n".join(lines)


def _e(value: object) -> str:
    return html.escape(textsafe.block(value), quote=True)


def as_html(d: dict[str, Any]) -> str:
    rows = []
    for c in d["checks"]:
        summary = c["summary"] if isinstance(c["summary"], dict) else {}
        rows.append(
            f"<tr class='{_e(c['status'])}'><td>{_e(c['status'])}</td><td>{_e(c['id'])}</td>"
            f"<td>{_e(summary.get('ja', ''))}<br>{_e(summary.get('en', ''))}</td>"
            f"<td><pre>{_e(json.dumps(c['evidence'], ensure_ascii=False, indent=1))}</pre></td>"
            f"<td>{_e(c['remediation'] or '')}</td></tr>")
    logs = "\n".join(_e(x) for x in d["log_excerpts"])
    conn = "\n".join(_e(x) for x in d["connectivity"])
    return (
        "<!doctype html><html lang='ja'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>BYOD diagnostic {_e(d['bundle_id'])}</title><style>"
        "body{font-family:sans-serif}td{border:1px solid #999;padding:4px;vertical-align:top}"
        ".fail,.unknown{background:#fdd}.warn{background:#ffd}</style></head><body>"
        f"<h1>Bundle {_e(d['bundle_id'])}</h1>"
        f"<p>Created {_e(d['created_at'])}, agent {_e(d['agent_version'])}, "
        f"ticket {_e(d['ticket'] or '-')}, correlation ID {_e(d['correlation_id'] or '-')}</p>"
        f"<p><b>Integrity:</b> {_e(_signature_line(d))}</p>"
        "<table><tr><th>status</th><th>check</th><th>summary</th><th>evidence</th>"
        f"<th>fix</th></tr>{''.join(rows)}</table>"
        f"<h2>Connectivity</h2><pre>{conn}</pre>"
        f"<h2>Log lines around errors</h2><pre>{logs}</pre></body></html>\n")
