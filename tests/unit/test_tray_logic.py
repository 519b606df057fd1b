"""The tray's Qt-free logic: session events, notifications, re-check timing, certificate rows."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.core import exitcodes
from agent.core.messages import msg
from agent.keystore import CertStatus, KeyState
from agent.keystore.certs import CertInfo, ExpiryWarning, expiry_warning
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.presentation.cert_view import details
from agent.presentation.notify import Action, Level, cert_expiry, session_event, state_change
from agent.presentation.recheck import (
    PBT_APMRESUMEAUTOMATIC,
    WM_POWERBROADCAST,
    WM_WTSSESSION_CHANGE,
    WTS_SESSION_UNLOCK,
    ClockSample,
    clock_gap,
    interval_ms,
    is_high_contrast,
    windows_wake_reason,
)
from agent.presentation.session_view import (
    Kind,
    LineBuffer,
    Phase,
    SessionTracker,
    connect_argv,
    parse_event,
)
from agent.presentation.status_view import StatusView, TrayState, build, checking, failed

R = '{"ja":"ディスクが暗号化されていません","en":"The disk is not encrypted"}'


def test_connect_argv_module_and_frozen() -> None:
    assert connect_argv("office-pc", "/py", frozen=False) == [
        "/py", "-m", "agent", "connect", "office-pc", "--events"]
    assert connect_argv("office-pc", "C:/BYOD/byod-agent.exe", frozen=True) == [
        "C:/BYOD/byod-agent.exe", "connect", "office-pc", "--events"]
    with pytest.raises(ValueError, match="target"):
        connect_argv("--dry-run", "/py", frozen=False)  # never an option smuggled as a target


def test_every_protocol_event_parses() -> None:
    lines = [
        '{"event":"checking","target":"office-pc"}',
        '{"event":"blocked","correlation_id":"AB12CD34","reasons":[' + R + ']}',
        '{"event":"error","step":"certificate","detail":"no key","message":' + R + '}',
        '{"event":"started","target":"office-pc","correlation_id":"AB12CD34","client_pid":77}',
        '{"event":"noncompliant","grace_seconds":120,"reasons":[' + R + ']}',
        '{"event":"countdown","remaining_seconds":110}',
        '{"event":"recovered"}',
        '{"event":"ended","reason":"stopped","correlation_id":"AB12CD34"}',
    ]
    events = [parse_event(line.encode()) for line in lines]
    assert [e.kind for e in events] == list(Kind)
    assert events[1].reasons[0].get("ja") == "ディスクが暗号化されていません"
    assert events[2].step == "certificate" and events[2].message is not None
    assert events[3].client_pid == 77 and events[4].grace_seconds == 120
    assert events[5].remaining_seconds == 110 and events[7].reason == "stopped"


@pytest.mark.parametrize("line", [
    b"", b"not json", b"[]", b'{"event":"party"}', b'{"event":"countdown"}',
    b'{"event":"countdown","remaining_seconds":"10"}',
    b'{"event":"countdown","remaining_seconds":true}',
    b'{"event":"ended","reason":"because"}',
    b'{"event":"blocked","correlation_id":"x","reasons":["no"]}',
    b'{"event":"error","step":"gateway_closed","detail":"x"}',  # not a step of the protocol
    b'{"event":"error","step":"tls"}',  # an error says what failed
    b'\xff\xfe', b"{" + b" " * 70_000 + b"}",
])
def test_garbage_is_refused(line: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_event(line)


def test_line_buffer_joins_split_reads_and_utf8() -> None:
    buf = LineBuffer()
    whole = ('{"event":"checking","target":"庁内"}\n').encode()
    assert buf.feed(whole[:20]) == []
    assert buf.feed(whole[20:] + b'{"event":"recov') == [whole[:-1]]
    assert buf.rest() == [b'{"event":"recov']


def test_tracker_phases_and_silent_exits() -> None:
    t = SessionTracker("office-pc")
    for line in ('{"event":"started","target":"office-pc","correlation_id":"C1","client_pid":1}',
                 '{"event":"noncompliant","grace_seconds":60,"reasons":[]}',
                 '{"event":"countdown","remaining_seconds":50}'):
        t.on_event(parse_event(line))
    assert t.phase is Phase.NONCOMPLIANT and t.remaining_seconds == 50
    t.on_event(parse_event('{"event":"recovered"}'))
    assert t.phase is Phase.RUNNING and t.remaining_seconds is None
    t.on_event(parse_event('{"event":"error","step":"office_unreachable","detail":"d",'
                           '"message":' + R + '}'))
    t.on_event(parse_event('{"event":"ended","reason":"error","correlation_id":"C1"}'))
    final = t.on_exit(4, crashed=False)
    assert final.kind is Kind.ERROR and final.step == "office_unreachable"  # the cause
    assert not t.active

    crashed = SessionTracker("x").on_exit(None, crashed=True)
    assert crashed.kind is Kind.ERROR and crashed.detail == "crashed"  # never a quiet success
    blocked = SessionTracker("x").on_exit(exitcodes.BLOCKED, crashed=False)
    assert blocked.kind is Kind.BLOCKED
    stopping = SessionTracker("x")
    stopping.stopping()
    assert stopping.on_exit(-15, crashed=True).reason == "stopped"


def _view(status: Status, lang: str = "ja") -> StatusView:
    checks = (CheckResult("os_supported", Status.PASS, msg("x"), {}, None, 1),
              CheckResult("disk_encryption", status, msg("x"), {}, None, 1),
              CheckResult("firewall", status, msg("x"), {}, None, 1))
    return build(Report("2026-03-01T00:00:00Z", HostInfo("linux", "12", "h", "x"), checks),
                 lang)


def test_state_change_notices_say_what_is_wrong_and_where_a_click_leads() -> None:
    ok, bad = _view(Status.PASS), _view(Status.FAIL)
    assert state_change(None, ok, "ja") is None  # good news at start: quiet
    first = state_change(None, bad, "ja")
    assert first is not None and first.level is Level.CRITICAL
    # Never "state changed: unavailable": the first failing item, how many more, the click.
    assert first.body == "ディスクの暗号化が必要です（ほか1件） — クリックで直し方を表示"
    assert first.action is Action.STATUS and first.check_id == "disk_encryption"
    en = state_change(None, _view(Status.FAIL, "en"), "en")
    assert en is not None and en.body.startswith("Disk encryption is required (and 1 more)")
    back = state_change(TrayState.BLOCKED, _view(Status.PASS, "en"), "en")
    assert back is not None and back.level is Level.INFO and "meets the requirements" in back.body
    assert state_change(TrayState.BLOCKED, bad, "ja") is None
    assert state_change(TrayState.BLOCKED, checking("ja"), "ja") is None
    broken = state_change(None, failed("ja", "boom"), "ja")
    assert broken is not None and "確認できませんでした" in broken.body


def test_cert_expiry_once_per_threshold_per_day() -> None:
    day = dt.date(2026, 3, 1)
    not_after = dt.datetime(2026, 3, 25, 9, tzinfo=dt.UTC)
    now = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    warning = expiry_warning(not_after, now)
    assert warning == ExpiryWarning(30, 24)
    notice, record = cert_expiry(warning, day, {}, "ja")
    assert notice is not None and "24 日" in notice.body and record == {"30": "2026-03-01"}
    again, record = cert_expiry(warning, day, record, "ja")
    assert again is None  # same threshold, same day: once
    nextday, record = cert_expiry(warning, day + dt.timedelta(days=1), record, "en")
    assert nextday is not None and "24 days" in nextday.body
    seven, record = cert_expiry(ExpiryWarning(7, 6), day, record, "ja")
    assert seven is not None and seven.level is Level.WARNING and record["7"] == "2026-03-01"
    last, _ = cert_expiry(ExpiryWarning(1, 0), day, record, "ja")
    assert last is not None and last.level is Level.CRITICAL
    gone, _ = cert_expiry(ExpiryWarning(0, -2), day, record, "en")
    assert gone is not None and "expired" in gone.body
    assert cert_expiry(None, day, record, "ja") == (None, {})  # renewed: start afresh


def test_session_notices_in_both_languages() -> None:
    ev = parse_event('{"event":"noncompliant","grace_seconds":90,"reasons":[' + R + ']}')
    ja = session_event(ev, "ja", "庁内PC")
    en = session_event(ev, "en", "Office PC")
    assert ja is not None and "1:30" in ja.body and "暗号化" in ja.body and "庁内PC" in ja.title
    assert en is not None and "1:30" in en.body and "not encrypted" in en.body
    err = session_event(parse_event('{"event":"error","step":"tls","detail":"d","message":'
                                    + R + '}'), "ja", "庁内PC")
    assert err is not None and "安全な接続" in err.body
    for reason in ("client_exit", "noncompliant", "stopped", "error"):
        ended = session_event(parse_event(f'{{"event":"ended","reason":"{reason}"}}'), "ja", "x")
        assert ended is not None and ended.key == f"session.ended.{reason}"
    count = session_event(parse_event('{"event":"countdown","remaining_seconds":5}'), "en", "x")
    assert count is not None and "0:05" in count.body


def test_interval_and_clock_gap() -> None:
    assert interval_ms(None) == 15 * 60_000
    assert interval_ms(0) == 60_000 and interval_ms(10**6) == 24 * 60 * 60_000
    t0 = ClockSample(wall=1000.0, mono=50.0)
    on_time = ClockSample(wall=1030.2, mono=80.2)
    assert clock_gap(t0, on_time, 30) is None
    # Linux/macOS suspend: the monotonic clock stood still for an hour, the wall clock did not
    slept = ClockSample(wall=1000.0 + 3630, mono=80.0)
    assert clock_gap(t0, slept, 30) == pytest.approx(3600)
    # Windows: monotonic runs on through sleep, but the timer fired an hour late
    late = ClockSample(wall=1000.0 + 3630, mono=50.0 + 3630)
    assert clock_gap(t0, late, 30) == pytest.approx(3600)
    set_back = ClockSample(wall=1000.0 - 600, mono=80.0)  # clock set back by hand
    assert clock_gap(t0, set_back, 30) is not None


def test_windows_messages_and_high_contrast() -> None:
    assert windows_wake_reason(WM_POWERBROADCAST, PBT_APMRESUMEAUTOMATIC) == "resume"
    assert windows_wake_reason(WM_POWERBROADCAST, 0x4) is None  # PBT_APMSUSPEND: going down
    assert windows_wake_reason(WM_WTSSESSION_CHANGE, WTS_SESSION_UNLOCK) == "unlock"
    assert windows_wake_reason(WM_WTSSESSION_CHANGE, 0x7) is None  # WTS_SESSION_LOCK
    assert is_high_contrast("high", (239, 239, 239), (0, 0, 0))
    assert not is_high_contrast("normal", (0, 0, 0), (255, 255, 255))
    assert is_high_contrast(None, (0, 0, 0), (255, 255, 255))  # Windows "High Contrast Black"
    assert not is_high_contrast(None, (239, 239, 239), (0, 0, 0))  # Fusion light


def test_certificate_rows() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    info = CertInfo("CN=Yamada Taro", "CN=Example City CA", "1f", now - dt.timedelta(days=300),
                    now + dt.timedelta(days=6, hours=3), "AA:BB")
    ok = details(CertStatus(KeyState.OK, "SecretService", info, None,
                        expiry_warning(info.not_after, now)), "ja", now)
    assert ok.ok and ok.removable
    assert dict(ok.rows)["発行者"] == "CN=Example City CA"
    assert any(v == "6 日" for _, v in ok.rows)
    assert ok.warning is not None and "6" in ok.warning
    none = details(CertStatus(KeyState.NOT_ENROLLED, "SecretService", None,
                          msg("cert.info.not_enrolled")), "en", now)
    assert not none.ok and not none.removable and none.rows == () and none.problem
