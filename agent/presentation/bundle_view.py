"""What the help desk reads first, in the help desk's language: one view of a bundle's digest.

Shared by ``diag show`` (text and HTML, agent/diagnostics/render.py) and ``diag view``
(ui/diag_view.py): a summary (the decision, the checks that need attention, what the staff
member was told in Japanese, the policy and its serial, the integrity of the file), then the
folded details (evidence, connectivity, log lines). Every value is translated where it is one of
ours (status, outcome, redaction level, integrity, connection step, yes/no); names and evidence
values stay as they are. Every string that came from the bundle has passed through
agent.core.textsafe.field (one line, no control or bidi character) by the time it is in a view.

The digest itself is hostile input (render.digest keeps the bundle's values as they were): every
access here checks the type and falls back to "-".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.core import i18n, textsafe

_f = textsafe.field
STAFF_LANG = "ja"  # the staff UI the city ships is Japanese: what they were told, verbatim
MARKS = {"pass": "✔", "warn": "▲", "fail": "✖", "unknown": "?"}
_STATUSES = tuple(MARKS)
_OUTCOMES = ("ok", "off", "report", "warn", "block")
_CONN_STATUSES = ("ok", "refused", "failed", "timeout", "skipped")
MAX_EVIDENCE_LINES = 200
MAX_CHECKS = 100

# The reader's own sentences (agent/diagnostics/reader.py), matched to translate them. A name in
# them passed the reader's member-name rule, so it is short and plain.
_PROBLEMS = (
    (re.compile(r"(?P<name>.{1,250}): listed in the manifest but missing"), "missing"),
    (re.compile(r"(?P<name>.{1,250}): content does not match the manifest \(modified\)"),
     "modified"),
    (re.compile(r"(?P<name>.{1,250}): not listed in the manifest \(added\)"), "added"),
    (re.compile(r"(?P<name>.{1,250}): signature does not verify \((?P<detail>.{0,100})\)"),
     "signature"),
)
_SIGNER_PROBLEMS = (
    ("no city CA to check the signer against", "no_ca"),
    ("the signer is a CA certificate", "is_ca"),
    ("the signer certificate has no extended key usage", "no_eku"),
    ("the signer certificate is not a client", "not_client"),
    ("the signer does not chain to the city CA", "no_chain"),
)


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class CheckLine:
    check_id: str  # safe, for tests and tools
    status: str  # one of MARKS (anything else is shown as unknown)
    mark: str
    name: str  # the check's name in the view's language, or its id
    status_text: str
    outcome_text: str  # what the policy made of it ("blocks connecting", ...), "" when unknown
    summary: str  # the finding, in the view's language
    told: tuple[str, ...]  # what the staff member was shown, in Japanese
    fix_title: str
    fix_steps: tuple[str, ...]
    evidence: tuple[str, ...]  # "key: value", values as recorded (booleans translated)


@dataclass(frozen=True)
class BundleView:
    lang: str
    title: str
    integrity: str
    verified: bool
    decision: str  # the decision sentence in the view's language
    allowed: bool | None  # None: the bundle has no decision
    summary: str  # "6項目中5項目に対応が必要です"
    facts: tuple[Fact, ...]
    told: tuple[str, ...]  # the decision and its reasons as the staff member saw them (ja)
    attention: tuple[CheckLine, ...]
    fine: tuple[CheckLine, ...]
    connectivity: tuple[str, ...]
    logs: tuple[str, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)  # integrity problems, translated

    @property
    def checks(self) -> tuple[CheckLine, ...]:
        return self.attention + self.fine


def _t(key: str, lang: str, **params: object) -> str:
    return i18n.text(key, lang, **params)


def _known(key: str, lang: str) -> str | None:
    return i18n.catalogue(lang).get(key)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any, default: str = "-") -> str:
    if value is None or value == "":
        return default
    return _f(value, limit=400)


def _lang_text(value: Any, lang: str) -> str:
    """A {"ja": ..., "en": ...} pair from the bundle: the view's language, else the other."""
    d = _dict(value)
    for k in (lang, "en", "ja"):
        if isinstance(d.get(k), str) and d[k]:
            return _f(d[k])
    return ""


