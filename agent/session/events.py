"""The session protocol: every event and step of ``byod-agent connect --events``, defined once.

The producer (agent.session.controller and agent.commands.connect) builds ``SessionEvent``
values and serialises them with ``encode``; the tray (agent.presentation.session_view) parses the
same lines with ``decode``. Both sides use the tables below, so a step cannot exist on one side
only: the drift this module replaces was the runner saying ``office_unreachable`` while the tray
only knew ``gateway_closed`` and showed the raw word to staff.

Wire format (docs/session.md): one JSON object per line, UTF-8, ``event`` names the kind, the
kind's fields follow (``FIELDS``), and ``message`` carries the sentence for people in both
languages (``{"ja": ..., "en": ...}``). Text for people: ``session.step.<step>`` (the sentence) and
``ui.session.step.<step>`` (the tray's short name of the step) for every ``Step``;
``session.event.<kind>`` and ``session.ended.<reason>``. tests/unit/test_session_contract.py holds
all of it: every step through the real runner, the real parser and the real notifier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from agent.core import i18n

MAX_LINE = 64 * 1024  # a longer "line" is not from our protocol
MAX_REASONS = 20
MAX_TEXT = 2000


class Kind(StrEnum):
    CHECKING = "checking"  # connect runs its own posture check first
    BLOCKED = "blocked"  # the policy does not allow a session now
    ERROR = "error"  # a step failed (``Step``)
    STARTED = "started"  # the RDP client runs
    NONCOMPLIANT = "noncompliant"  # posture fell during the session: countdown starts
    COUNTDOWN = "countdown"  # every few seconds of the countdown
    RECOVERED = "recovered"  # fixed before the countdown ended
    ENDED = "ended"  # the session is over (``EndReason``)


class Step(StrEnum):
    """Which step of opening or keeping a session failed (``error`` events)."""

    CERTIFICATE = "certificate"  # no usable user certificate for the tunnel
    CONFIG = "config"  # the policy has a value the agent cannot use
    VERIFIER_UNREACHABLE = "verifier_unreachable"  # the city's verifier could not be asked
    VERIFIER_REFUSED = "verifier_refused"  # the verifier said no (its own reason in detail)
    RESOLVE = "resolve"  # the gateway's name does not resolve
    TCP = "tcp"  # the gateway does not answer
    TLS = "tls"  # the gateway's certificate is not the city's
    GATEWAY_REFUSED = "gateway_refused"  # the gateway refused our certificate
    OFFICE_UNREACHABLE = "office_unreachable"  # the gateway is up, the office PC is not
    # The gateway closed a session that was established, and the city runs a verifier: the
    # verifier ends sessions there (HAProxy runtime API, docs/verifier-protocol.md section 3).
    GATEWAY_ENDED = "gateway_ended"
    CLIENT_MISSING = "client_missing"  # no RDP client on this PC
    CLIENT_FAILED = "client_failed"  # the RDP client could not start or failed


class EndReason(StrEnum):
    CLIENT_EXIT = "client_exit"  # the user closed the remote desktop
    NONCOMPLIANT = "noncompliant"  # the countdown ran out
    STOPPED = "stopped"  # Disconnect (SIGTERM, Ctrl+C)
    ERROR = "error"  # after an ``error`` event


# The tunnel's own words for a failing stage (agent.session.tunnel) -> the protocol's step.
TUNNEL_STEPS: Mapping[str, Step] = {
    "resolve": Step.RESOLVE, "tcp": Step.TCP, "tls": Step.TLS,
    "gateway_refused": Step.GATEWAY_REFUSED, "office_unreachable": Step.OFFICE_UNREACHABLE,
    "gateway_closed": Step.OFFICE_UNREACHABLE,  # the gateway hung up: the office PC did not answer
    # the gateway ended an established session (no verifier: the office PC went away)
    "gateway_ended": Step.OFFICE_UNREACHABLE,
}


def tunnel_step(word: str, *, verifier: bool) -> Step:
    """The protocol's step for the tunnel's word; ``verifier``: the policy names a verifier.

    The verifier protocol has no endpoint that says why a session was cut, and the bytes the
    tunnel sees are the same whether the verifier cut the session at the gateway or the office
    PC went away (an EOF from the gateway after data). With a verifier the cut is the usual
    cause (re-attestation refused, revoked, too late), so the step says the gateway ended it and
    asks staff to check the PC and connect again; without one, the office PC went away.
    """
    if word == "gateway_ended" and verifier:
        return Step.GATEWAY_ENDED
    return TUNNEL_STEPS.get(word, Step.TLS)


@dataclass(frozen=True)
class Text:
    """A sentence written in both languages by the side that knows it (policy reasons)."""

    ja: str
    en: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en

    def to_wire(self) -> dict[str, str]:
        return {"ja": self.ja, "en": self.en}


@dataclass(frozen=True)
class SessionEvent:
    """One protocol event; which fields a kind carries is ``FIELDS`` (the rest stay None)."""

    kind: Kind
    target: str | None = None
    correlation_id: str | None = None
    reasons: tuple[Text, ...] = ()
    step: Step | None = None
    detail: str | None = None  # English, for the log and the help desk; never the headline
    client_pid: int | None = None
    grace_seconds: int | None = None
    remaining_seconds: int | None = None
    reason: EndReason | None = None
    decision_id: str | None = None
    message: Text | None = None  # the sentence for people, added by ``with_message``


# kind -> (required fields, optional fields), in wire order. The one schema both sides use.
FIELDS: Mapping[Kind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Kind.CHECKING: (("target",), ()),
    Kind.BLOCKED: (("correlation_id", "reasons"), ()),
    Kind.ERROR: (("step", "detail"), ()),
    Kind.STARTED: (("target", "correlation_id", "client_pid"), ()),
    Kind.NONCOMPLIANT: (("grace_seconds", "reasons"), ("decision_id",)),
    Kind.COUNTDOWN: (("remaining_seconds",), ()),
    Kind.RECOVERED: ((), ("decision_id",)),
    Kind.ENDED: (("reason",), ("correlation_id",)),
}


# -- constructors the producer uses ----------------------------------------------------------
def checking(target: str) -> SessionEvent:
    return SessionEvent(Kind.CHECKING, target=target)


def blocked(correlation_id: str, reasons: tuple[Text, ...]) -> SessionEvent:
    return SessionEvent(Kind.BLOCKED, correlation_id=correlation_id, reasons=reasons)


def error(step: Step, detail: str) -> SessionEvent:
    return SessionEvent(Kind.ERROR, step=step, detail=detail)


def started(target: str, correlation_id: str, client_pid: int) -> SessionEvent:
    return SessionEvent(Kind.STARTED, target=target, correlation_id=correlation_id,
                        client_pid=client_pid)


def noncompliant(grace_seconds: int, reasons: tuple[Text, ...],
                 decision_id: str | None) -> SessionEvent:
    return SessionEvent(Kind.NONCOMPLIANT, grace_seconds=grace_seconds, reasons=reasons,
                        decision_id=decision_id)


def countdown(remaining_seconds: int) -> SessionEvent:
    return SessionEvent(Kind.COUNTDOWN, remaining_seconds=remaining_seconds)


def recovered(decision_id: str | None) -> SessionEvent:
    return SessionEvent(Kind.RECOVERED, decision_id=decision_id)


def ended(reason: EndReason, correlation_id: str | None) -> SessionEvent:
    return SessionEvent(Kind.ENDED, reason=reason, correlation_id=correlation_id)


def texts(reasons: list[dict[str, str]]) -> tuple[Text, ...]:
    """agent.policy.decision.reasons_both() -> the protocol's reasons."""
    return tuple(Text(r["ja"], r["en"]) for r in reasons)


