"""The tray's most recent evaluation, kept so ``diag export`` can reuse it (issue 20 item 3).

The evaluation worker (``byod-agent evaluate --wire``) saves the posture report and the policy
decision it just made to ``<state dir>/last-evaluation.json`` (0600, written atomically); the
export (agent/diagnostics/export.py) reads it instead of running the checks again when it is at
most ``MAX_AGE`` old, was made by this agent version and under the very policy now in force (same
id, serial and SHA-256). Anything else (missing, older, from the future, another policy, a file
that does not parse or has the wrong shape) is ``None``, and the export evaluates: the cache can
only save time, never change what a bundle says about the policy in force.

What is in the file is what a bundle carries before redaction: check statuses, their evidence,
the decision. No secret (key, password, token) is ever part of a report or a decision.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import agent
from agent.core import nofollow, paths
from agent.core.fsutil import atomic_write
from agent.core.messages import Message
from agent.core.status import Status
from agent.posture.model import CHECK_IDS, CheckResult, HostInfo, Report

if TYPE_CHECKING:
    from agent.policy.evaluate import Evaluation

log = logging.getLogger(__name__)
SCHEMA = 1
FILE_NAME = "last-evaluation.json"
MAX_AGE = timedelta(minutes=5)
FUTURE_SLACK = timedelta(seconds=30)  # a clock stepped back further than this: not trusted
MAX_BYTES = 1024 * 1024  # bound the read: a real one is a few KiB


@dataclass(frozen=True)
class PolicyKey:
    """Which policy made a decision: the export reuses only a decision of the policy in force."""

    id: str
    serial: int
    sha256: str


@dataclass(frozen=True)
class Saved:
    report: Report
    decision: dict[str, Any]  # agent.policy.decision.decision_to_json
    policy: PolicyKey
    saved_at: datetime


def default_path() -> Path:
    return paths.state_dir() / FILE_NAME


def _message_to_json(m: Message) -> dict[str, Any]:
    return {"key": m.key, "params": dict(m.params)}


def report_to_json(report: Report) -> dict[str, Any]:
    """Lossless (message keys and parameters, not rendered text): rebuilt by ``_report``."""
    h = report.host
    return {"generated_at": report.generated_at,
            "host": {"os": h.os, "os_version": h.os_version, "hostname": h.hostname,
                     "arch": h.arch},
            "checks": [{"id": c.id, "status": c.status.value,
                        "summary": _message_to_json(c.summary), "evidence": c.evidence,
                        "remediation": c.remediation, "duration_ms": c.duration_ms}
                       for c in report.checks]}


def save(report: Report, decision: dict[str, Any], policy: PolicyKey, *,
         path: Path | None = None, now: datetime | None = None) -> None:
    """Atomic, 0600. Raises OSError/TypeError; the worker logs it and goes on."""
    doc = {"schema": SCHEMA, "agent_version": agent.__version__,
           "saved_at": (now or datetime.now(UTC)).isoformat(),
           "policy": {"id": policy.id, "serial": policy.serial, "sha256": policy.sha256},
           "report": report_to_json(report), "decision": decision}
    atomic_write(path or default_path(), json.dumps(doc, ensure_ascii=False).encode())


class _Shape(ValueError):
    pass


def _want(value: object, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _Shape(f"expected {kind}, got {type(value).__name__}")
    return value


def _message(raw: object) -> Message:
    d: dict[str, Any] = _want(raw, dict)
    params = _want(d.get("params", {}), dict)
    for k, v in params.items():
        _want(k, str)
        _want(v, (str, int, float))
    return Message(_want(d.get("key"), str), params)


def _report(raw: object) -> Report:
    d: dict[str, Any] = _want(raw, dict)
    h = _want(d.get("host"), dict)
    host = HostInfo(*(_want(h.get(k), str) for k in ("os", "os_version", "hostname", "arch")))
    checks = []
    for item in _want(d.get("checks"), list):
        c: dict[str, Any] = _want(item, dict)
        cid = _want(c.get("id"), str)
        if cid not in CHECK_IDS:
            raise _Shape(f"unknown check {cid!r}")
        rem = c.get("remediation")
        checks.append(CheckResult(cid, Status(_want(c.get("status"), str)),
                                  _message(c.get("summary")), _want(c.get("evidence"), dict),
                                  None if rem is None else _want(rem, str),
                                  _want(c.get("duration_ms"), int)))
    return Report(_want(d.get("generated_at"), str), host, tuple(checks))


def load_fresh(policy: PolicyKey, *, path: Path | None = None, now: datetime | None = None,
               max_age: timedelta = MAX_AGE) -> Saved | None:
    """The saved evaluation when it may stand for a new one (see the module text), else None."""
    p = path or default_path()
    now = now or datetime.now(UTC)
    try:
        # No link, FIFO or device, a single link, this user's file (agent.core.nofollow).
        with os.fdopen(nofollow.open_fd(p, os.O_RDONLY), "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            log.info("last evaluation not reused: over %d bytes", MAX_BYTES)
            return None
        doc: dict[str, Any] = _want(json.loads(raw), dict)
        if doc.get("schema") != SCHEMA or doc.get("agent_version") != agent.__version__:
            log.info("last evaluation not reused: another schema or agent version")
            return None
        saved_at = datetime.fromisoformat(_want(doc.get("saved_at"), str))
        if saved_at.tzinfo is None:
            raise _Shape("saved_at without offset")
        if not now - max_age <= saved_at <= now + FUTURE_SLACK:
            log.info("last evaluation not reused: saved at %s, now %s", saved_at, now)
            return None
        pol = _want(doc.get("policy"), dict)
        saved_key = PolicyKey(_want(pol.get("id"), str), _want(pol.get("serial"), int),
                              _want(pol.get("sha256"), str))
        if saved_key != policy:
            log.info("last evaluation not reused: made under another policy")
            return None
        decision = _want(doc.get("decision"), dict)
        if decision.get("policy_serial") != policy.serial:
            raise _Shape("decision of another serial")
        return Saved(_report(doc.get("report")), decision, saved_key, saved_at)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:  # _Shape and JSON errors too
        log.warning("last evaluation not reused: %s: %s", type(exc).__name__, exc)
        return None


def remember(evaluation: Evaluation, *, path: Path | None = None) -> None:
    """The worker's hook: save what it just evaluated; a failure is logged, never raised."""
    from agent.policy.decision import decision_to_json  # noqa: PLC0415

    loaded = evaluation.loaded
    try:
        save(evaluation.report, decision_to_json(evaluation.decision),
             PolicyKey(loaded.policy.id, loaded.policy.serial, loaded.sha256), path=path)
    except (OSError, TypeError, ValueError) as exc:
        log.warning("last evaluation not saved: %s: %s", type(exc).__name__, exc)