def yes_no(value: bool, lang: str) -> str:
    return _t("diag.value.yes" if value else "diag.value.no", lang)


def value_text(value: Any, lang: str) -> str:
    """One evidence value: ours translated (yes/no, none), the bundle's shown as recorded."""
    if isinstance(value, bool):
        return yes_no(value, lang)
    if value is None:
        return _t("diag.value.none", lang)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(value_text(v, lang) for v in value[:50]) or _t("diag.value.empty", lang)
    if isinstance(value, dict | list):
        return _f(json.dumps(value, ensure_ascii=False, default=str), limit=600)
    return _f(value, limit=600)


def evidence_lines(evidence: Any, lang: str, prefix: str = "", depth: int = 0) -> list[str]:
    """Nested evidence flattened to "a.b: value" lines (bounded in count and depth)."""
    out: list[str] = []
    if isinstance(evidence, dict) and depth < 6:
        for k, v in list(evidence.items())[:MAX_EVIDENCE_LINES]:
            key = f"{prefix}{_f(k, limit=80)}"
            if isinstance(v, dict) and v:
                out += evidence_lines(v, lang, key + ".", depth + 1)
            elif isinstance(v, list) and any(isinstance(x, dict) for x in v) and depth < 5:
                for i, item in enumerate(v[:20]):
                    out += evidence_lines(item, lang, f"{key}[{i}].", depth + 1)
            else:
                out.append(f"{key}: {value_text(v, lang)}")
            if len(out) >= MAX_EVIDENCE_LINES:
                break
    elif evidence is not None and evidence != {}:
        out.append(f"{prefix.rstrip('.') or '-'}: {value_text(evidence, lang)}"
                   if prefix else value_text(evidence, lang))
    return out[:MAX_EVIDENCE_LINES]


def status_of(value: Any) -> str:
    return value if isinstance(value, str) and value in _STATUSES else "unknown"


def check_name(check_id: str, lang: str) -> str:
    return _known(f"check.{check_id}", lang) or _f(check_id, limit=80)


def _problem(p: Any, lang: str) -> str:
    text = p if isinstance(p, str) else str(p)
    for pattern, kind in _PROBLEMS:
        m = pattern.fullmatch(text)
        if m:
            return _t(f"diag.problem.{kind}", lang, name=_f(m.group("name"), limit=250),
                      detail=_f(m.groupdict().get("detail") or "", limit=100))
    return _f(text, limit=300)


def signer_problem_text(problem: Any, lang: str) -> str:
    if not isinstance(problem, str) or not problem:
        return _t("diag.signer.unchecked", lang)
    for start, kind in _SIGNER_PROBLEMS:
        if problem.startswith(start):
            detail = problem.partition(": ")[2] if kind == "no_chain" else ""
            return _t(f"diag.signer.{kind}", lang, detail=_f(detail, limit=200))
    return _f(problem, limit=300)


def integrity(d: dict[str, Any], lang: str) -> str:
    """The integrity sentence (the reader's facts; the signer named only when trusted)."""
    v = _dict(d.get("verification"))
    problems = "; ".join(_problem(p, lang) for p in _list(v.get("problems"))[:20])
    if not v.get("hashes_ok"):
        return _t("diag.integrity.tampered", lang, problems=problems)
    if not v.get("signed"):
        return _t("diag.integrity.unsigned", lang)
    if not v.get("signature_ok"):
        return _t("diag.integrity.bad_signature", lang, problems=problems)
    if not v.get("signer_trusted") or v.get("signer") == "unknown key" or not v.get("signer"):
        return _t("diag.integrity.unknown_key", lang,
                  why=signer_problem_text(v.get("signer_problem"), lang))
    return _t("diag.integrity.verified", lang, signer=_f(v.get("signer"), limit=400))


def _outcome_text(outcome: Any, lang: str) -> str:
    if isinstance(outcome, str) and outcome in _OUTCOMES:
        return _t(f"diag.outcome.{outcome}", lang)
    return ""


