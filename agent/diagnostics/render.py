"""What the help desk reads: a text or HTML digest of a verified bundle (every field escaped).

Text: every value from the bundle passes through agent.core.textsafe (one line per field: no
ESC, CR, newline, BEL or bidi override reaches the terminal), so no field can print a line that
looks like ours ("Integrity: verified"). HTML: html.escape on top of the same.
"""

from __future__ import annotations

import html
from typing import Any

from agent.core import i18n, textsafe
from agent.diagnostics.reader import Bundle
from agent.presentation import bundle_view

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
    policy = bundle.json("policy.json") if "policy.json" in bundle.files else None
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
            "fix": {k: rem[k] for k in ("ja", "en") if isinstance(rem.get(k), dict)}
            if rem else None,
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
        "policy": policy if isinstance(policy, dict) else None,
        "connectivity": connectivity_lines(bundle.json("connectivity.json")),
        "connectivity_targets": _targets(bundle.json("connectivity.json")),
        "log_excerpts": log_excerpts(bundle),
    }


def _targets(data: Any) -> list[Any] | None:
    targets = data.get("targets") if isinstance(data, dict) else None
    return targets[:50] if isinstance(targets, list) else None


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


def integrity_line(d: dict[str, Any], lang: str = "en") -> str:
    return bundle_view.integrity(d, lang)


def _section(title: str, body: list[str]) -> list[str]:
    return ["", title, *[f"  {x}" for x in body]] if body else []


def as_text(d: dict[str, Any], lang: str = "en") -> str:
    """The summary first (integrity, decision, policy, what needs attention and what the staff
    member was told), then the details: every check's evidence, connectivity, log lines."""
    v = bundle_view.build(d, lang)
    t = lang
    lines = [v.title, i18n.text("diag.view.integrity", t, line=v.integrity), v.decision]
    lines += [f"{fact.label}: {fact.value}" for fact in v.facts]
    lines += ["", v.summary]
    for c in v.attention:
        outcome = f"  ({c.outcome_text})" if c.outcome_text else ""
        lines.append(f"  {c.mark} {c.status_text}  {c.name}{outcome}")
        if c.summary:
            lines.append(f"      {c.summary}")
        lines += [f"      {i18n.text('diag.view.told_line', t, text=x)}" for x in c.told]
        if c.fix_title:
            lines.append(f"      {i18n.text('diag.view.fix_line', t, text=c.fix_title)}")
    if v.fine:
        lines.append(i18n.text("diag.view.fine_line", t, count=len(v.fine),
                               names=", ".join(c.name for c in v.fine)))
    if v.told and t != bundle_view.STAFF_LANG:
        lines += _section(i18n.text("diag.view.told", t), list(v.told))
    details: list[str] = []
    for c in v.checks:
        details.append(f"[{c.mark} {c.name}] {c.summary}")
        details += [f"    {x}" for x in c.evidence]
        details += [f"    {i + 1}. {x}" for i, x in enumerate(c.fix_steps) if c.status != "pass"]
    lines += _section(i18n.text("diag.view.evidence", t), details)
    lines += _section(i18n.text("diag.view.connectivity", t), list(v.connectivity))
    lines += _section(i18n.text("diag.view.logs", t), list(v.logs))
    # Every line is one of ours around a textsafe.field value: no bundle text adds a line.
    return "\n".join(textsafe.field(x, limit=4000) for x in lines)


def _e(value: object) -> str:
    return html.escape(textsafe.block(value), quote=True)


def as_html(d: dict[str, Any], lang: str = "en") -> str:
    """The same summary as the text, the details folded in <details> (no script: CSP)."""
    v = bundle_view.build(d, lang)
    t = lang
    rows = []
    for c in v.attention:
        told = "".join(f"<div class='told'>{_e(i18n.text('diag.view.told_line', t, text=x))}"
                       "</div>" for x in c.told)
        fix = (f"<div>{_e(i18n.text('diag.view.fix_line', t, text=c.fix_title))}</div>"
               if c.fix_title else "")
        rows.append(f"<tr class='{_e(c.status)}'><td>{_e(c.mark)} {_e(c.status_text)}</td>"
                    f"<td>{_e(c.name)}</td><td>{_e(c.outcome_text)}</td>"
                    f"<td>{_e(c.summary)}{told}{fix}</td></tr>")
    facts = "".join(f"<tr><th>{_e(f.label)}</th><td>{_e(f.value)}</td></tr>" for f in v.facts)
    details = []
    for c in v.checks:
        steps = "".join(f"<li>{_e(x)}</li>" for x in c.fix_steps) if c.status != "pass" else ""
        details.append(
            f"<details><summary>{_e(c.mark)} {_e(c.name)}: {_e(c.summary)}</summary>"
            f"<pre>{_e(chr(10).join(c.evidence))}</pre>"
            + (f"<ol>{steps}</ol>" if steps else "") + "</details>")
    fine = (f"<p>{_e(i18n.text('diag.view.fine_line', t, count=len(v.fine), names=', '.join(c.name for c in v.fine)))}</p>"  # noqa: E501
            if v.fine else "")
    told = ("<h2>" + _e(i18n.text("diag.view.told", t)) + "</h2><ul>"
            + "".join(f"<li lang='ja'>{_e(x)}</li>" for x in v.told) + "</ul>") if v.told else ""
    folded = [(i18n.text("diag.view.connectivity", t), v.connectivity),
              (i18n.text("diag.view.logs", t), v.logs)]
    more = "".join(f"<details><summary>{_e(title)} ({len(body)})</summary>"
                   f"<pre>{_e(chr(10).join(body))}</pre></details>"
                   for title, body in folded if body)
    bad = "" if v.verified else " class='bad'"
    return (
        f"<!doctype html><html lang='{_e(t)}'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>{_e(v.title)}</title><style>"
        "body{font-family:sans-serif;max-width:70em}td,th{border:1px solid #999;padding:4px;"
        "vertical-align:top;text-align:left}.fail,.unknown{background:#fdd}.warn{background:#ffd}"
        ".bad{color:#a00000;font-weight:bold}.told{color:#444}pre{white-space:pre-wrap}"
        "</style></head><body>"
        f"<h1>{_e(v.title)}</h1>"
        f"<p{bad}>{_e(i18n.text('diag.view.integrity', t, line=v.integrity))}</p>"
        f"<p><b>{_e(v.decision)}</b></p><table>{facts}</table>"
        f"<h2>{_e(v.summary)}</h2>"
        f"<table><tr><th>{_e(i18n.text('diag.view.col.status', t))}</th>"
        f"<th>{_e(i18n.text('diag.view.col.check', t))}</th>"
        f"<th>{_e(i18n.text('diag.view.col.outcome', t))}</th>"
        f"<th>{_e(i18n.text('diag.view.col.summary', t))}</th></tr>{''.join(rows)}</table>"
        f"{fine}{told}<h2>{_e(i18n.text('diag.view.evidence', t))}</h2>{''.join(details)}"
        f"{more}</body></html>\n")