# -- text for people ---------------------------------------------------------------------------
def message_key(ev: SessionEvent) -> str:
    if ev.kind is Kind.ERROR:
        return f"session.step.{ev.step}"
    if ev.kind is Kind.ENDED:
        return f"session.ended.{ev.reason}"
    return f"session.event.{ev.kind}"


def step_label_key(step: Step) -> str:
    """The tray's short name of a step ("市のゲートウェイへの接続")."""
    return f"ui.session.step.{step}"


def sentence(ev: SessionEvent, lang: str) -> str:
    params: dict[str, object] = {
        k: getattr(ev, k) for k in ("target", "correlation_id", "detail", "client_pid",
                                    "grace_seconds", "remaining_seconds", "decision_id")
        if getattr(ev, k) is not None}
    params.setdefault("correlation_id", "-")
    return i18n.text(message_key(ev), lang, **params)


def with_message(ev: SessionEvent) -> SessionEvent:
    return replace(ev, message=Text(sentence(ev, "ja"), sentence(ev, "en")))


# -- the wire ----------------------------------------------------------------------------------
def to_wire(ev: SessionEvent) -> dict[str, Any]:
    """The event as a JSON-ready dict: ``event``, then the kind's fields, then ``message``."""
    required, optional = FIELDS[ev.kind]
    out: dict[str, Any] = {"event": ev.kind.value}
    for name in (*required, *optional):
        value = getattr(ev, name)
        if name in optional and value is None:
            continue
        if value is None:
            raise ValueError(f"{ev.kind} needs {name}")
        out[name] = [r.to_wire() for r in value] if name == "reasons" else \
            (value.value if isinstance(value, StrEnum) else value)
    if ev.message is not None:
        out["message"] = ev.message.to_wire()
    return out


def encode(ev: SessionEvent) -> str:
    """One line of the protocol (no newline), with the sentence in both languages."""
    if ev.message is None:
        ev = with_message(ev)
    return json.dumps(to_wire(ev), ensure_ascii=False)


def _text(value: Any) -> Text:
    if not isinstance(value, Mapping) or not isinstance(value.get("ja"), str) \
            or not isinstance(value.get("en"), str):
        raise ValueError("expected {ja, en}")
    return Text(value["ja"][:MAX_TEXT], value["en"][:MAX_TEXT])


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value[:MAX_TEXT]


def _field(name: str, value: Any) -> Any:
    if name == "reasons":
        if not isinstance(value, list) or len(value) > MAX_REASONS:
            raise ValueError("reasons: expected a short list")
        return tuple(_text(r) for r in value)
    if name == "step":
        return Step(_str(value))  # an unknown step is a protocol error (the contract test)
    if name == "reason":
        return EndReason(_str(value))
    if name in ("client_pid", "grace_seconds", "remaining_seconds"):
        return _int(value)
    return _str(value)


def decode(line: bytes | str) -> SessionEvent:
    """One protocol line -> event. Raises ValueError on anything that is not a known event."""
    if len(line) > MAX_LINE:
        raise ValueError("line too long")
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    kind = Kind(str(obj.get("event")))
    required, optional = FIELDS[kind]
    values: dict[str, Any] = {}
    for name in required:
        if name not in obj:
            raise ValueError(f"{kind}: missing {name}")
        values[name] = _field(name, obj[name])
    for name in optional:
        if obj.get(name) is not None:
            values[name] = _field(name, obj[name])
    message = _text(obj["message"]) if "message" in obj else None
    return SessionEvent(kind, message=message, **values)
