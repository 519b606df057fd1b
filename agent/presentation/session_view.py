"""The tray's side of ``byod-agent connect TARGET --events``: command line, event parsing, state.

The session runs in a child process (the core CLI) so the tray never blocks and a crash of the RDP
client or the tunnel cannot take the tray down. The child prints one JSON object per line; this
module turns those lines into typed events and keeps the session's state. Qt-free: ui/session.py
only moves bytes between QProcess and ``SessionTracker``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.core import exitcodes

log = logging.getLogger(__name__)

ERROR_STEPS = frozenset({"resolve", "tcp", "tls", "gateway_refused", "gateway_closed",
                         "client_missing", "certificate", "config", "client_failed"})
END_REASONS = frozenset({"client_exit", "noncompliant", "stopped", "error"})
STOP_GRACE_MS = 5000  # after SIGTERM, how long the connect process gets before it is killed
MAX_LINE = 64 * 1024  # a longer "line" is not from our protocol
SESSION_FAILED = 4  # connect's exit code when the session could not be opened or broke


class Kind(StrEnum):
    CHECKING = "checking"
    BLOCKED = "blocked"
    ERROR = "error"
    STARTED = "started"
    NONCOMPLIANT = "noncompliant"
    COUNTDOWN = "countdown"
    RECOVERED = "recovered"
    ENDED = "ended"


@dataclass(frozen=True)
class Text:
    """A sentence the core already wrote in both languages."""

    ja: str
    en: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


@dataclass(frozen=True)
class SessionEvent:
    kind: Kind
    target: str | None = None
    correlation_id: str | None = None
    reasons: tuple[Text, ...] = ()
    step: str | None = None
    message: Text | None = None
    client_pid: int | None = None
    grace_seconds: int | None = None
    remaining_seconds: int | None = None
    reason: str | None = None  # "ended": why


def connect_argv(target_id: str, executable: str, *, frozen: bool) -> list[str]:
    """The child command: the module form from source, the executable itself when frozen."""
    if not target_id or target_id.startswith("-"):
        raise ValueError(f"not a target id: {target_id!r}")
    if frozen:  # PyInstaller: sys.executable is byod-agent itself
        return [executable, "connect", target_id, "--events"]
    return [executable, "-m", "agent", "connect", target_id, "--events"]


def _text(value: Any) -> Text:
    if not isinstance(value, Mapping) or not isinstance(value.get("ja"), str) \
            or not isinstance(value.get("en"), str):
        raise ValueError("expected {ja, en}")
    return Text(value["ja"], value["en"])


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def parse_event(line: bytes | str) -> SessionEvent:
    """One protocol line -> event. Raises ValueError on anything that is not a known event."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise ValueError("line too long")
        line = line.decode("utf-8")
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    kind = Kind(str(obj.get("event")))
    reasons = tuple(_text(r) for r in obj.get("reasons", ()))
    if kind is Kind.CHECKING:
        return SessionEvent(kind, target=_str(obj["target"]))
    if kind is Kind.BLOCKED:
        return SessionEvent(kind, correlation_id=_str(obj["correlation_id"]), reasons=reasons)
    if kind is Kind.ERROR:
        step = _str(obj["step"])
        if step not in ERROR_STEPS:
            log.warning("unknown session error step %r", step)  # still an error: show it
        return SessionEvent(kind, step=step, message=_text(obj["message"]))
    if kind is Kind.STARTED:
        return SessionEvent(kind, target=_str(obj["target"]),
                            correlation_id=_str(obj["correlation_id"]),
                            client_pid=_int(obj["client_pid"]))
    if kind is Kind.NONCOMPLIANT:
        return SessionEvent(kind, grace_seconds=_int(obj["grace_seconds"]), reasons=reasons)
    if kind is Kind.COUNTDOWN:
        return SessionEvent(kind, remaining_seconds=_int(obj["remaining_seconds"]))
    if kind is Kind.RECOVERED:
        return SessionEvent(kind)
    reason = _str(obj["reason"])
    if reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    return SessionEvent(kind, reason=reason, correlation_id=obj.get("correlation_id"))


class Phase(StrEnum):
    IDLE = "idle"
    STARTING = "starting"  # the child runs its own check and opens the tunnel
    RUNNING = "running"
    NONCOMPLIANT = "noncompliant"  # running, counting down to the end
    STOPPING = "stopping"


class LineBuffer:
    """Splits a byte stream into lines (a read may end mid-line or mid-UTF-8 character)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > MAX_LINE:  # never grow without bound on a child gone wrong
            self._pending = b""
        return [ln.rstrip(b"\r") for ln in lines if ln.strip()]

    def rest(self) -> list[bytes]:
        rest, self._pending = self._pending, b""
        return [rest] if rest.strip() else []


@dataclass
class SessionTracker:
    """One connect attempt: the phase, and the event that ends it when the child dies silently."""

    target_id: str
    phase: Phase = Phase.STARTING
    correlation_id: str | None = None
    last: SessionEvent | None = None
    final: SessionEvent | None = None  # blocked, error or ended: what the user is told at the end
    remaining_seconds: int | None = None

    @property
    def active(self) -> bool:
        return self.phase is not Phase.IDLE

    def on_event(self, ev: SessionEvent) -> None:
        self.last = ev
        if ev.correlation_id:
            self.correlation_id = ev.correlation_id
        if ev.kind is Kind.STARTED:
            self.phase = Phase.RUNNING
        elif ev.kind is Kind.NONCOMPLIANT:
            self.phase = Phase.NONCOMPLIANT
            self.remaining_seconds = ev.grace_seconds
        elif ev.kind is Kind.COUNTDOWN:
            self.phase = Phase.NONCOMPLIANT
            self.remaining_seconds = ev.remaining_seconds
        elif ev.kind is Kind.RECOVERED:
            self.phase = Phase.RUNNING
            self.remaining_seconds = None
        elif ev.kind in (Kind.BLOCKED, Kind.ERROR):
            self.final = ev  # explains more than the "ended" that may follow it
        elif ev.kind is Kind.ENDED and self.final is None:
            self.final = ev

    def stopping(self) -> None:
        if self.phase is not Phase.IDLE:
            self.phase = Phase.STOPPING

    def on_exit(self, code: int | None, crashed: bool) -> SessionEvent:
        """The child is gone. Its last word if it said one; otherwise an error from the exit."""
        was_stopping = self.phase is Phase.STOPPING
        self.phase = Phase.IDLE
        if self.final is not None:
            return self.final
        if was_stopping:
            self.final = SessionEvent(Kind.ENDED, reason="stopped",
                                      correlation_id=self.correlation_id)
        elif code == exitcodes.BLOCKED and not crashed:
            self.final = SessionEvent(Kind.BLOCKED, correlation_id=self.correlation_id)
        else:
            # Silent death (crash, old CLI without --events): an error, never a quiet success.
            step = "client_failed" if code == SESSION_FAILED else "config"
            self.final = SessionEvent(Kind.ERROR, step=step,
                                      reason="crashed" if crashed else f"exit {code}")
        return self.final


def reason_lines(reasons: Sequence[Text], lang: str, limit: int = 3) -> str:
    shown = [r.get(lang) for r in reasons[:limit]]
    if len(reasons) > limit:
        shown.append("…")
    return "\n".join(shown)
