"""The tray's side of ``byod-agent connect TARGET --events``: command line, event parsing, state.

The session runs in a child process (the core CLI) so the tray never blocks and a crash of the RDP
client or the tunnel cannot take the tray down. The child prints one JSON object per line; this
module turns those lines into typed events (the one protocol, agent.session.events) and keeps
the session's state. Qt-free: ui/session.py
only moves bytes between QProcess and ``SessionTracker``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from agent.core import exitcodes
from agent.session.events import (
    MAX_LINE,
    EndReason,
    Kind,
    SessionEvent,
    Step,
    Text,
    decode,
)

log = logging.getLogger(__name__)

__all__ = ["END_REASONS", "ERROR_STEPS", "MAX_LINE", "Kind", "LineBuffer", "Phase",
           "SessionEvent", "SessionTracker", "Step", "Text", "connect_argv", "parse_event",
           "reason_lines"]

ERROR_STEPS = frozenset(Step)  # the protocol's own tables (agent.session.events)
END_REASONS = frozenset(EndReason)
STOP_GRACE_MS = 5000  # after SIGTERM, how long the connect process gets before it is killed
SESSION_FAILED = exitcodes.SESSION_FAILED  # connect's exit code: could not open, or broke


def connect_argv(target_id: str, executable: str, *, frozen: bool) -> list[str]:
    """The child command: the module form from source, the executable itself when frozen."""
    if not target_id or target_id.startswith("-"):
        raise ValueError(f"not a target id: {target_id!r}")
    if frozen:  # PyInstaller: sys.executable is byod-agent itself
        return [executable, "connect", target_id, "--events"]
    return [executable, "-m", "agent", "connect", target_id, "--events"]


def parse_event(line: bytes | str) -> SessionEvent:
    """One protocol line -> event (agent.session.events.decode). Raises ValueError on anything
    that is not a known event of a known kind, step or end reason."""
    return decode(line)


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
            self.final = SessionEvent(Kind.ENDED, reason=EndReason.STOPPED,
                                      correlation_id=self.correlation_id)
        elif code == exitcodes.BLOCKED and not crashed:
            self.final = SessionEvent(Kind.BLOCKED, correlation_id=self.correlation_id)
        else:
            # Silent death (crash, old CLI without --events): an error, never a quiet success.
            step = Step.CLIENT_FAILED if code == SESSION_FAILED else Step.CONFIG
            self.final = SessionEvent(Kind.ERROR, step=step,
                                      detail="crashed" if crashed else f"exit {code}")
        return self.final


def reason_lines(reasons: Sequence[Text], lang: str, limit: int = 3) -> str:
    shown = [r.get(lang) for r in reasons[:limit]]
    if len(reasons) > limit:
        shown.append("…")
    return "\n".join(shown)