def _fix(c: dict[str, Any], lang: str) -> tuple[str, tuple[str, ...]]:
    fix = _dict(c.get("fix"))
    part = _dict(fix.get(lang)) or _dict(fix.get("en")) or _dict(fix.get("ja"))
    title = part.get("title") if isinstance(part.get("title"), str) else c.get("remediation")
    steps = _list(part.get("steps"))
    return (_f(title) if isinstance(title, str) else "",
            tuple(_f(s) for s in steps[:30] if isinstance(s, str)))


def _line(c: dict[str, Any], verdict: dict[str, Any], lang: str) -> CheckLine:
    cid = str(c["id"]) if isinstance(c.get("id"), str) else "-"
    status = status_of(c.get("status"))
    summary = _dict(c.get("summary"))
    # In Japanese the finding is already what the staff member read; add the policy's sentence.
    # In English the Japanese finding itself (the decision's sentences are listed once, apart).
    told: list[str] = []
    reason = _dict(verdict.get("reason"))
    if lang == STAFF_LANG and isinstance(reason.get(STAFF_LANG), str):
        told.append(_f(reason[STAFF_LANG]))
    elif lang != STAFF_LANG and isinstance(summary.get(STAFF_LANG), str):
        told.append(_f(summary[STAFF_LANG]))
    title, steps = _fix(c, lang)
    return CheckLine(
        check_id=_f(cid, limit=80), status=status, mark=MARKS[status],
        name=check_name(cid, lang), status_text=_t(f"status.{status}", lang),
        outcome_text=_outcome_text(verdict.get("outcome"), lang),
        summary=_lang_text(summary, lang), told=tuple(told), fix_title=title, fix_steps=steps,
        evidence=tuple(evidence_lines(c.get("evidence"), lang)))


_RANK = {"block": 0, "warn": 1, "report": 2}
_STATUS_RANK = {"fail": 0, "unknown": 1, "warn": 2}


def _policy_fact(d: dict[str, Any], decision: dict[str, Any], lang: str) -> str:
    policy = _dict(d.get("policy"))
    if policy.get("status") == "refused":
        return _t("diag.view.policy_refused", lang,
                  reason=_lang_text(policy.get("reason"), lang) or "-")
    pid = decision.get("policy_id", policy.get("id"))
    serial = decision.get("policy_serial", policy.get("serial"))
    if pid is None and serial is None:
        return _t("diag.view.policy_none", lang)
    text = _t("diag.view.policy_value", lang, id=_str(pid), serial=_str(serial))
    if policy.get("demo") is True:
        text += " " + _t("diag.view.policy_demo", lang)
    expires = policy.get("expires")
    if isinstance(expires, str) and expires:
        text += " " + _t("diag.view.policy_expires", lang, date=_f(expires[:10], limit=10))
    return text


def _step_text(name: str, step: Any, lang: str) -> str:
    label = _t(f"diag.conn.{name}", lang)
    if not isinstance(step, dict):
        return f"{label} ?"
    status = step.get("status")
    word = (_t(f"diag.conn.status.{status}", lang) if status in _CONN_STATUSES
            else _str(status, "?"))
    parts = [f"{label} {word}"]
    if isinstance(step.get("ms"), int) and not isinstance(step.get("ms"), bool):
        parts.append(f"{step['ms']} ms")
    extra = step.get("addresses") or step.get("address") or step.get("detail")
    if extra:
        shown = ", ".join(_f(x, limit=200) for x in extra[:10]) if isinstance(extra, list) \
            else _f(extra, limit=300)
        parts.append(f"({shown})")
    return " ".join(parts)


def connectivity(targets: Any, lang: str) -> list[str]:
    if not isinstance(targets, list):
        return []
    out = []
    for t in targets[:50]:
        if not isinstance(t, dict):
            continue
        tls = t.get("tls")
        cert = "with" if isinstance(tls, dict) and tls.get("client_certificate") is True \
            else "without"
        steps = "; ".join(_step_text(n, t.get(n), lang) for n in ("dns", "tcp", "tls"))
        out.append(_f(f"{_str(t.get('target'))} -> {_str(t.get('endpoint'))}: {steps} "
                      f"[{_t('diag.conn.' + cert + '_cert', lang)}]", limit=900))
    return out


