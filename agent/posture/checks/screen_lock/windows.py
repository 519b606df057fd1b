"""screen_lock on Windows: the snapshot's ``screen_lock`` section (screensaver values, policy over
user, InactivityTimeoutSecs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.core.errors import ParseError
from agent.posture.checks.screen_lock.common import LockConfig, evaluate
from agent.posture.context import ProbeContext
from agent.posture.model import Finding

CHECK_ID = "screen_lock"


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


def check_windows(ctx: ProbeContext) -> Finding:
    return evaluate(parse_windows_screen_lock(ctx.windows_section("screen_lock")),
                    "screen_lock.windows", ctx)
