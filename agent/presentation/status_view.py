"""What the tray shows, decided without Qt: state, tooltip and one row per check, localized.

The tray (ui/) only paints a ``StatusView``; every decision about what a report means for the
user lives here so the CLI, the tray and the tests agree. Until the signed policy decides
(agent/policy/), ``build`` applies the house default: every check is required and ``unknown``
blocks (fail closed).

Seam for the policy decision: pass a ``DecisionInfo`` to ``build``. The policy engine's decision
is adapted to it in one place (``DecisionInfo`` carries only what the screen needs), so the tray
does not depend on the policy's internal types.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agent.core import i18n
from agent.core.messages import Message
from agent.core.status import Status
from agent.presentation import remediation

if TYPE_CHECKING:  # the tray reads these views without the policy, posture or keystore code
    from agent.policy.decision import Decision
    from agent.policy.evaluate import Evaluation
    from agent.policy.model import Policy
    from agent.posture.model import Report

log = logging.getLogger(__name__)


class TrayState(StrEnum):
    COMPLIANT = "compliant"
    WARNING = "warning"
    BLOCKED = "blocked"
    CHECKING = "checking"
    ERROR = "error"


class Effect(StrEnum):
    """What the policy does with one check's result."""

    OK = "ok"  # passes, or the policy only reports it
    WARN = "warn"  # shown, does not block
    BLOCK = "block"  # blocks the session now
    STAGED = "staged"  # will block from ``blocks_from``; warns until then


@dataclass(frozen=True)
class CheckVerdict:
    effect: Effect
    blocks_from: date | None = None


@dataclass(frozen=True)
class TargetInfo:
    """An approved target from the signed policy, as the menu names it."""

    id: str
    name_ja: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_ja if lang == "ja" else self.name_en


@dataclass(frozen=True)
class DecisionInfo:
    """The part of the policy decision the screen shows (filled by agent/policy when it lands)."""

    allowed: bool
    correlation_id: str
    verdicts: Mapping[str, CheckVerdict] = field(default_factory=dict)
    reason: Message | None = None  # why not allowed, in the policy's words
    policy_id: str | None = None
    targets: tuple[TargetInfo, ...] = ()
    recheck_minutes: int | None = None  # the policy's re-check interval
    # Expiry / offline-grace warnings and the automatic update's result (docs/policy.md)
    policy_notices: tuple[Message, ...] = ()


# Shape marks next to the colour, so states are told apart without colour (accessibility).
STATUS_MARK: dict[Status, str] = {
    Status.PASS: "✔", Status.WARN: "▲", Status.FAIL: "✖", Status.UNKNOWN: "?",
}


@dataclass(frozen=True)
class CheckRow:
    check_id: str
    status: Status
    effect: Effect
    name: str
    status_label: str
    mark: str
    reason: str
    fix_title: str | None
    fix_steps: tuple[str, ...]
    settings_uri: str | None
    blocks_from: str | None  # localized "blocks from DATE" line, or None
    evidence: Mapping[str, Any]
    duration_ms: int


@dataclass(frozen=True)
class TargetChoice:
    """One approved target as Connect names it; whether it can be used now is
    ``agent.presentation.connect_gate.connect_gate`` (the one place that decides)."""

    id: str
    name: str


@dataclass(frozen=True)
class StatusView:
    state: TrayState
    headline: str
    tooltip: str
    rows: tuple[CheckRow, ...] = ()
    connect_allowed: bool = False  # the decision allows a session (targets say where to)
    connect_reason: str = ""  # why Connect is off; empty when allowed
    correlation_id: str | None = None
    generated_at: str | None = None
    error: str | None = None
    targets: tuple[TargetChoice, ...] = ()
    recheck_minutes: int | None = None
    summary: str = ""  # "6項目中3項目に対応が必要です"


# Most urgent first: what blocks now, what will block, what warns, then other non-passes.
_EFFECT_RANK = {Effect.BLOCK: 0, Effect.STAGED: 1, Effect.WARN: 2, Effect.OK: 3}


def needs_attention(row: CheckRow) -> bool:
    return row.status is not Status.PASS or row.effect is not Effect.OK


def attention_rows(view: StatusView) -> tuple[CheckRow, ...]:
    """The rows the user has to act on, most urgent first (the view's rows are in that order)."""
    return tuple(r for r in view.rows if needs_attention(r))


def order_rows(rows: tuple[CheckRow, ...]) -> tuple[CheckRow, ...]:
    """Failing items first (by urgency), passes last; the checks' own order within each."""
    return tuple(sorted(rows, key=lambda r: (not needs_attention(r), _EFFECT_RANK[r.effect])))


