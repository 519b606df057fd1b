"""screen_lock: does the PC lock itself, with a password, soon after the user walks away?

A missing lock, or one that waits longer than ``settings.max_screen_lock_idle_s``, warns.
Windows: the snapshot's ``screen_lock`` section (screensaver values, policy overriding user, and the
machine InactivityTimeoutSecs). macOS: ``sysadminctl -screenLock status`` (it writes to stderr) and
the screensaver ``idleTime``. Linux: only inside a graphical session; GNOME-family desktops through
``gsettings``, KDE Plasma through ``kscreenlockerrc``; any other desktop is unknown by name.
"""

from __future__ import annotations

import configparser
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.errors import CommandFailed, ParseError, SourceMissing
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "screen_lock"
# Only per-user files are read (under the home directory), so no fixed system path.
SOURCES: tuple[str, ...] = ()


@dataclass(frozen=True)
class LockConfig:
    """What the platform settings amount to: is there a password lock, and after how long idle."""

    locks: bool  # a password is required once the lock engages
    lock_after_s: int | None  # idle seconds until locked; None = never
    facts: Mapping[str, Any] = field(default_factory=dict)  # raw values, for evidence


def evaluate(cfg: LockConfig, remediation: str, ctx: ProbeContext) -> Finding:
    limit = ctx.settings.max_screen_lock_idle_s
    evidence: Evidence = {**cfg.facts, "locks": cfg.locks, "lock_after_s": cfg.lock_after_s,
                          "max_idle_s": limit}
    if not cfg.locks:
        return Finding(Status.WARN, msg("screen_lock.off"), evidence, remediation)
    if cfg.lock_after_s is None:
        return Finding(Status.WARN, msg("screen_lock.never"), evidence, remediation)
    # Minutes are for people; the decision uses seconds. Round up a delay that is too long so
    # "16 minutes; should be within 15" never reads as "15; should be within 15".
    if cfg.lock_after_s > limit:
        return Finding(Status.WARN, msg("screen_lock.too_long",
                                        minutes=math.ceil(cfg.lock_after_s / 60),
                                        max_minutes=limit // 60), evidence, remediation)
    return Finding(Status.PASS, msg("screen_lock.ok", minutes=max(1, round(cfg.lock_after_s / 60))),
                   evidence)


# ---------------------------------------------------------------------------------------------
# Windows

_DESKTOP_KEYS = ("ScreenSaveActive", "ScreenSaverIsSecure", "ScreenSaveTimeOut", "SCRNSAVE.EXE")


def _reg_int(what: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError("Windows screen lock", f"{what}: {value!r}")
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise ParseError("Windows screen lock", f"{what}: {value!r}") from exc


def parse_windows_screen_lock(section: Mapping[str, Any]) -> LockConfig:
    """Policy values (Group Policy, HKCU\\Software\\Policies) win over the user's own values.

    The screensaver locks when it is active, secure and a screensaver program is chosen ("(None)"
    in the dialog removes SCRNSAVE.EXE). InactivityTimeoutSecs (machine policy) locks on its own.
    """
    desktop = section.get("desktop")
    policy = section.get("policy_desktop") or {}
    if not isinstance(desktop, Mapping) or not isinstance(policy, Mapping):
        raise ParseError("Windows screen lock", "desktop values missing")
    if not any(k in desktop for k in _DESKTOP_KEYS):
        raise ParseError("Windows screen lock", "no screensaver values")
    effective = {k: policy.get(k) if policy.get(k) is not None else desktop.get(k)
                 for k in _DESKTOP_KEYS}
    active = _reg_int("ScreenSaveActive", effective["ScreenSaveActive"]) == 1
    secure = _reg_int("ScreenSaverIsSecure", effective["ScreenSaverIsSecure"]) == 1
    timeout = _reg_int("ScreenSaveTimeOut", effective["ScreenSaveTimeOut"])
    program = str(effective["SCRNSAVE.EXE"] or "").strip()
    inactivity = _reg_int("InactivityTimeoutSecs", section.get("inactivity_timeout_secs"))
    facts = {"screensaver_active": active, "screensaver_secure": secure,
             "screensaver_timeout_s": timeout, "screensaver_program": bool(program),
             "policy_keys": sorted(k for k in _DESKTOP_KEYS if policy.get(k) is not None),
             "inactivity_timeout_s": inactivity}
    candidates: list[int] = []
    if active and secure and program and timeout and timeout > 0:
        candidates.append(timeout)
    if inactivity and inactivity > 0:
        candidates.append(inactivity)
    if not candidates:
        return LockConfig(False, None, facts)
    return LockConfig(True, min(candidates), facts)


# ---------------------------------------------------------------------------------------------
# macOS

# Real stderr lines carry an NSLog prefix: "2026-09-21 20:50:02.423 sysadminctl[22746:23830390]".
_MAC_DELAY = re.compile(r"screenLock delay is (-?\d+)(?:\.\d+)? seconds?")
# Apple's default screensaver idleTime when the user never changed it (scaponapple issue 76).
MAC_DEFAULT_IDLE_S = 1200


def parse_sysadminctl_screenlock(text: str) -> int | None:
    """Seconds between screensaver/display sleep and the password prompt; None when off."""
    if "screenLock is off" in text:
        return None
    if "screenLock delay is immediate" in text:
        return 0
    m = _MAC_DELAY.search(text)
    if m is None:
        raise ParseError("sysadminctl -screenLock status", "no screenLock line")
    delay = int(m.group(1))
    return None if delay < 0 else delay  # -1 is another spelling of "off"


def parse_idle_time(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise ParseError("com.apple.screensaver idleTime", text.strip()[:40]) from exc
    if value < 0:
        raise ParseError("com.apple.screensaver idleTime", str(value))
    return value


def mac_lock_config(delay: int | None, idle: int | None) -> LockConfig:
    idle_s = MAC_DEFAULT_IDLE_S if idle is None else idle
    facts = {"screenlock_delay_s": delay, "idle_time_s": idle,
             "idle_time_default": idle is None}
    if delay is None:
        return LockConfig(False, None, facts)
    if idle_s == 0:  # 0 = the screensaver never starts
        return LockConfig(True, None, facts)
    return LockConfig(True, idle_s + delay, facts)


def _mac_idle_time(ctx: ProbeContext) -> int | None:
    res = ctx.runner.run(["defaults", "-currentHost", "read", "com.apple.screensaver",
                          "idleTime"])
    if res.returncode != 0:
        if b"does not exist" in res.stderr:  # never set: Apple's default applies
            return None
        res.check()
    return parse_idle_time(res.text())


# ---------------------------------------------------------------------------------------------
# Linux

# XDG_CURRENT_DESKTOP names whose lock settings live in GNOME's schemas (Cinnamon forked them
# under its own prefix with the same keys).
GNOME_LIKE: dict[str, str] = {
    "gnome": "org.gnome.desktop", "ubuntu": "org.gnome.desktop", "unity": "org.gnome.desktop",
    "budgie": "org.gnome.desktop", "gnome-classic": "org.gnome.desktop",
    "gnome-flashback": "org.gnome.desktop",
    "x-cinnamon": "org.cinnamon.desktop", "cinnamon": "org.cinnamon.desktop",
}
_GVARIANT_UINT = re.compile(r"^(?:uint32\s+)?(\d+)$")


def graphical_session(env: Mapping[str, str]) -> bool:
    if env.get("XDG_SESSION_TYPE", "").lower() in ("x11", "wayland", "mir"):
        return True
    return any(env.get(k) for k in ("XDG_CURRENT_DESKTOP", "DISPLAY", "WAYLAND_DISPLAY"))


def desktop_names(env: Mapping[str, str]) -> list[str]:
    raw = env.get("XDG_CURRENT_DESKTOP") or env.get("XDG_SESSION_DESKTOP") or ""
    return [d.strip().lower() for d in raw.split(":") if d.strip()]


def parse_gsettings_bool(text: str, what: str) -> bool:
    value = text.strip()
    if value not in ("true", "false"):
        raise ParseError(f"gsettings {what}", value[:40])
    return value == "true"


def parse_gsettings_uint(text: str, what: str) -> int:
    m = _GVARIANT_UINT.match(text.strip())
    if m is None:
        raise ParseError(f"gsettings {what}", text.strip()[:40])
    return int(m.group(1))


def gnome_lock_config(lock_enabled: bool, idle_delay: int, lock_delay: int,
                      lock_disabled_by_admin: bool) -> LockConfig:
    """The screen blanks after idle-delay (0 = never) and locks lock-delay seconds later."""
    facts = {"lock_enabled": lock_enabled, "idle_delay_s": idle_delay,
             "lock_delay_s": lock_delay, "disable_lock_screen": lock_disabled_by_admin}
    if not lock_enabled or lock_disabled_by_admin:
        return LockConfig(False, None, facts)
    if idle_delay == 0:
        return LockConfig(True, None, facts)
    return LockConfig(True, idle_delay + lock_delay, facts)


def _gsettings(ctx: ProbeContext, schema: str, key: str) -> str:
    return ctx.runner.run(["gsettings", "get", schema, key]).check().text()


def _linux_gnome(ctx: ProbeContext, prefix: str) -> LockConfig:
    enabled = parse_gsettings_bool(
        _gsettings(ctx, f"{prefix}.screensaver", "lock-enabled"), "lock-enabled")
    idle = parse_gsettings_uint(_gsettings(ctx, f"{prefix}.session", "idle-delay"), "idle-delay")
    delay = parse_gsettings_uint(
        _gsettings(ctx, f"{prefix}.screensaver", "lock-delay"), "lock-delay")
    try:
        admin_off = parse_gsettings_bool(
            _gsettings(ctx, f"{prefix}.lockdown", "disable-lock-screen"), "disable-lock-screen")
    except CommandFailed:  # an older schema without the lockdown key: nothing disables the lock
        admin_off = False
    return gnome_lock_config(enabled, idle, delay, admin_off)


def _kde_bool(section: Mapping[str, str], key: str, default: bool) -> bool:
    raw = section.get(key)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ParseError("kscreenlockerrc", f"{key}={raw[:40]}")


def parse_kscreenlockerrc(text: str) -> LockConfig:
    """KDE writes only changed keys; absent ones take the defaults of kscreenlocker's
    settings/kscreenlockersettings.kcfg (Autolock true, Timeout 5 minutes, LockGrace 5 s,
    RequirePassword true, LockOnResume true)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        parser.read_string("[__top__]\n" + text)  # KDE allows keys before any group
    except configparser.Error as exc:
        raise ParseError("kscreenlockerrc", str(exc).splitlines()[0]) from exc
    daemon: Mapping[str, str] = parser["Daemon"] if parser.has_section("Daemon") else {}
    autolock = _kde_bool(daemon, "Autolock", True)
    password = _kde_bool(daemon, "RequirePassword", True)
    on_resume = _kde_bool(daemon, "LockOnResume", True)
    try:
        timeout_min = float(daemon.get("Timeout", "5"))
        grace_s = int(daemon.get("LockGrace", "5"))
    except ValueError as exc:
        raise ParseError("kscreenlockerrc", str(exc)) from exc
    facts = {"autolock": autolock, "timeout_min": timeout_min, "lock_grace_s": grace_s,
             "require_password": password, "lock_on_resume": on_resume}
    if not autolock or not password:
        return LockConfig(False, None, facts)
    if timeout_min <= 0:
        return LockConfig(True, None, facts)
    # LockGrace (seconds after locking in which a mouse move still unlocks) is left out on
    # purpose: a few seconds must not turn "15 minutes" into a warning.
    return LockConfig(True, math.ceil(timeout_min * 60), facts)


_KDE_LIMIT = 1 << 16


def _kde_config_path(ctx: ProbeContext) -> Path:
    base = ctx.env.get("XDG_CONFIG_HOME")
    return (Path(base) if base else ctx.home / ".config") / "kscreenlockerrc"


def _linux_kde(ctx: ProbeContext) -> LockConfig:
    path = _kde_config_path(ctx)  # under ctx.home, which tests already point at a tmp dir
    try:
        with path.open("rb") as fh:
            data = fh.read(_KDE_LIMIT + 1)
    except FileNotFoundError:
        data = b""  # never changed in System Settings: every default applies
    except OSError as exc:
        raise SourceMissing(str(path), exc.strerror or "") from exc
    if len(data) > _KDE_LIMIT:
        raise ParseError("kscreenlockerrc", f"larger than {_KDE_LIMIT} bytes")
    return parse_kscreenlockerrc(data.decode("utf-8", errors="replace"))


def _linux(ctx: ProbeContext) -> Finding:
    if not graphical_session(ctx.env):
        return Finding(Status.UNKNOWN, msg("screen_lock.no_session"), {"graphical": False},
                       "screen_lock.unknown")
    names = desktop_names(ctx.env)
    evidence_desktop = ":".join(names)
    for name in names:
        if name in GNOME_LIKE:
            cfg = _linux_gnome(ctx, GNOME_LIKE[name])
            finding = evaluate(cfg, "screen_lock.linux_gnome", ctx)
            break
        if name == "kde":
            cfg = _linux_kde(ctx)
            finding = evaluate(cfg, "screen_lock.linux_kde", ctx)
            if finding.status is Status.PASS and not cfg.facts.get("lock_on_resume", True):
                finding = Finding(Status.WARN, msg("screen_lock.kde_no_lock_on_resume"),
                                  finding.evidence, "screen_lock.linux_kde")
            break
    else:
        key = "screen_lock.desktop_unsupported" if names else "screen_lock.desktop_unknown"
        return Finding(Status.UNKNOWN, msg(key, desktop=evidence_desktop),
                       {"graphical": True, "desktop": evidence_desktop}, "screen_lock.unknown")
    return Finding(finding.status, finding.summary,
                   {**finding.evidence, "desktop": evidence_desktop}, finding.remediation)


def _windows(ctx: ProbeContext) -> Finding:
    return evaluate(parse_windows_screen_lock(ctx.windows_section("screen_lock")),
                    "screen_lock.windows", ctx)


def _macos(ctx: ProbeContext) -> Finding:
    res = ctx.runner.run(["sysadminctl", "-screenLock", "status"]).check()
    text = res.stderr.decode("utf-8", errors="replace") + "\n" + res.text()
    delay = parse_sysadminctl_screenlock(text)
    return evaluate(mac_lock_config(delay, _mac_idle_time(ctx)), "screen_lock.macos", ctx)


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=_windows, macos=_macos, linux=_linux)
