"""The session protocol's contract: the real producer's events through the real tray parser and
notifier, for every step, kind and end reason, in Japanese and English.

Producer: ``agent.session.controller.Session`` emits through its own ``_error``/``emit`` path
into ``agent.commands.connect.EventPrinter`` (the ``--events`` printer), whose stdout lines are
exactly what the tray reads. Consumer: ``agent.presentation.session_view.parse_event``, the
``SessionTracker`` and ``agent.presentation.notify.session_event``. A step that one side does not
know, or that has no sentence in either language, fails here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from agent.commands.connect import EventPrinter
from agent.core import i18n
from agent.policy.model import Target
from agent.presentation import notify
from agent.presentation.session_view import SessionTracker, parse_event
from agent.session import events
from agent.session.controller import Session, SessionRequest
from agent.session.events import EndReason, Kind, Step, Text
from agent.session.launch import ClientInfo

REPO = Path(__file__).resolve().parents[2]
TARGET = Target(id="office-pc", name_ja="庁内PC", name_en="Office PC", protocol="rdp",
                mode="direct", host="pc.example.invalid", port=3389)
RAW = re.compile(r"[a-z]+_[a-z_]+")  # a protocol word such as office_unreachable


def _session(emit: EventPrinter) -> Session:
    req = SessionRequest(TARGET, "linux", ClientInfo("xfreerdp", "xfreerdp2", "/nonexistent"),
                         "CID12345", recheck_seconds=60, grace_seconds=30)
    return Session(req, reevaluate=lambda: None, emit=emit)  # type: ignore[arg-type,return-value]


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]


def _no_raw_words(text: str, lang: str) -> None:
    assert text.strip()
    assert "{" not in text and "}" not in text, text  # no unfilled placeholder
    for word in RAW.findall(text):
        assert word not in {s.value for s in Step} | {r.value for r in EndReason}, text
    if lang == "ja":
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), text


@pytest.mark.parametrize("step", list(Step))
def test_every_step_from_the_producer_reaches_staff_as_a_sentence(
        step: Step, capsys: pytest.CaptureFixture[str]) -> None:
    session = _session(EventPrinter(True, "ja"))
    session._error(step, "detail for the log")  # the controller's own emit path
    session.emit(events.ended(EndReason.ERROR, "CID12345"))
    lines = _lines(capsys)
    assert len(lines) == 2
    tracker = SessionTracker("office-pc")
    for line in lines:
        tracker.on_event(parse_event(line.encode("utf-8")))
    final = tracker.on_exit(4, crashed=False)
    assert final.kind is Kind.ERROR and final.step is step  # the cause, not "ended"
    for lang in i18n.LANGS:
        assert f"session.step.{step}" in i18n.catalogue(lang)
        assert events.step_label_key(step) in i18n.catalogue(lang)
        notice = notify.session_event(final, lang, "庁内PC" if lang == "ja" else "Office PC")
        assert notice is not None and notice.level is notify.Level.CRITICAL
        assert notice.key == f"session.error.{step}"
        _no_raw_words(notice.title + "\n" + notice.body, lang)


def test_office_unreachable_is_a_japanese_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    _session(EventPrinter(True, "ja"))._error(Step.OFFICE_UNREACHABLE, "gateway dropped it")
    ev = parse_event(_lines(capsys)[0])
    notice = notify.session_event(ev, "ja", "庁内PC")
    assert notice is not None
    assert "庁内PCが応答しません" in notice.body and "office_unreachable" not in notice.body


def _every_kind() -> list[events.SessionEvent]:
    reason = (Text("ディスクが暗号化されていません", "The disk is not encrypted"),)
    return [events.checking("office-pc"), events.blocked("CID12345", reason),
            events.error(Step.TLS, "x"), events.started("office-pc", "CID12345", 77),
            events.noncompliant(90, reason, "D1"), events.countdown(30),
            events.recovered("D2"), *[events.ended(r, "CID12345") for r in EndReason]]


def test_every_kind_and_end_reason_round_trips_and_is_told(
        capsys: pytest.CaptureFixture[str]) -> None:
    printer = EventPrinter(True, "en")
    sent = _every_kind()
    assert {e.kind for e in sent} == set(Kind)
    for ev in sent:
        printer(ev)
    lines = _lines(capsys)
    assert len(lines) == len(sent)
    for ev, line in zip(sent, lines, strict=True):
        got = parse_event(line)
        assert events.to_wire(got) == events.to_wire(events.with_message(ev))
        for lang in i18n.LANGS:
            assert events.message_key(ev) in i18n.catalogue(lang)
            _no_raw_words(events.sentence(ev, lang), lang)
            notice = notify.session_event(got, lang, "x")
            if ev.kind is not Kind.CHECKING:  # "checking" only changes the menu
                assert notice is not None
                _no_raw_words(notice.body, lang)


def test_people_get_the_same_sentence_on_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    _session(EventPrinter(False, "ja"))._error(Step.OFFICE_UNREACHABLE, "x")
    err = capsys.readouterr().err
    assert "庁内PCが応答しません" in err and "office_unreachable" not in err


def test_the_runner_really_emits_client_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole run() path, not only _error: a missing client ends as a known step."""
    if sys.platform == "win32":
        pytest.skip("path semantics")
    assert _session(EventPrinter(True, "ja")).run() == 4
    evs = [parse_event(line) for line in _lines(capsys)]
    assert [e.step for e in evs if e.kind is Kind.ERROR] == [Step.CLIENT_MISSING]


