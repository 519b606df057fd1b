"""What the tray says in a notification, and when (Qt-free; ui/tray.py only shows a ``Notice``).

Three sources: the posture state changed, the certificate is close to expiry (30/7/1 days, once
per threshold per day, remembered across restarts in the tray's prefs), and the session monitor
(noncompliant, countdown, ended, error) from ``agent.presentation.session_view``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from agent.core import i18n
from agent.presentation.session_view import (
    END_REASONS,
    ERROR_STEPS,
    Kind,
    SessionEvent,
    Step,
    reason_lines,
)
from agent.presentation.status_view import StatusView, TrayState, attention_rows, need_text
from agent.session import events


class ExpiryWarning(Protocol):
    """What ``cert_expiry`` reads of ``agent.keystore.certs.ExpiryWarning`` (or of the tray's
    copy off the evaluation worker's wire, ``agent.presentation.evaluation``): no keystore
    import, so the tray can tell expiry without cryptography."""

    @property
    def threshold(self) -> int: ...

    @property
    def days_left(self) -> int: ...


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """Where a click on the notification leads."""

    STATUS = "status"  # the status window (at ``check_id`` when set)
    CERTIFICATE = "certificate"  # the certificate dialog
    NONE = "none"


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    level: Level
    key: str  # which notice this is (tests, logs); never shown
    action: Action = Action.STATUS
    check_id: str | None = None  # with Action.STATUS: the row to open


_STATE_LEVEL = {TrayState.BLOCKED: Level.CRITICAL, TrayState.ERROR: Level.CRITICAL,
                TrayState.WARNING: Level.WARNING}


def state_change(previous: TrayState | None, view: StatusView, lang: str) -> Notice | None:
    """Only real changes; on the first result only a bad state is worth interrupting for.

    The body says what is wrong (the first item that needs attention, and how many more) and
    that a click shows how to fix it; the click opens the status window at that item."""
    current = view.state
    if current is TrayState.CHECKING or current == previous:
        return None
    if previous is None and current not in _STATE_LEVEL:
        return None
    title = i18n.text("ui.notify.title", lang)
    level = _STATE_LEVEL.get(current, Level.INFO)
    key = f"state.{current.value}"
    if current is TrayState.ERROR:
        return Notice(title, i18n.text("ui.notify.check_failed", lang), level, key)
    needs = attention_rows(view)
    if current in (TrayState.BLOCKED, TrayState.WARNING) and needs:
        first = needs[0]
        what = need_text(first.check_id, lang)
        if len(needs) > 1:
            what = i18n.text("ui.notify.and_more", lang, first=what, more=len(needs) - 1)
        body = i18n.text("ui.notify.click_to_fix", lang, what=what)
        return Notice(title, body, level, key, Action.STATUS, first.check_id)
    body = i18n.text(f"ui.notify.state.{current.value}", lang)
    return Notice(title, body, level, key)


def cert_expiry(warning: ExpiryWarning | None, today: dt.date, sent: Mapping[str, str],
                lang: str) -> tuple[Notice | None, dict[str, str]]:
    """A notice when a threshold is crossed and not yet told today; returns the new record.

    ``sent`` maps the threshold ("30", "7", "1", "0" = expired) to the ISO date it was last shown.
    """
    record = dict(sent)
    if warning is None:
        return None, {}  # renewed or removed: start afresh for the next certificate
    key = str(warning.threshold)
    if record.get(key) == today.isoformat():
        return None, record
    record[key] = today.isoformat()
    if warning.threshold == 0:
        body = i18n.text("ui.notify.cert_expired", lang)
        level = Level.CRITICAL
    else:
        body = i18n.text("ui.notify.cert_expiring", lang, days=max(warning.days_left, 0))
        level = Level.CRITICAL if warning.threshold <= 1 else Level.WARNING
    return Notice(i18n.text("ui.notify.cert_title", lang), body, level,
                  f"cert.{warning.threshold}", Action.CERTIFICATE), record


def _mmss(seconds: int) -> str:
    seconds = max(seconds, 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def session_event(ev: SessionEvent, lang: str, target_name: str) -> Notice | None:
    """The session monitor's events the user must see; the others only change the menu."""
    title = i18n.text("ui.notify.session_title", lang, target=target_name)
    if ev.kind is Kind.NONCOMPLIANT:
        body = i18n.text("ui.notify.session_noncompliant", lang,
                         time=_mmss(ev.grace_seconds or 0))
        if ev.reasons:
            body += "\n" + reason_lines(ev.reasons, lang)
        return Notice(title, body, Level.CRITICAL, "session.noncompliant")  # click: the fix
    if ev.kind is Kind.COUNTDOWN:
        return Notice(title, i18n.text("ui.notify.session_countdown", lang,
                                       time=_mmss(ev.remaining_seconds or 0)),
                      Level.WARNING, "session.countdown")
    if ev.kind is Kind.RECOVERED:
        return Notice(title, i18n.text("ui.notify.session_recovered", lang), Level.INFO,
                      "session.recovered")
    if ev.kind is Kind.STARTED:
        return Notice(title, i18n.text("ui.notify.session_started", lang), Level.INFO,
                      "session.started")
    if ev.kind is Kind.BLOCKED:
        body = i18n.text("ui.notify.session_blocked", lang)
        if ev.reasons:
            body += "\n" + reason_lines(ev.reasons, lang)
        return Notice(title, body, Level.CRITICAL, "session.blocked")
    if ev.kind is Kind.ERROR:
        return _session_error(ev, lang, title)
    if ev.kind is Kind.ENDED:
        reason = ev.reason if ev.reason in END_REASONS else "error"
        level = Level.INFO if reason in ("client_exit", "stopped") else Level.CRITICAL
        return Notice(title, i18n.text(f"ui.notify.session_ended.{reason}", lang), level,
                      f"session.ended.{reason}")
    return None


# Steps whose fix is in the certificate dialog; the others are explained in the status window.
_CERT_STEPS = frozenset({Step.CERTIFICATE, Step.GATEWAY_REFUSED})


def _session_error(ev: SessionEvent, lang: str, title: str) -> Notice:
    """"接続できませんでした（市の接続サーバーへの接続）" and the step's own sentence; a crash of
    the connect process (no message of its own) says so. Never a raw step name."""
    step = ev.step if ev.step in ERROR_STEPS else None
    label = i18n.text(events.step_label_key(step), lang) if step is not None else \
        i18n.text("ui.session.step.unknown", lang)
    if ev.message is not None:
        detail = ev.message.get(lang)
    elif ev.detail in ("crashed",) or (ev.detail or "").startswith("exit "):
        detail = i18n.text("ui.notify.session_exit", lang, detail=ev.detail or "?")
    else:
        detail = events.sentence(ev, lang) if step is not None else ""
    body = i18n.text("ui.notify.session_error", lang, step=label, detail=detail)
    action = Action.CERTIFICATE if step in _CERT_STEPS else Action.STATUS
    return Notice(title, body, Level.CRITICAL, f"session.error.{step or 'unknown'}", action)
