"""When the tray re-checks, decided without Qt: the policy interval, and "the PC just woke up".

Platform wake signals (login1 PrepareForSleep, the screensaver's ActiveChanged, Windows
WM_POWERBROADCAST / WM_WTSSESSION_CHANGE) are wired in ui/wake.py; everything they carry is
interpreted here. The clock-gap detector works everywhere, including macOS where NSWorkspace's
wake notifications are out of reach without pyobjc: a timer that fires late, or a wall clock
that moved differently from the monotonic clock, means the PC slept or its clock was set.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MINUTES = 15
MIN_MINUTES = 1
MAX_MINUTES = 24 * 60


def interval_ms(minutes: int | None) -> int:
    """The policy's re-check interval, kept within sane bounds (a typo must not mean every ms)."""
    if minutes is None:
        minutes = DEFAULT_MINUTES
    return max(MIN_MINUTES, min(MAX_MINUTES, minutes)) * 60 * 1000


@dataclass(frozen=True)
class ClockSample:
    wall: float  # time.time()
    mono: float  # time.monotonic()


def clock_gap(prev: ClockSample, now: ClockSample, interval_s: float,
              tolerance_s: float = 20.0) -> float | None:
    """Seconds unaccounted for since ``prev``, or None when the timer ran on time.

    Two signs, either one is enough: the wall clock moved away from the monotonic clock (Linux
    and macOS monotonic clocks stop during suspend; a clock set by NTP or by hand does this too),
    or the timer itself fired far later than asked (a suspended process, on every OS, including
    Windows where the monotonic clock keeps running across sleep).
    """
    wall = now.wall - prev.wall
    mono = now.mono - prev.mono
    drift = abs(wall - mono)
    late = max(wall, mono) - interval_s
    if drift > tolerance_s:
        return drift
    if late > tolerance_s:
        return late
    return None


# Win32 message numbers and codes (WinUser.h, WtsApi32.h), for ui/wake.py's native event filter.
WM_POWERBROADCAST = 0x0218
PBT_APMRESUMESUSPEND = 0x0007
PBT_APMRESUMEAUTOMATIC = 0x0012
WM_WTSSESSION_CHANGE = 0x02B1
WTS_SESSION_UNLOCK = 0x8
WTS_SESSION_LOGON = 0x5


def windows_wake_reason(message: int, wparam: int) -> str | None:
    """Which Windows window message means "re-check now"."""
    if message == WM_POWERBROADCAST and wparam in (PBT_APMRESUMESUSPEND, PBT_APMRESUMEAUTOMATIC):
        return "resume"
    if message == WM_WTSSESSION_CHANGE and wparam in (WTS_SESSION_UNLOCK, WTS_SESSION_LOGON):
        return "unlock"
    return None


def is_high_contrast(preference: str | None, window_rgb: tuple[int, int, int],
                     text_rgb: tuple[int, int, int]) -> bool:
    """The platform's contrast preference when it states one; else the palette's look.

    High-contrast themes (Windows "High Contrast Black/White", GNOME HighContrast) paint pure black
    and pure white; ordinary themes use greys, so pure opposites are the tell.
    """
    if preference == "high":
        return True
    if preference == "normal":
        return False
    pure = {(0, 0, 0), (255, 255, 255)}
    return window_rgb in pure and text_rgb in pure and window_rgb != text_rgb