def need_text(check_id: str, lang: str) -> str:
    """"ディスクの暗号化が必要です": the check's own sentence, or a generic one with its name."""
    key = f"ui.need.{check_id}"
    if key in i18n.catalogue(lang):
        return i18n.text(key, lang)
    return i18n.text("ui.need.generic", lang, check=i18n.text(f"check.{check_id}", lang))


def summary_line(rows: tuple[CheckRow, ...], lang: str) -> str:
    failing = sum(1 for r in rows if needs_attention(r))
    if not rows:
        return ""
    if failing == 0:
        return i18n.text("ui.status.summary_ok", lang, total=len(rows))
    return i18n.text("ui.status.summary", lang, total=len(rows), failing=failing)


def default_decision(report: Report) -> DecisionInfo:
    """Before a policy decides: unknown and fail block, warn warns (fail closed)."""
    verdicts = {}
    for c in report.checks:
        effect = {Status.PASS: Effect.OK, Status.WARN: Effect.WARN}.get(c.status, Effect.BLOCK)
        verdicts[c.id] = CheckVerdict(effect)
    allowed = all(v.effect is not Effect.BLOCK for v in verdicts.values())
    return DecisionInfo(allowed=allowed, correlation_id="", verdicts=verdicts)


def _row(report: Report, decision: DecisionInfo, idx: int, lang: str) -> CheckRow:
    c = report.checks[idx]
    verdict = decision.verdicts.get(c.id) or CheckVerdict(
        Effect.OK if c.status is Status.PASS else Effect.BLOCK)
    key = c.remediation if c.status is not Status.PASS else None
    blocks_from = None
    if verdict.effect is Effect.STAGED and verdict.blocks_from is not None:
        blocks_from = i18n.text("ui.status.blocks_from", lang,
                                date=verdict.blocks_from.isoformat())
    return CheckRow(
        check_id=c.id, status=c.status, effect=verdict.effect,
        name=i18n.text(f"check.{c.id}", lang),
        status_label=i18n.text(f"status.{c.status.value}", lang),
        mark=STATUS_MARK[c.status],
        reason=i18n.render(c.summary, lang),
        fix_title=remediation.title(key, lang) if key else None,
        fix_steps=tuple(remediation.steps(key, lang)) if key else (),
        settings_uri=remediation.settings_uri(key, report.host.os) if key else None,
        blocks_from=blocks_from, evidence=dict(c.evidence), duration_ms=c.duration_ms)


def _state(report: Report, decision: DecisionInfo) -> TrayState:
    if not decision.allowed:
        return TrayState.BLOCKED
    if any(v.effect in (Effect.WARN, Effect.STAGED) for v in decision.verdicts.values()):
        return TrayState.WARNING
    if any(c.status is not Status.PASS for c in report.checks if c.id not in decision.verdicts):
        return TrayState.WARNING
    return TrayState.COMPLIANT


def build(report: Report, lang: str, decision: DecisionInfo | None = None) -> StatusView:
    decision = decision or default_decision(report)
    state = _state(report, decision)
    rows = order_rows(tuple(_row(report, decision, i, lang)
                            for i in range(len(report.checks))))
    failing = [r for r in rows if r.status is not Status.PASS]
    headline = i18n.text(f"ui.state.{state.value}.headline", lang)
    tooltip = i18n.text("ui.tooltip", lang, state=i18n.text(f"ui.state.{state.value}", lang),
                        failing=len(failing), total=len(rows))
    if failing:
        tooltip += "\n" + "\n".join(f"{r.mark} {r.name}: {r.status_label}" for r in failing[:4])
    reason = ""
    if not decision.allowed:
        reason = (i18n.render(decision.reason, lang) if decision.reason
                  else i18n.text("ui.connect.blocked", lang))
    return StatusView(state=state, headline=headline, tooltip=tooltip, rows=rows,
                      connect_allowed=decision.allowed, connect_reason=reason,
                      correlation_id=decision.correlation_id or None,
                      generated_at=report.generated_at,
                      targets=target_choices(decision.targets, lang),
                      recheck_minutes=decision.recheck_minutes,
                      summary=summary_line(rows, lang))


def target_choices(targets: tuple[TargetInfo, ...], lang: str) -> tuple[TargetChoice, ...]:
    return tuple(TargetChoice(t.id, t.name(lang)) for t in targets)


def checking(lang: str, previous: StatusView | None = None) -> StatusView:
    """While a run is in progress: keep the previous rows visible, say that we are checking."""
    text = i18n.text("ui.state.checking.headline", lang)
    tooltip = i18n.text("ui.tooltip.checking", lang)
    why_not = i18n.text("ui.connect.checking", lang)
    if previous is None:
        return StatusView(state=TrayState.CHECKING, headline=text, tooltip=tooltip,
                          connect_reason=why_not)
    return StatusView(state=TrayState.CHECKING, headline=text, tooltip=tooltip,
                      rows=previous.rows, connect_allowed=False, connect_reason=why_not,
                      correlation_id=previous.correlation_id,
                      generated_at=previous.generated_at, targets=previous.targets,
                      recheck_minutes=previous.recheck_minutes, summary=previous.summary)


