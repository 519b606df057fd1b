"""screen_lock on macOS: ``sysadminctl -screenLock status`` (stderr) and the screensaver idleTime.
"""

from __future__ import annotations

import re

from agent.core.errors import ParseError
from agent.posture.checks.screen_lock.common import LockConfig, evaluate
from agent.posture.context import ProbeContext
from agent.posture.model import Finding

CHECK_ID = "screen_lock"


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


def check_macos(ctx: ProbeContext) -> Finding:
    res = ctx.runner.run(["sysadminctl", "-screenLock", "status"]).check()
    text = res.stderr.decode("utf-8", errors="replace") + "\n" + res.text()
    delay = parse_sysadminctl_screenlock(text)
    return evaluate(mac_lock_config(delay, _mac_idle_time(ctx)), "screen_lock.macos", ctx)
