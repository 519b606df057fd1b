"""screen_lock on Linux: GNOME-family desktops through gsettings, KDE through kscreenlockerrc."""

from __future__ import annotations

import configparser
import math
import re
from collections.abc import Mapping
from pathlib import Path

from agent.core.errors import CommandFailed, ParseError, SourceMissing
from agent.core.messages import msg
from agent.posture.checks.screen_lock.common import LockConfig, evaluate
from agent.posture.context import ProbeContext
from agent.posture.model import Finding, Status

CHECK_ID = "screen_lock"


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


def check_linux(ctx: ProbeContext) -> Finding:
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
