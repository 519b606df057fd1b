"""screen_lock: Windows/macOS/KDE on fixtures, GNOME through recorded gsettings outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.core.errors import ParseError
from agent.posture.checks.screen_lock import check as screen_lock
from agent.posture.checks.screen_lock import macos as screen_lock_macos
from agent.posture.engine import run_one
from agent.posture.model import CheckResult, Status
from agent.posture.settings import PostureSettings
from agent.presentation import remediation
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx

SL = FIXTURES / "screen_lock"
GNOME_ENV = {"XDG_CURRENT_DESKTOP": "ubuntu:GNOME", "XDG_SESSION_TYPE": "wayland"}


def _bytes(name: str) -> bytes:
    return (SL / name).read_bytes()


def _run(ctx: Any) -> CheckResult:
    return run_one("screen_lock", screen_lock.check, ctx)


# --- Windows ------------------------------------------------------------------------------------

def _win(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SL / name).read_text(encoding="utf-8"))
    assert data.pop("_source")
    return data


@pytest.mark.parametrize(("fixture", "status", "key", "after"), [
    ("windows_screensaver_secure_10min.json", Status.PASS, "screen_lock.ok", 600),
    ("windows_no_screensaver_chosen.json", Status.WARN, "screen_lock.off", None),
    ("windows_screensaver_not_secure.json", Status.WARN, "screen_lock.off", None),
    ("windows_screensaver_secure_30min.json", Status.WARN, "screen_lock.too_long", 1800),
    ("windows_policy_overrides_user_timeout.json", Status.WARN, "screen_lock.too_long", 1800),
    ("windows_policy_forces_secure_screensaver.json", Status.PASS, "screen_lock.ok", 600),
    ("windows_inactivity_limit_15min_no_screensaver.json", Status.PASS, "screen_lock.ok", 900),
])
def test_windows_table(fixture: str, status: Status, key: str, after: int | None) -> None:
    r = _run(make_ctx("windows", snapshot={"screen_lock": _win(fixture)}))
    assert (r.status, r.summary.key, r.evidence["lock_after_s"]) == (status, key, after)
    if status is Status.WARN:
        assert r.remediation == "screen_lock.windows"
        assert remediation.settings_uri(r.remediation, "windows") == "ms-settings:lockscreen"


def test_windows_inactivity_limit_beats_a_slow_screensaver() -> None:
    section = _win("windows_screensaver_secure_30min.json")
    section["inactivity_timeout_secs"] = 600
    assert _run(make_ctx("windows", snapshot={"screen_lock": section})).status is Status.PASS


def test_windows_message_minutes() -> None:
    r = _run(make_ctx("windows", snapshot={"screen_lock":
                                           _win("windows_screensaver_secure_30min.json")}))
    assert dict(r.summary.params) == {"minutes": 30, "max_minutes": 15}


def test_windows_garbled_value_is_unknown() -> None:
    r = _run(make_ctx("windows", snapshot={"screen_lock": _win("windows_garbled_timeout.json")}))
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.parse_error"


def test_windows_threshold_comes_from_settings() -> None:
    ctx = make_ctx("windows", snapshot={"screen_lock":
                                        _win("windows_screensaver_secure_10min.json")},
                   settings=PostureSettings(max_screen_lock_idle_s=300))
    assert _run(ctx).status is Status.WARN


# --- macOS --------------------------------------------------------------------------------------

SYSADMINCTL = ("sysadminctl", "-screenLock", "status")
IDLE = ("defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime")
IDLE_MISSING = Recorded(b"", 1, _bytes("defaults_idletime_missing_stderr.txt"))


def _mac(status_fixture: str, idle: Recorded) -> CheckResult:
    # sysadminctl writes its answer to stderr (NSLog), stdout stays empty.
    runner = FakeRunner({SYSADMINCTL: Recorded(b"", 0, _bytes(status_fixture)), IDLE: idle})
    return _run(make_ctx("macos", runner=runner))


@pytest.mark.parametrize(("fixture", "idle", "status", "after"), [
    ("sysadminctl_delay_5s_macos26.txt", Recorded(_bytes("defaults_idletime_600.txt")),
     Status.PASS, 605),
    ("sysadminctl_immediate.txt", Recorded(b"300\n"), Status.PASS, 300),
    ("sysadminctl_delay_300s.txt", Recorded(b"900\n"), Status.WARN, 1200),
    ("sysadminctl_off_macos26.txt", Recorded(b"300\n"), Status.WARN, None),
    ("sysadminctl_delay_minus1.txt", Recorded(b"300\n"), Status.WARN, None),
    ("sysadminctl_immediate.txt", Recorded(b"0\n"), Status.WARN, None),
    ("sysadminctl_immediate.txt", IDLE_MISSING, Status.WARN, 1200),
])
def test_macos_table(fixture: str, idle: Recorded, status: Status, after: int | None) -> None:
    r = _mac(fixture, idle)
    assert (r.status, r.evidence["lock_after_s"]) == (status, after)
    if status is Status.WARN:
        assert r.remediation == "screen_lock.macos"


def test_macos_600_plus_300_is_exactly_the_limit() -> None:
    # 600 s idle + 300 s delay = 900 s: within a 900 s limit.
    assert _mac("sysadminctl_delay_300s.txt", Recorded(b"600\n")).status is Status.PASS


def test_macos_defaults_failing_otherwise_is_unknown() -> None:
    r = _mac("sysadminctl_immediate.txt", Recorded(b"", 1, b"defaults: permission denied\n"))
    assert r.status is Status.UNKNOWN


@pytest.mark.parametrize("text", ["", "screenLock status unknown", "Password:"])
def test_macos_unrecognised_wording(text: str) -> None:
    with pytest.raises(ParseError):
        screen_lock_macos.parse_sysadminctl_screenlock(text)


# --- Linux: sessions and desktops ---------------------------------------------------------------

@pytest.mark.parametrize("env", [{}, {"XDG_SESSION_TYPE": "tty"}, {"TERM": "xterm"}])
def test_no_graphical_session_is_unknown(env: dict[str, str]) -> None:
    r = _run(make_ctx("linux", env=env))
    assert r.status is Status.UNKNOWN and r.summary.key == "screen_lock.no_session"
    assert r.remediation == "screen_lock.unknown"


def test_other_desktop_is_unknown_by_name() -> None:
    r = _run(make_ctx("linux", env={"XDG_CURRENT_DESKTOP": "XFCE", "DISPLAY": ":0"}))
    assert r.status is Status.UNKNOWN
    assert (r.summary.key, r.summary.params["desktop"]) == ("screen_lock.desktop_unsupported",
                                                            "xfce")


def test_graphical_session_without_a_desktop_name() -> None:
    r = _run(make_ctx("linux", env={"DISPLAY": ":0"}))
    assert r.status is Status.UNKNOWN and r.summary.key == "screen_lock.desktop_unknown"


# --- GNOME --------------------------------------------------------------------------------------

def _gnome_runner(prefix: str = "org.gnome.desktop", **over: bytes) -> FakeRunner:
    answers = {
        "lock-enabled": _bytes("gsettings_lock_enabled_true.txt"),
        "idle-delay": _bytes("gsettings_idle_delay_300.txt"),
        "lock-delay": _bytes("gsettings_lock_delay_0.txt"),
        "disable-lock-screen": _bytes("gsettings_disable_lock_screen_false.txt"),
    }
    answers.update({k.replace("_", "-"): v for k, v in over.items()})
    schemas = {"lock-enabled": "screensaver", "idle-delay": "session",
               "lock-delay": "screensaver", "disable-lock-screen": "lockdown"}
    return FakeRunner({("gsettings", "get", f"{prefix}.{schemas[k]}", k): Recorded(v)
                       for k, v in answers.items()})


@pytest.mark.parametrize(("over", "status", "key", "after"), [
    ({}, Status.PASS, "screen_lock.ok", 300),  # the schema defaults
    ({"idle_delay": b"uint32 1200\n"}, Status.WARN, "screen_lock.too_long", 1200),
    ({"idle_delay": b"uint32 600\n", "lock_delay": b"uint32 600\n"}, Status.WARN,
     "screen_lock.too_long", 1200),
    ({"idle_delay": b"uint32 0\n"}, Status.WARN, "screen_lock.never", None),
    ({"lock_enabled": b"false\n"}, Status.WARN, "screen_lock.off", None),
    ({"disable_lock_screen": b"true\n"}, Status.WARN, "screen_lock.off", None),
    ({"idle_delay": b"uint32 900\n"}, Status.PASS, "screen_lock.ok", 900),
])
def test_gnome_table(over: dict[str, bytes], status: Status, key: str,
                     after: int | None) -> None:
    r = _run(make_ctx("linux", runner=_gnome_runner(**over), env=GNOME_ENV))
    assert (r.status, r.summary.key, r.evidence["lock_after_s"]) == (status, key, after)
    assert r.evidence["desktop"] == "ubuntu:gnome"
    if status is Status.WARN:
        assert r.remediation == "screen_lock.linux_gnome"


def test_cinnamon_reads_its_own_schemas() -> None:
    runner = _gnome_runner("org.cinnamon.desktop", idle_delay=b"uint32 1800\n")
    r = _run(make_ctx("linux", runner=runner, env={"XDG_CURRENT_DESKTOP": "X-Cinnamon"}))
    assert r.status is Status.WARN and r.evidence["idle_delay_s"] == 1800
    assert all(c[2].startswith("org.cinnamon.desktop.") for c in runner.calls)


def test_gnome_schema_without_lockdown_key() -> None:
    runner = _gnome_runner()
    runner.answers[("gsettings", "get", "org.gnome.desktop.lockdown", "disable-lock-screen")] = \
        Recorded(b"", 1, b"No such key \xe2\x80\x9cdisable-lock-screen\xe2\x80\x9d\n")
    assert _run(make_ctx("linux", runner=runner, env=GNOME_ENV)).status is Status.PASS


@pytest.mark.parametrize("bad", [b"", b"uint32 -5\n", b"int32 300\n", b"'300'\n"])
def test_gnome_garbled_value_is_unknown(bad: bytes) -> None:
    r = _run(make_ctx("linux", runner=_gnome_runner(idle_delay=bad), env=GNOME_ENV))
    assert r.status is Status.UNKNOWN


def test_gnome_missing_schema_is_unknown() -> None:
    def no_schema(argv: Sequence[str]) -> Recorded:
        return Recorded(b"", 1, b"No such schema \xe2\x80\x9corg.gnome.desktop.screensaver\n")

    r = _run(make_ctx("linux", runner=FakeRunner({("gsettings",): no_schema}), env=GNOME_ENV))
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.command_failed"


# --- KDE Plasma ---------------------------------------------------------------------------------

KDE_ENV = {"XDG_CURRENT_DESKTOP": "KDE", "XDG_SESSION_TYPE": "x11"}


def _kde(tmp_path: Path, fixture: str | None, env: dict[str, str] | None = None) -> CheckResult:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    if fixture is not None:
        (home / ".config/kscreenlockerrc").write_bytes(_bytes(fixture))
    return _run(make_ctx("linux", home=home, env=env or KDE_ENV))


@pytest.mark.parametrize(("fixture", "status", "key", "after"), [
    (None, Status.PASS, "screen_lock.ok", 300),  # never changed: KDE defaults
    ("kscreenlockerrc_greeter_only.ini", Status.PASS, "screen_lock.ok", 300),
    ("kscreenlockerrc_timeout_10.ini", Status.PASS, "screen_lock.ok", 600),
    ("kscreenlockerrc_timeout_30.ini", Status.WARN, "screen_lock.too_long", 1800),
    ("kscreenlockerrc_autolock_false.ini", Status.WARN, "screen_lock.off", None),
    ("kscreenlockerrc_no_lock_on_resume.ini", Status.WARN, "screen_lock.kde_no_lock_on_resume",
     300),
])
def test_kde_table(tmp_path: Path, fixture: str | None, status: Status, key: str,
                   after: int | None) -> None:
    r = _kde(tmp_path, fixture)
    assert (r.status, r.summary.key, r.evidence["lock_after_s"]) == (status, key, after)
    if status is Status.WARN:
        assert r.remediation == "screen_lock.linux_kde"


def test_kde_honours_xdg_config_home(tmp_path: Path) -> None:
    cfg = tmp_path / "xdg"
    cfg.mkdir()
    (cfg / "kscreenlockerrc").write_bytes(_bytes("kscreenlockerrc_timeout_30.ini"))
    r = _kde(tmp_path, None, {**KDE_ENV, "XDG_CONFIG_HOME": str(cfg)})
    assert r.status is Status.WARN


@pytest.mark.parametrize("text", ["[Daemon]\nTimeout=five\n", "[Daemon]\nAutolock=perhaps\n",
                                  "[Daemon\nTimeout=5\n", "garbage line without equals\n"])
def test_kde_garbled_file_is_unknown(tmp_path: Path, text: str) -> None:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config/kscreenlockerrc").write_text(text)
    r = _run(make_ctx("linux", home=home, env=KDE_ENV))
    assert r.status is Status.UNKNOWN, r.summary


def test_kde_unreadable_file_is_unknown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config/kscreenlockerrc").mkdir(parents=True)  # a directory: read fails
    assert _run(make_ctx("linux", home=home, env=KDE_ENV)).status is Status.UNKNOWN