def build(d: dict[str, Any], lang: str) -> BundleView:
    """The help-desk view of one digest (agent.diagnostics.render.digest) in ``lang``."""
    lang = lang if lang in i18n.LANGS else "en"
    decision = _dict(d.get("decision"))
    verdicts = {c.get("id"): c for c in _list(decision.get("checks")) if isinstance(c, dict)}
    lines = [_line(c, _dict(verdicts.get(c.get("id"))), lang)
             for c in _list(d.get("checks"))[:MAX_CHECKS] if isinstance(c, dict)]
    raw_outcome = {str(k): _dict(v).get("outcome") for k, v in verdicts.items()}

    def rank(line: CheckLine) -> tuple[int, int]:
        return (_RANK.get(str(raw_outcome.get(line.check_id)), 3),
                _STATUS_RANK.get(line.status, 3))

    attention = tuple(sorted((x for x in lines if x.status != "pass"), key=rank))
    fine = tuple(x for x in lines if x.status == "pass")
    allowed = decision.get("allowed") if isinstance(decision.get("allowed"), bool) else None
    if allowed is None:
        compliant = d.get("compliant")
        headline = _t("diag.view.no_decision", lang) + (
            " " + _t("diag.view.compliant", lang, value=yes_no(compliant, lang))
            if isinstance(compliant, bool) else "")
    else:
        headline = _t("decision.allowed" if allowed else "decision.not_allowed", lang)
    told = [_lang_text(decision.get("summary"), STAFF_LANG)] if decision.get("summary") else []
    reasons = _list(decision.get("reasons"))
    told += [_f(_dict(r).get(STAFF_LANG)) for r in reasons[:MAX_CHECKS]
             if isinstance(_dict(r).get(STAFF_LANG), str)]
    total = len(lines)
    if not total:
        summary = _t("diag.view.no_checks", lang)
    elif attention:
        summary = _t("ui.status.summary", lang, total=total, failing=len(attention))
    else:
        summary = _t("ui.status.summary_ok", lang, total=total)
    level = d.get("redaction_level")
    host = _dict(d.get("host"))
    os_text = " ".join(_f(host[k], limit=100) for k in ("os", "os_version", "arch")
                       if isinstance(host.get(k), str) and host.get(k))
    facts = (
        Fact(_t("diag.view.fact.policy", lang), _policy_fact(d, decision, lang)),
        Fact(_t("diag.view.fact.correlation", lang), _str(d.get("correlation_id"))),
        Fact(_t("diag.view.fact.ticket", lang), _str(d.get("ticket"))),
        Fact(_t("diag.view.fact.created", lang), _str(d.get("created_at"))),
        Fact(_t("diag.view.fact.agent", lang), _str(d.get("agent_version"))),
        Fact(_t("diag.view.fact.host", lang), os_text or "-"),
        Fact(_t("diag.view.fact.level", lang),
             _t(f"diag.level.{level}", lang) if level in ("standard", "strict") else _str(level)),
    )
    v = _dict(d.get("verification"))
    problems = _list(v.get("problems"))
    targets = d.get("connectivity_targets")
    return BundleView(
        lang=lang, title=_t("diag.view.title", lang, bundle_id=_str(d.get("bundle_id"))),
        integrity=integrity(d, lang), verified=v.get("verified") is True,
        decision=headline, allowed=allowed, summary=summary, facts=facts, told=tuple(told),
        attention=attention, fine=fine,
        connectivity=tuple(connectivity(targets, lang) if targets is not None
                           else [_f(x, limit=900) for x in _list(d.get("connectivity"))]),
        logs=tuple(_f(x, limit=400) for x in _list(d.get("log_excerpts"))[:200]),
        problems=tuple(_problem(p, lang) for p in problems[:20]))