def failed(lang: str, error: str) -> StatusView:
    """The run itself broke (not a check): show it, never pretend the PC is fine."""
    return StatusView(state=TrayState.ERROR, headline=i18n.text("ui.state.error.headline", lang),
                      tooltip=i18n.text("ui.tooltip.error", lang, error=error[:200]),
                      connect_reason=i18n.text("ui.connect.error", lang), error=error)


def decision_info(decision: Decision, policy: Policy | None = None) -> DecisionInfo:
    """Adapt the policy's decision to what the screen shows (the one place they meet)."""
    from agent.policy.decision import Outcome  # noqa: PLC0415 (the worker's side only)

    verdicts: dict[str, CheckVerdict] = {}
    for c in decision.checks:
        if c.outcome is Outcome.BLOCK:
            verdicts[c.id] = CheckVerdict(Effect.BLOCK)
        elif c.outcome is Outcome.WARN and c.blocks_from is not None:
            verdicts[c.id] = CheckVerdict(Effect.STAGED, c.blocks_from)
        elif c.outcome is Outcome.WARN:
            verdicts[c.id] = CheckVerdict(Effect.WARN)
        else:  # ok, switched off, or report-only: nothing for the user to act on now
            verdicts[c.id] = CheckVerdict(Effect.OK)
    targets = tuple(TargetInfo(t.id, t.name_ja, t.name_en) for t in policy.targets) \
        if policy is not None else ()
    return DecisionInfo(decision.allowed, decision.correlation_id, verdicts,
                        policy_id=decision.policy_id, targets=targets,
                        recheck_minutes=policy.recheck_interval_minutes if policy else None)


def renew_certificate_quietly() -> None:
    """Automatic EST renewal at two thirds of the certificate's lifetime while the agent runs.

    Failures are logged, not raised: an unreachable EST server must not hide the posture; the
    certificate's own expiry warnings (30/7/1 days) tell the user when it becomes urgent.
    """
    # Imported here: requests costs the tray ~0.3 s and ~19 MB at start (bench/startup.py).
    import requests  # noqa: PLC0415

    from agent.keystore.errors import KeystoreError  # noqa: PLC0415
    from agent.keystore.est import renew_if_due  # noqa: PLC0415
    from agent.keystore.store import Keystore  # noqa: PLC0415

    try:
        info = renew_if_due(Keystore.default(), datetime.now(UTC))
    except (KeystoreError, OSError, requests.RequestException) as exc:
        log.warning("automatic certificate renewal failed: %s", exc)
        return
    if info is not None:
        log.info("certificate renewed automatically; new expiry %s", info.not_after.isoformat())


class PolicyEvaluator:
    """The tray's run/decide pair: one evaluation gives both the report and its decision, so
    the tray shows exactly what ``byod-agent check`` decides (same policy, same correlation ID).
    A refused policy raises PolicyRefused, which the tray shows as its error state."""

    def __init__(self, evaluate_fn: Callable[[], Evaluation] | None = None,
                 maintenance: Callable[[], None] | None = None,
                 started_at: datetime | None = None) -> None:
        # The tray's start: an update due at start waits a per-PC spread (agent.policy.schedule).
        # The evaluation worker is given the tray's start time (``--tray-started``).
        started = started_at or datetime.now(UTC)
        if evaluate_fn is None:
            from agent.policy.evaluate import evaluate  # noqa: PLC0415

            def evaluate_fn() -> Evaluation:
                return evaluate(started_at=started)
        self._evaluate: Callable[[], Evaluation] = evaluate_fn
        self._maintenance = maintenance or renew_certificate_quietly
        self._last: Evaluation | None = None

    def run(self) -> Report:
        self._maintenance()  # on the worker thread, before the checks: never on the UI thread
        self._last = self._evaluate()
        return self._last.report

    @property
    def last(self) -> Evaluation | None:
        """The evaluation of the last ``run()`` (the worker saves it for the export)."""
        return self._last

    def decide(self, report: Report) -> DecisionInfo | None:
        last = self._last
        if last is None or last.report is not report:
            return None
        loaded = getattr(last, "loaded", None)  # test doubles may carry no policy
        info = decision_info(last.decision, loaded.policy if loaded is not None else None)
        notices = tuple(n.message for n in getattr(last, "notices", ()))
        return replace(info, policy_notices=notices) if notices else info