def test_the_tunnels_words_all_map_to_a_step() -> None:
    """Every stage name agent/session/tunnel.py raises or records is in TUNNEL_STEPS (read from
    its source, so a new stage there fails here until the protocol knows it)."""
    source = (REPO / "agent" / "session" / "tunnel.py").read_text(encoding="utf-8")
    words = set(re.findall(r'TunnelError\(\s*"([a-z_]+)"', source))
    words |= set(re.findall(r'errors\.append\(\s*f?"([a-z_]+):', source))
    assert words, "the tunnel's vocabulary could not be read"
    assert words <= set(events.TUNNEL_STEPS), words - set(events.TUNNEL_STEPS)


@pytest.mark.parametrize("line", [
    '{"event":"error","step":"gateway_closed","detail":"x"}',  # the old tray-only word
    '{"event":"error","step":"party","detail":"x"}',
    '{"event":"ended","reason":"because"}',
    '{"event":"started","target":"x","correlation_id":"c"}',  # a required field missing
])
def test_an_unknown_step_or_shape_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_event(line)


def test_the_raw_word_check_can_fail() -> None:
    """Positive control: the old notice ("問題の場所：office_unreachable") is caught."""
    with pytest.raises(AssertionError):
        _no_raw_words("接続できませんでした。問題の場所：office_unreachable", "ja")
    with pytest.raises(AssertionError):
        _no_raw_words("Not connected: {step}", "en")


def test_a_session_the_gateway_ended_names_the_gateway_only_with_a_verifier() -> None:
    """The tunnel's "gateway_ended" (EOF from the gateway after data) is the verifier's cut
    when the policy names one (docs/session.md), the office PC going away otherwise."""
    assert events.tunnel_step("gateway_ended", verifier=True) is Step.GATEWAY_ENDED
    assert events.tunnel_step("gateway_ended", verifier=False) is Step.OFFICE_UNREACHABLE
    assert events.tunnel_step("gateway_closed", verifier=True) is Step.OFFICE_UNREACHABLE
    assert events.tunnel_step("no such word", verifier=True) is Step.TLS
    for lang in ("ja", "en"):
        text = i18n.text("session.step.gateway_ended", lang)
        assert "gateway_ended" not in text and text
    assert "市の接続装置がセッションを終了しました" in i18n.text("session.step.gateway_ended", "ja")
